package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/models/testdb"
)

// bouncerPoolSize is PgBouncer's server connections per database in the test:
// far fewer than the two replicas' pools (16 each), so transactions of both
// replicas share server connections.
const bouncerPoolSize = 4

// startPgBouncer runs PgBouncer in transaction pooling mode on a private port
// in front of the database at direct, and returns the URL through it. It
// skips the test when the pgbouncer binary is missing, except under CI=true.
func startPgBouncer(t *testing.T, direct string) string {
	t.Helper()
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		for _, p := range []string{"/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"} {
			if _, serr := os.Stat(p); serr == nil {
				bin, err = p, nil
				break
			}
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("pgbouncer is not installed (apt-get install pgbouncer; .ci/run installs it)")
		}
		t.Skip("pgbouncer is not installed (apt-get install pgbouncer)")
	}
	pc, err := pgx.ParseConfig(direct)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()

	// Not t.TempDir(): its parent is private to this user, and PgBouncer may
	// run as another.
	dir, err := os.MkdirTemp("", "pgbouncer-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ini := fmt.Sprintf(`[databases]
%[1]s = host=%[2]s port=%[3]d dbname=%[1]s user=%[4]s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %[5]d
unix_socket_dir =
auth_type = trust
auth_file = %[6]s/users.txt
pool_mode = transaction
default_pool_size = %[7]d
max_client_conn = 200
logfile = %[6]s/pgbouncer.log
pidfile = %[6]s/pgbouncer.pid
admin_users = %[4]s
`, pc.Database, pc.Host, pc.Port, pc.User, port, dir, bouncerPoolSize)
	if err := os.WriteFile(filepath.Join(dir, "pgbouncer.ini"), []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "users.txt"), []byte(fmt.Sprintf("%q \"\"\n", pc.User)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, filepath.Join(dir, "pgbouncer.ini"))
	// PgBouncer refuses to run as root: run it as the user that owns the
	// private cluster, like pgcluster does.
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs the postgres OS user for pgbouncer: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "pgbouncer.log"))
			t.Logf("pgbouncer output:\n%s\n%s", out.String(), log)
		}
	})
	pooled := fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", pc.User, port, pc.Database)
	deadline := time.Now().Add(20 * time.Second)
	for {
		conn, err := pgx.Connect(t.Context(), pooled)
		if err == nil {
			conn.Close(t.Context())
			return pooled
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "pgbouncer.log"))
			t.Fatalf("pgbouncer does not answer: %v\n%s\n%s", err, out.String(), log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReplicasBehindPgBouncer runs two server processes whose DATABASE_URL is
// PgBouncer in transaction pooling mode (LISTEN and migrations on the direct
// LISTEN_DATABASE_URL), and checks that live updates cross replicas, a key
// revoked on one is refused on the other within a second, and concurrent load
// through the pooler gets no error (in particular none about prepared
// statements, which transaction pooling breaks).
func TestReplicasBehindPgBouncer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts two servers and PgBouncer")
	}
	direct := testdb.Empty(t)
	pooled := startPgBouncer(t, direct)
	rs := startReplicas(t, pooled, 2, "LISTEN_DATABASE_URL="+direct)
	a, b := rs[0], rs[1]

	db, err := models.Open(direct, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var applied int
	db.NewRaw("SELECT count(*) FROM bun_migrations").Scan(t.Context(), &applied)
	if applied == 0 {
		t.Fatal("no migrations recorded")
	}

	var tok struct{ Token string }
	a.must(t, http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": replicaEmail, "password": replicaPassword}, 200, &tok)
	var orgs []struct{ ID string }
	b.must(t, http.MethodGet, "/api/v1/organizations", tok.Token, nil, 200, &orgs)
	org := orgs[0].ID
	var teams []struct{ ID string }
	b.must(t, http.MethodGet, "/api/v1/organizations/"+org+"/teams", tok.Token, nil, 200, &teams)
	var key struct{ ID, RawKey string }
	a.must(t, http.MethodPost, "/api/v1/settings/api-keys", tok.Token, map[string]string{"name": "pooled key", "orgId": org}, 201, &key)
	b.must(t, http.MethodPost, "/api/v1/teams/"+teams[0].ID+"/agents/register", key.RawKey, map[string]string{"id": "p1"}, 200, nil)

	// A change made on A reaches a stream open on B (LISTEN on the direct URL).
	browser := b.signIn(t)
	events := openEvents(t, browser, b.base)
	a.must(t, http.MethodPatch, "/api/v1/agents/p1/approve?orgId="+org, tok.Token, struct{}{}, 200, nil)
	waitEvent(t, events, "agent-p1")

	// Concurrent load through the pooler on both replicas: registrations,
	// approvals, presence flips and status polls.
	const workers, rounds = 16, 12
	var wg sync.WaitGroup
	errs := make(chan string, workers*rounds*4)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, other := rs[w%2], rs[(w+1)%2]
			for i := range rounds {
				id := fmt.Sprintf("w%d-%d", w, i)
				check := func(what string, code int, body []byte, want int) bool {
					if code != want {
						errs <- fmt.Sprintf("%s %s: %d %s", what, id, code, body)
						return false
					}
					return true
				}
				code, body := r.call(t, nil, http.MethodPost, "/api/v1/teams/"+teams[0].ID+"/agents/register", key.RawKey, map[string]string{"id": id})
				if !check("register", code, body, 200) {
					continue
				}
				code, body = other.call(t, nil, http.MethodPatch, "/api/v1/agents/"+id+"/approve?orgId="+org, tok.Token, struct{}{})
				if !check("approve", code, body, 200) {
					continue
				}
				for _, step := range []string{"online", "offline", "online"} {
					code, body = r.call(t, nil, http.MethodPost, "/api/v1/agents/"+id+"/"+step, key.RawKey, struct{}{})
					check(step, code, body, 200)
				}
				code, body = other.call(t, nil, http.MethodGet, "/api/v1/agents/"+id+"/status", key.RawKey, nil)
				check("status", code, body, 200)
				code, body = r.call(t, nil, http.MethodGet, "/api/v1/organizations/"+org+"/agents?limit=20", tok.Token, nil)
				check("roster", code, body, 200)
			}
		}()
	}
	wg.Wait()
	close(errs)
	var failures []string
	for e := range errs {
		failures = append(failures, e)
	}
	if len(failures) > 0 {
		t.Fatalf("%d requests failed under load through PgBouncer, e.g. %v", len(failures), failures[:min(5, len(failures))])
	}
	for i, r := range rs {
		log := strings.ToLower(r.log.String())
		for _, bad := range []string{"prepared statement", "sqlstate 26000", "sqlstate 42p05", "sqlstate 08p01"} {
			if strings.Contains(log, bad) {
				t.Fatalf("replica %d logged %q under load through PgBouncer", i, bad)
			}
		}
	}
	var online int
	db.NewRaw("SELECT count(*) FROM agents WHERE id LIKE 'w%' AND is_online").Scan(t.Context(), &online)
	if online != workers*rounds {
		t.Fatalf("%d agents online after the load, want %d", online, workers*rounds)
	}
	// The replicas really share PgBouncer's few server connections: at most
	// the pool plus the two direct LISTEN connections (and this one) reach
	// the database, where each replica alone may open 16.
	var backends int
	db.NewRaw("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()").Scan(t.Context(), &backends)
	if backends > bouncerPoolSize+3 {
		t.Fatalf("%d backends on the database, want at most %d through the pooler", backends, bouncerPoolSize+3)
	}

	// Both replicas hold the key; revoke it on A: A refuses it at once, B
	// within a second.
	status := func(r *replica) int {
		code, _ := r.call(t, nil, http.MethodGet, "/api/v1/agents/p1/status", key.RawKey, nil)
		return code
	}
	for range 3 {
		for _, r := range rs {
			if code := status(r); code != 200 {
				t.Fatalf("status on %s: %d", r.base, code)
			}
		}
	}
	a.must(t, http.MethodDelete, "/api/v1/settings/api-keys/"+key.ID+"?orgId="+org, tok.Token, nil, 200, nil)
	if code := status(a); code != http.StatusUnauthorized {
		t.Fatalf("revoked key on A right after its revocation: %d", code)
	}
	took := within(t, time.Second, "revocation honoured on B", func() bool { return status(b) == http.StatusUnauthorized })
	t.Logf("revocation honoured on the other replica after %s", took)
}
