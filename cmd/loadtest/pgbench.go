package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/agentroster/agentroster/models/pgcluster"
)

var tpsRE = regexp.MustCompile(`tps = ([0-9.]+)`)

// pgbenchUpdate runs PostgreSQL's own benchmark on the statement the presence
// path boils down to (one single-row UPDATE of a random agent, its own
// transaction and WAL flush each), as the yardstick for the write path.
// It also returns the CPU time pgbench itself used.
func pgbenchUpdate(ctx context.Context, dbURL string, seed *loadSeed, o options) (float64, time.Duration, error) {
	bin, err := exec.LookPath("pgbench")
	if err != nil {
		dir, ferr := pgcluster.FindBinaries()
		if ferr != nil {
			return 0, 0, fmt.Errorf("pgbench not found")
		}
		bin = filepath.Join(dir, "pgbench")
		if _, err := os.Stat(bin); err != nil {
			return 0, 0, fmt.Errorf("pgbench not found")
		}
	}
	script := filepath.Join(os.TempDir(), "agentroster-pgbench.sql")
	sql := fmt.Sprintf("\\set id random(0, %d)\nUPDATE agents SET is_online = NOT is_online, last_seen_at = now() WHERE org_id = '%s' AND id = 'load-' || :id;\n",
		len(seed.Agents)-1, seed.OrgID)
	if err := os.WriteFile(script, []byte(sql), 0o644); err != nil {
		return 0, 0, err
	}
	defer os.Remove(script)
	conc := o.pgClients
	cmd := exec.CommandContext(ctx, bin, "-n", "-c", strconv.Itoa(conc), "-j", "2", "-T", strconv.Itoa(int(o.duration/time.Second)), "-f", script, dbURL)
	if os.Geteuid() == 0 {
		cmd.Env = append(os.Environ(), "PGUSER=postgres")
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, 0, fmt.Errorf("pgbench: %v: %.300s", err, out)
	}
	m := tpsRE.FindSubmatch(out)
	if m == nil {
		return 0, 0, fmt.Errorf("pgbench: no tps in output")
	}
	tps, err := strconv.ParseFloat(string(m[1]), 64)
	return tps, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), err
}
