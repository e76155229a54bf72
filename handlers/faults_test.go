package handlers

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/models/pgcluster"
)

// TestFaultDatabaseRestart restarts PostgreSQL under load: while it is down,
// requests fail fast with 503 and /readyz says so; within 5 s of its return
// everything works; no successful write is lost; no goroutine is left behind.
func TestFaultDatabaseRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts its own PostgreSQL cluster")
	}
	dir := filepath.Join(t.TempDir(), "pg")
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cluster, err := pgcluster.Start(t.Context(), pgcluster.Options{Dir: dir, Fast: true, Logger: quiet})
	if err != nil {
		if err == pgcluster.ErrNoBinaries {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { cluster.Stop() })
	if err := cluster.CreateDatabase(t.Context(), "faults"); err != nil {
		t.Fatal(err)
	}
	migrated, err := models.Open(cluster.URL("faults"), 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := models.Migrate(t.Context(), migrated, quiet); err != nil {
		t.Fatal(err)
	}
	migrated.Close()

	goroutinesBefore := runtime.NumGoroutine()
	e := newEnvOn(t, cluster.URL("faults"))
	admin := e.token("root@example.com")
	_, key := e.teamKey(e.org.ID)
	team, err := models.DefaultTeam(t.Context(), e.db, e.org.ID)
	if err != nil {
		t.Fatal(err)
	}
	e.agentIn(e.org.ID, "steady", models.StatusApproved)

	type outcome struct {
		status int
		took   time.Duration
	}
	var (
		down, up    atomic.Bool
		mu          sync.Mutex
		registered  []string // ids whose registration answered 200
		duringDown  []outcome
		serverError atomic.Int64
		stop        = make(chan struct{})
		wg          sync.WaitGroup
	)
	client := &http.Client{Timeout: 30 * time.Second}
	request := func(method, path, auth string, body any) int {
		start := time.Now()
		status, _ := e.doWith(client, method, path, auth, body)
		took := time.Since(start)
		if status >= 500 && status != http.StatusServiceUnavailable {
			serverError.Add(1)
		}
		if down.Load() && !up.Load() {
			mu.Lock()
			duringDown = append(duringDown, outcome{status, took})
			mu.Unlock()
		}
		return status
	}
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				switch n % 4 {
				case 0:
					request(http.MethodGet, "/api/v1/agents/steady/status", key, nil)
				case 1:
					id := fmt.Sprintf("fault-%d-%d", w, n)
					if request(http.MethodPost, "/api/v1/teams/"+team.ID.String()+"/agents/register", key, map[string]string{"id": id}) == http.StatusOK {
						mu.Lock()
						registered = append(registered, id)
						mu.Unlock()
					}
				case 2:
					request(http.MethodGet, "/api/v1/organizations/"+e.org.ID.String()+"/agents?limit=20", admin, nil)
				case 3:
					action := []string{"stop", "resume"}[n/4%2]
					request(http.MethodPatch, "/api/v1/agents/steady/"+action, admin, "{}")
				}
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)

	// The outage.
	down.Store(true)
	if err := cluster.Stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if s, _ := e.do(http.MethodGet, "/readyz", "", nil); s != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the outage: %d", s)
	}
	res := e.call(http.MethodGet, "/api/v1/agents/steady/status", key, nil)
	res.wantError(http.StatusServiceUnavailable, "unavailable")
	if res.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	time.Sleep(time.Second)

	// The database returns.
	cluster, err = pgcluster.Start(context.Background(), pgcluster.Options{Dir: dir, Fast: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	up.Store(true)
	recovered := time.Duration(-1)
	for time.Since(back) < 15*time.Second {
		s1, _ := e.do(http.MethodGet, "/readyz", "", nil)
		s2, _ := e.do(http.MethodGet, "/api/v1/agents/steady/status", key, nil)
		s3, _ := e.do(http.MethodGet, "/api/v1/organizations/"+e.org.ID.String()+"/agents?limit=5", admin, nil)
		if s1 == http.StatusOK && s2 == http.StatusOK && s3 == http.StatusOK {
			recovered = time.Since(back)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // load on the recovered database
	close(stop)
	wg.Wait()

	violations, lost := 0, 0
	if recovered < 0 || recovered > 5*time.Second {
		t.Errorf("not working again within 5 s of the database's return (took %v)", recovered)
		violations++
	}
	slow := 0
	for _, o := range duringDown {
		if o.took > 3*time.Second {
			slow++
		}
	}
	if slow > 0 || len(duringDown) == 0 {
		t.Errorf("%d of %d requests during the outage took over 3 s", slow, len(duringDown))
		violations++
	}
	if n := serverError.Load(); n > 0 {
		t.Errorf("%d answers were 5xx other than 503", n)
		violations++
	}
	for _, id := range registered {
		if e.dbAgent(e.org.ID, id) == nil {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged registrations are missing", lost, len(registered))
	}
	violations += checkInvariants(t, e.db)

	// No goroutine outlives the load: close the connections and compare.
	client.CloseIdleConnections()
	raceClient.CloseIdleConnections()
	http.DefaultClient.CloseIdleConnections()
	e.srv.CloseClientConnections()
	e.srv.Close()
	e.stop()
	e.db.Close()
	deadline := time.Now().Add(10 * time.Second)
	after := runtime.NumGoroutine()
	for after > goroutinesBefore+2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		after = runtime.NumGoroutine()
	}
	if after > goroutinesBefore+2 {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines: %d before, %d after\n%s", goroutinesBefore, after, buf[:runtime.Stack(buf, true)])
		violations++
	}
	t.Logf("outage: %d requests, recovered in %v, %d registrations kept", len(duringDown), recovered.Round(time.Millisecond), len(registered))
	summary(t, "fault", "db-restart", "faults", 1, "lost", lost, "violations", violations)
}
