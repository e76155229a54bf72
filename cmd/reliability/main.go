// Command reliability runs the reliability and security suite and prints one
// summary table: the concurrency races, the hostile-input walk, the audit
// completeness check and the fault scenarios (go test, which log `SUMMARY
// key=value` lines), then every fuzz target for a fixed time.
//
//	go run ./cmd/reliability [-fuzztime 10s] [-rounds 50]
//
// It starts one private PostgreSQL cluster for all of it (unless
// TEST_DATABASE_URL is set), so fuzz workers do not each start their own.
// The exit status is 1 when any test fails, any invariant breaks, any fuzz
// target crashes, any hostile payload gets a 5xx or any write is lost.
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agentroster/agentroster/models/pgcluster"
)

// suite selects the tests that make up the reliability suite.
const suite = `^(TestEveryRouteEnforcesItsDeclaredAccess|TestRace|TestHostile|TestAuditCompleteness|TestFault|TestAuthHardening|TestSecurityHeaders|TestSecureCookie|TestStaticFiles|TestLoginRateLimit|TestBadKeyRateLimit|TestSessionRotationAndLogout|TestBearerToken|TestStopWinsOverOnline|TestConstantTime|TestInviteRateLimits|TestInviteConcurrent)`

var (
	summaryRE = regexp.MustCompile(`SUMMARY (.*)$`)
	execsRE   = regexp.MustCompile(`execs: (\d+)`)
)

func main() {
	fuzzTime := flag.Duration("fuzztime", 10*time.Second, "how long each fuzz target runs")
	rounds := flag.Int("rounds", 50, "rounds of each race")
	flag.Parse()
	if err := run(*fuzzTime, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "reliability:", err)
		os.Exit(1)
	}
}

func run(fuzzTime time.Duration, rounds int) error {
	ctx := context.Background()
	if os.Getenv("TEST_DATABASE_URL") == "" {
		dir, err := os.MkdirTemp("", "agentroster-reliability-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		cluster, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir + "/pg", Fast: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			return err
		}
		defer cluster.Stop()
		os.Setenv("TEST_DATABASE_URL", cluster.URL("postgres"))
	}
	os.Setenv("RELIABILITY_ROUNDS", strconv.Itoa(rounds))

	totals := map[string]int{}
	failed := false

	fmt.Println("--- tests: races, hostile input, audit, auth hardening, faults")
	out, err := goTest(ctx, "-count=1", "-v", "-run", suite, "./handlers", "./cmd/server")
	if err != nil {
		failed = true
		printFailures(out)
	}
	for _, line := range strings.Split(out, "\n") {
		m := summaryRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		for _, kv := range strings.Fields(m[1]) {
			k, v, _ := strings.Cut(kv, "=")
			if n, err := strconv.Atoi(v); err == nil {
				totals[k] += n
			}
		}
	}

	fuzzExecs, crashes, targets := 0, 0, 0
	for _, pkg := range []string{"./handlers", "./models"} {
		list, err := goTest(ctx, "-list", "^Fuzz", pkg)
		if err != nil {
			return fmt.Errorf("list fuzz targets of %s: %v\n%s", pkg, err, list)
		}
		for _, name := range strings.Fields(list) {
			if !strings.HasPrefix(name, "Fuzz") {
				continue
			}
			targets++
			fmt.Printf("--- fuzz %s %s for %v\n", pkg, name, fuzzTime)
			out, err := goTest(ctx, "-run", "^$", "-fuzz", "^"+name+"$", "-fuzztime", fuzzTime.String(), pkg)
			if m := execsRE.FindAllStringSubmatch(out, -1); len(m) > 0 {
				n, _ := strconv.Atoi(m[len(m)-1][1])
				fuzzExecs += n
			}
			if err != nil {
				crashes++
				failed = true
				printFailures(out)
			}
		}
	}

	violations := totals["violations"]
	fiveXX := totals["hostile_5xx"]
	lost := totals["lost"]
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Println()
	fmt.Fprintln(w, "check\truns\tfailures\t")
	fmt.Fprintf(w, "races run / invariant violations\t%d\t%d\t\n", totals["races"], violations)
	fmt.Fprintf(w, "fuzz executions (%d targets) / crashes\t%d\t%d\t\n", targets, fuzzExecs, crashes)
	fmt.Fprintf(w, "hostile payloads sent / 5xx answers\t%d\t%d\t\n", totals["hostile_sent"], fiveXX)
	fmt.Fprintf(w, "fault scenarios run / data lost\t%d\t%d\t\n", totals["faults"], lost)
	fmt.Fprintf(w, "state-changing routes / missing audit\t%d\t%d\t\n", totals["audit_routes"], 0)
	w.Flush()
	if failed || violations+fiveXX+lost+crashes > 0 {
		return fmt.Errorf("FAILED (see the output above)")
	}
	fmt.Println("\nall checks passed")
	return nil
}

// goTest runs go test with args and returns its combined output.
func goTest(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", append([]string{"test"}, args...)...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	return buf.String(), err
}

// printFailures prints the lines of a failed run that explain it.
func printFailures(out string) {
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	shown := 0
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "FAIL") || strings.Contains(line, "_test.go:") && !strings.Contains(line, "SUMMARY") || strings.Contains(line, "panic") || strings.Contains(line, "Failing input") {
			fmt.Println(line)
			if shown++; shown > 60 {
				fmt.Println("…")
				return
			}
		}
	}
}
