// Command loadtest measures the server on this machine in one run: it starts a
// private PostgreSQL (or uses -database-url), builds and starts the server,
// seeds agents with keys, then drives each path for a fixed time at a fixed
// concurrency after a warm-up, and prints req/s, p50, p99, errors, each path's
// ratio to the GET /healthz baseline, the server's own p50/p99 (from its
// request log) and its memory; then it holds 1,000 live-update streams open
// and reads the server's memory again. Figures are written as JSON too.
//
//	go run ./cmd/loadtest -duration 10s -concurrency 64 -agents 10000 -json loadtest.json
//	go run ./cmd/loadtest -only status -cpuprofile prof && go tool pprof -top prof/status.prof
package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uptrace/bun"

	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/models/pgcluster"
)

type options struct {
	duration    time.Duration
	warmup      time.Duration
	concurrency int
	agents      int
	databaseURL string
	jsonOut     string
	only        string
	streams     int
	profileDir  string
	memLimit    string
	pgClients   int
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per path")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "warm-up time per path")
	flag.IntVar(&o.concurrency, "concurrency", 64, "concurrent clients")
	flag.IntVar(&o.agents, "agents", 10000, "agents (each with a key) to seed")
	flag.StringVar(&o.databaseURL, "database-url", "", "use this database instead of a private cluster (it must be empty)")
	flag.StringVar(&o.jsonOut, "json", "loadtest.json", "write the figures here")
	flag.StringVar(&o.only, "only", "", "comma-separated scenario names to run (default all, sse included)")
	flag.IntVar(&o.streams, "streams", 1000, "SSE streams to hold open in the sse scenario")
	flag.StringVar(&o.memLimit, "server-gomemlimit", "", "GOMEMLIMIT for the server process (empty: none, the server as shipped picks its own)")
	flag.IntVar(&o.pgClients, "pgbench-clients", 16, "pgbench clients for the single-row UPDATE yardstick")
	flag.StringVar(&o.profileDir, "cpuprofile", "", "write CPU and heap profiles of the server per scenario into this directory (go tool pprof)")
	flag.Parse()
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

// result is one scenario's figures.
type result struct {
	Name      string  `json:"name"`
	Requests  int64   `json:"requests"`
	Errors    int64   `json:"errors"`
	RPS       float64 `json:"rps"`
	P50ms     float64 `json:"p50Ms"`
	P99ms     float64 `json:"p99Ms"`
	Ratio     float64 `json:"ratioToBaseline"`
	RSSMiB    float64 `json:"serverRssMiB"`
	ServerP50 float64 `json:"serverP50Ms,omitempty"` // from the server's request log
	ServerP99 float64 `json:"serverP99Ms,omitempty"`
	// Routes splits the server's time by route when a unit of work makes
	// several kinds of request (the join flow).
	Routes []routeLatency `json:"serverRoutes,omitempty"`
	Unit   string         `json:"unit,omitempty"`
	// CPU time per unit of work of the server process and of PostgreSQL
	// (all of the private cluster's processes), in microseconds.
	ServerCPUus float64 `json:"serverCpuUsPerUnit,omitempty"`
	PgCPUus     float64 `json:"pgCpuUsPerUnit,omitempty"`
	FirstError  string  `json:"firstError,omitempty"`
}

func run(ctx context.Context, o options) error {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tmp, err := os.MkdirTemp("", "agentroster-load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	dbURL := o.databaseURL
	pgdata := ""
	if dbURL == "" {
		pgdata = filepath.Join(tmp, "pg", "pgdata")
		fmt.Fprintln(os.Stderr, "starting a private PostgreSQL…")
		cluster, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(tmp, "pg"), Logger: log})
		if err != nil {
			return err
		}
		defer cluster.Stop()
		if err := cluster.CreateDatabase(ctx, "load"); err != nil {
			return err
		}
		dbURL = cluster.URL("load")
	}

	fmt.Fprintln(os.Stderr, "building and starting the server…")
	bin := filepath.Join(tmp, "server")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/server").CombinedOutput(); err != nil {
		return fmt.Errorf("build server: %v: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	password := models.RandomBase62(20)
	srv := exec.Command(bin)
	pprofAddr := ""
	if o.profileDir != "" {
		pp, err := freePort()
		if err != nil {
			return err
		}
		pprofAddr = "127.0.0.1:" + strconv.Itoa(pp)
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return err
		}
	}
	// The server as shipped: nothing of this process's Go tuning leaks into it.
	var environ []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOMEMLIMIT=") && !strings.HasPrefix(kv, "GOGC=") {
			environ = append(environ, kv)
		}
	}
	if o.memLimit != "" {
		environ = append(environ, "GOMEMLIMIT="+o.memLimit)
	}
	srv.Env = append(environ, "PPROF_ADDR="+pprofAddr, "DATABASE_URL="+dbURL, "ADDR=127.0.0.1:"+strconv.Itoa(port), "PUBLIC_URL="+base,
		"DATA_DIR="+filepath.Join(tmp, "data"), "SECRET_KEY="+models.RandomBase62(40),
		"BOOTSTRAP_SA_EMAIL=load@example.com", "TRUSTED_PROXIES=127.0.0.1/32", "BOOTSTRAP_SA_PASSWORD="+password, "LOG_FORMAT=json")
	logPath := filepath.Join(tmp, "server.log")
	srvLog, _ := os.Create(logPath)
	srv.Stdout, srv.Stderr = srvLog, srvLog
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() {
		srv.Process.Signal(os.Interrupt)
		srv.Wait()
	}()
	if err := waitReady(base); err != nil {
		return err
	}
	rss := newRSSRecorder(srv.Process.Pid)
	defer rss.stop()
	rss.phase("seed")

	fmt.Fprintf(os.Stderr, "seeding %d agents with keys…\n", o.agents)
	db, err := models.Open(dbURL, 4)
	if err != nil {
		return err
	}
	defer db.Close()
	seed, err := seedLoad(ctx, db, "load@example.com", o.agents)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}

	admin, err := loginToken(base, "load@example.com", password)
	if err != nil {
		return err
	}
	browser, err := loginCookie(base, "load@example.com", password)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: o.concurrency * 2, MaxIdleConnsPerHost: o.concurrency * 2}, Timeout: 10 * time.Second}
	env := &loadEnv{base: base, client: client, browser: browser, admin: admin, seed: seed, conc: o.concurrency, pprof: pprofAddr, profileDir: o.profileDir}

	var results []result
	for _, sc := range scenarios(env) {
		if o.only != "" && !strings.Contains(","+o.only+",", ","+sc.name+",") && sc.name != "healthz" {
			continue
		}
		if err := settle(ctx, db); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "%-16s warm-up %s, measure %s at concurrency %d…\n", sc.name, o.warmup, o.duration, sc.conc(o.concurrency))
		rss.phase(sc.name)
		visit(sc, sc.visits, sc.conc(o.concurrency))
		measure(sc, o.warmup, sc.conc(o.concurrency))
		from := fileSize(logPath)
		var prof sync.WaitGroup
		if pprofAddr != "" {
			prof.Add(1)
			go func() {
				defer prof.Done()
				cpuProfile(pprofAddr, o.duration-time.Second, filepath.Join(o.profileDir, sc.name+".prof"))
			}()
		}
		srvCPU, pgCPU := procCPU(srv.Process.Pid, false), clusterCPU(pgdata)
		r := measure(sc, o.duration, sc.conc(o.concurrency))
		if r.Requests > 0 {
			r.ServerCPUus = float64((procCPU(srv.Process.Pid, false) - srvCPU).Microseconds()) / float64(r.Requests)
			if pgdata != "" {
				r.PgCPUus = float64((clusterCPU(pgdata) - pgCPU).Microseconds()) / float64(r.Requests)
			}
		}
		r.RSSMiB = rssMiB(srv.Process.Pid)
		r.ServerP50, r.ServerP99, r.Routes = serverLatency(logPath, from)
		prof.Wait()
		if pprofAddr != "" {
			saveProfile(pprofAddr, "heap", filepath.Join(o.profileDir, sc.name+"-heap.prof"))
			saveProfile(pprofAddr, "heap?debug=1", filepath.Join(o.profileDir, sc.name+"-heap.txt"))
		}
		results = append(results, r)
	}
	if o.only == "" || strings.Contains(","+o.only+",", ",sse,") {
		fmt.Fprintf(os.Stderr, "%-16s opening %d streams…\n", "sse", o.streams)
		rss.phase("sse")
		r, err := holdStreams(ctx, env, db, o.streams, srv.Process.Pid)
		if err != nil {
			return fmt.Errorf("sse: %w", err)
		}
		results = append(results, r)
	}
	if len(results) > 0 && results[0].RPS > 0 {
		for i := range results {
			if results[i].Name == "sse" {
				continue
			}
			results[i].Ratio = results[i].RPS / results[0].RPS
		}
	}
	rss.phase("idle")
	peak := peakRSSMiB(srv.Process.Pid)
	if err := settle(ctx, db); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%-16s pgbench -c %d…\n", "pgbench", o.pgClients)
	pgCPU := clusterCPU(pgdata)
	pg, pgbenchCPU, pgErr := pgbenchUpdate(ctx, dbURL, seed, o)
	pgPerTx := 0.0
	if pgErr == nil && pg > 0 && pgdata != "" {
		pgPerTx = float64((clusterCPU(pgdata) - pgCPU).Microseconds()) / (pg * o.duration.Seconds())
	}
	rss.stop()

	printTable(results, peak, pg, pgErr)
	if pgErr == nil {
		fmt.Printf("pgbench CPU per UPDATE: PostgreSQL %.0f µs, pgbench client %.0f µs\n", pgPerTx, float64(pgbenchCPU.Microseconds())/(pg*o.duration.Seconds()))
	}
	fmt.Printf("server GOMEMLIMIT: %s\n", cmp.Or(o.memLimit, "none (as shipped)"))
	phases := rss.phases()
	printRSS(phases)
	goals := goalsOf(results, phases, pg, pgErr)
	printGoals(goals, o)
	out := map[string]any{"serverGomemlimit": o.memLimit, "results": results, "serverPeakRssMiB": peak, "concurrency": o.concurrency,
		"durationSeconds": o.duration.Seconds(), "agents": o.agents, "rssOverTime": phases, "goals": goals, "pgbenchClients": o.pgClients}
	if pgErr == nil {
		out["pgbenchUpdateTps"] = pg
		out["pgbenchPgCpuUsPerUpdate"] = pgPerTx
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	return os.WriteFile(o.jsonOut, b, 0o644)
}

// scenario is one path under load; do performs one unit of work (a request,
// or a whole flow) and reports how many requests it made.
type scenario struct {
	name string
	unit string
	conc func(int) int
	do   func(worker int, i int64) error
	// visits is how many units the warm-up runs at least: the status poll's
	// visits every seeded agent once, so it is timed with what a steady load
	// keeps cached, not with first reads.
	visits int64
}

func same(n int) int { return n }

// seq numbers units of work across every phase, so generated names never repeat.
var seq atomic.Int64

// settle vacuums and analyzes the tables the scenarios write, as pgbench does
// before its run, so that a scenario is not measured while autovacuum cleans
// up after the one before it (tens of thousands of updated agent rows).
func settle(ctx context.Context, db *bun.DB) error {
	_, err := db.ExecContext(ctx, "VACUUM (ANALYZE) agents, api_keys, invites, join_requests, audit_events, sessions")
	if err != nil {
		return fmt.Errorf("vacuum between scenarios: %w", err)
	}
	return nil
}

// visit runs n units of sc over conc workers, numbered consecutively.
func visit(sc scenario, n int64, conc int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= n {
				sc.do(w, seq.Add(1))
			}
		}()
	}
	wg.Wait()
}

// measure runs sc for d with conc workers.
func measure(sc scenario, d time.Duration, conc int) result {
	var (
		errs     atomic.Int64
		mu       sync.Mutex
		lat      []time.Duration
		firstErr atomic.Value
	)
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			local := make([]time.Duration, 0, 4096)
			for i := int64(0); time.Now().Before(deadline); i++ {
				t0 := time.Now()
				err := sc.do(w, seq.Add(1))
				local = append(local, time.Since(t0))
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	r := result{Name: sc.name, Unit: sc.unit, Requests: int64(len(lat)), Errors: errs.Load()}
	if len(lat) > 0 {
		r.RPS = float64(len(lat)) / elapsed.Seconds()
		r.P50ms = float64(lat[len(lat)/2].Microseconds()) / 1000
		r.P99ms = float64(lat[len(lat)*99/100].Microseconds()) / 1000
	}
	if v := firstErr.Load(); v != nil {
		r.FirstError = v.(string)
	}
	return r
}

func printTable(rs []result, peak float64, pg float64, pgErr error) {
	fmt.Printf("\n%-22s %9s %8s %8s %8s %8s %7s %8s %8s %8s %8s\n", "path", "per sec", "p50 ms", "p99 ms", "srv p50", "srv p99", "errors", "ratio", "RSS MiB", "srv µs", "pg µs")
	for _, r := range rs {
		name := r.Name
		if r.Unit != "" {
			name += " (" + r.Unit + ")"
		}
		if r.Name == "sse" {
			fmt.Printf("%-22s %9s %8s %8s %8s %8s %7d %8s %8.1f\n", fmt.Sprintf("sse (%d streams)", r.Requests), "", "", "", "", "", r.Errors, "", r.RSSMiB)
		} else {
			srv := fmt.Sprintf("%8.2f %8.2f", r.ServerP50, r.ServerP99)
			if r.ServerP50 == 0 {
				srv = fmt.Sprintf("%8s %8s", "-", "-") // not logged (healthz is logged at debug level)
			}
			fmt.Printf("%-22s %9.0f %8.2f %8.2f %s %7d %7.2fx %8.1f %8.0f %8.0f\n", name, r.RPS, r.P50ms, r.P99ms, srv, r.Errors, r.Ratio, r.RSSMiB, r.ServerCPUus, r.PgCPUus)
		}
		for _, rl := range r.Routes {
			fmt.Printf("  %-52s srv p50 %7.2f  p99 %7.2f\n", rl.Route, rl.P50ms, rl.P99ms)
		}
		if r.FirstError != "" {
			fmt.Printf("  first error: %s\n", r.FirstError)
		}
	}
	fmt.Printf("server peak RSS: %.1f MiB\n", peak)
	if pgErr != nil {
		fmt.Printf("pgbench: not run (%v)\n", pgErr)
		return
	}
	fmt.Printf("pgbench single-row UPDATE: %.0f tps\n", pg)
	for _, r := range rs {
		switch r.Name {
		case "online-offline":
			fmt.Printf("online/offline vs pgbench UPDATE: %.2fx\n", r.RPS/pg)
		case "join-flow":
			fmt.Printf("join flows per 1,000 pgbench UPDATEs: %.1f\n", 1000*r.RPS/pg)
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitReady(base string) error {
	for i := 0; i < 300; i++ {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("server did not become ready in 30s")
}

func loginToken(base, email, password string) (string, error) {
	b, _ := json.Marshal(map[string]string{"email": email, "password": password})
	resp, err := http.Post(base+"/api/v1/auth/login", "application/json", bytes.NewReader(b))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Token == "" {
		return "", fmt.Errorf("login: status %d", resp.StatusCode)
	}
	return out.Token, nil
}

func loginCookie(base, email, password string) (*http.Client, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 128},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodPost, base+"/login", strings.NewReader(url.Values{"email": {email}, "password": {password}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		return nil, fmt.Errorf("browser login: status %d", resp.StatusCode)
	}
	return c, nil
}

// rssMiB reads the current resident set of pid.
func rssMiB(pid int) float64 { return procStatusKiB(pid, "VmRSS:") / 1024 }

// peakRSSMiB reads the high-water mark of pid's resident set.
func peakRSSMiB(pid int) float64 { return procStatusKiB(pid, "VmHWM:") / 1024 }

func procStatusKiB(pid int, field string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			v, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return v
		}
	}
	return 0
}
