package pgcluster

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func requireBinaries(t *testing.T) {
	t.Helper()
	if _, err := FindBinaries(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

func query(t *testing.T, c *Cluster, sql string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	var s string
	if err := conn.QueryRow(ctx, sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func TestFirstStartReuseAndStop(t *testing.T) {
	requireBinaries(t)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "pg")
	c, err := Start(ctx, Options{Dir: dir, Fast: true})
	if err != nil {
		t.Fatalf("first start: %v", err)
	}
	if got := query(t, c, "SHOW listen_addresses"); got != "" {
		t.Errorf("listen_addresses = %q, want no TCP listener", got)
	}
	if err := c.CreateDatabase(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateDatabase(ctx, "app"); err != nil {
		t.Fatalf("creating an existing database again: %v", err)
	}
	conn, err := pgx.Connect(ctx, c.URL("app"))
	if err != nil {
		t.Fatal(err)
	}
	conn.Exec(ctx, "CREATE TABLE kept (v text)")
	conn.Exec(ctx, "INSERT INTO kept VALUES ('still here')")
	conn.Close(ctx)

	// A second process may not share the directory while the first holds it.
	if _, err := Start(ctx, Options{Dir: dir, Fast: true}); !errors.Is(err, ErrInUse) {
		t.Fatalf("second start on a held directory: %v, want ErrInUse", err)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "pgdata", "postmaster.pid")); !os.IsNotExist(err) {
		t.Fatalf("postmaster.pid still there after Stop: %v", err)
	}

	c2, err := Start(ctx, Options{Dir: dir, Fast: true})
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	defer c2.Stop()
	conn, err = pgx.Connect(ctx, c2.URL("app"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v string
	if err := conn.QueryRow(ctx, "SELECT v FROM kept").Scan(&v); err != nil || v != "still here" {
		t.Fatalf("data after restart: %q, %v", v, err)
	}
}

func postmasterPID(t *testing.T, dir string) int {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "pgdata", "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan()
	pid, err := strconv.Atoi(sc.Text())
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// The server process was killed (kill -9): its lock is gone but its postgres
// is still running. The next start stops that orphan and starts afresh.
func TestRestartAfterServerCrash(t *testing.T) {
	requireBinaries(t)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "pg")
	c, err := Start(ctx, Options{Dir: dir, Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	orphan := postmasterPID(t, dir)
	c.unlock() // what the kernel does when the owning process dies

	c2, err := Start(ctx, Options{Dir: dir, Fast: true})
	if err != nil {
		t.Fatalf("start after crash: %v", err)
	}
	defer c2.Stop()
	if pid := postmasterPID(t, dir); pid == orphan {
		t.Fatalf("still the orphaned postmaster %d", pid)
	}
	query(t, c2, "SELECT 'ok'")
}

// PostgreSQL itself was killed (kill -9): postmaster.pid names a dead process.
func TestRestartWithStalePidFile(t *testing.T) {
	requireBinaries(t)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "pg")
	c, err := Start(ctx, Options{Dir: dir, Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	pid := postmasterPID(t, dir)
	syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	c.unlock()
	if _, err := os.Stat(filepath.Join(dir, "pgdata", "postmaster.pid")); err != nil {
		t.Fatalf("expected a stale postmaster.pid: %v", err)
	}
	c2, err := Start(ctx, Options{Dir: dir, Fast: true})
	if err != nil {
		t.Fatalf("start with stale pid file: %v", err)
	}
	defer c2.Stop()
	query(t, c2, "SELECT 'ok'")
}

func TestMissingBinaries(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	old := debianGlob
	debianGlob = filepath.Join(t.TempDir(), "*", "bin")
	defer func() { debianGlob = old }()

	_, err := Start(context.Background(), Options{Dir: t.TempDir()})
	if !errors.Is(err, ErrNoBinaries) {
		t.Fatalf("err = %v, want ErrNoBinaries", err)
	}
	for _, hint := range []string{"apt-get install postgresql", "DATABASE_URL"} {
		if !strings.Contains(err.Error(), hint) {
			t.Errorf("message %q does not name %q", err, hint)
		}
	}
}

// TestShippedClusterIsDurable starts the cluster the server runs by default
// (not the tests' fast one): its tuning keeps every setting a committed
// write's survival depends on.
func TestShippedClusterIsDurable(t *testing.T) {
	requireBinaries(t)
	c, err := Start(context.Background(), Options{Dir: filepath.Join(t.TempDir(), "pg")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	for setting, want := range map[string]string{
		"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on",
		"wal_level": "minimal", "jit": "off", "checkpoint_timeout": "15min",
	} {
		if got := query(t, c, "SHOW "+setting); got != want {
			t.Errorf("%s = %q, want %q", setting, got, want)
		}
	}
}
