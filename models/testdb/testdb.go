// Package testdb gives each test its own migrated PostgreSQL database.
//
// A test binary uses TEST_DATABASE_URL when it is set (a role allowed to create
// databases), else it starts a private cluster (package pgcluster) in a
// temporary directory. Either way the schema is migrated once into a template
// database, and every test gets a copy of it, so tests can run in parallel and
// never see each other's rows.
package testdb

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/uptrace/bun"

	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/models/pgcluster"
)

var (
	once     sync.Once
	setupErr error
	cluster  *pgcluster.Cluster
	tmpDir   string
	adminURL string
	template string
	seq      atomic.Int64
	createMu sync.Mutex
)

// Main runs the tests of a package and then stops the private cluster, if one was started.
// Use it from TestMain: func TestMain(m *testing.M) { testdb.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	Shutdown()
	os.Exit(code)
}

// Shutdown stops the private cluster and removes its directory (or drops the
// template database on TEST_DATABASE_URL).
func Shutdown() {
	if cluster != nil {
		cluster.Stop()
		os.RemoveAll(tmpDir)
		cluster = nil
	} else if adminURL != "" && template != "" {
		dropDatabase(context.Background(), template)
	}
}

func setup() error {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		adminURL = u
	} else {
		dir, err := os.MkdirTemp("", "agentroster-test-")
		if err != nil {
			return err
		}
		tmpDir = dir
		cluster, err = pgcluster.Start(ctx, pgcluster.Options{Dir: dir + "/pg", Fast: true, Logger: log})
		if err != nil {
			os.RemoveAll(dir)
			return err
		}
		adminURL = cluster.URL("postgres")
	}
	template = fmt.Sprintf("tmpl_%d_%s", os.Getpid(), models.RandomBase62(6))
	if err := pgcluster.CreateDatabase(ctx, adminURL, template, ""); err != nil {
		return fmt.Errorf("create template database: %w", err)
	}
	db, err := models.Open(URL(template), 2)
	if err != nil {
		return err
	}
	defer db.Close()
	return models.Migrate(ctx, db, log)
}

// URL returns the connection URL of database name on the test server.
func URL(name string) string {
	u, err := url.Parse(adminURL)
	if err != nil {
		panic(err)
	}
	u.Path = "/" + name
	return u.String()
}

// Fresh creates an empty migrated database and returns its name and URL; it is
// dropped when the test ends. Use it when the test needs a URL (to start a
// server process), else use New.
func Fresh(t testing.TB) (name, dbURL string) {
	t.Helper()
	once.Do(func() { setupErr = setup() })
	if setupErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("test database unavailable (CI=true requires it): %v", setupErr)
		}
		t.Skipf("test database unavailable: %v", setupErr)
	}
	name = fmt.Sprintf("t_%d_%d_%s", os.Getpid(), seq.Add(1), models.RandomBase62(4))
	// CREATE DATABASE copies the template; one copy at a time keeps it cheap.
	createMu.Lock()
	err := pgcluster.CreateDatabase(context.Background(), adminURL, name, template)
	createMu.Unlock()
	if err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() { dropDatabase(context.Background(), name) })
	return name, URL(name)
}

// New returns a connection pool to a fresh migrated database for this test.
func New(t testing.TB) *bun.DB {
	t.Helper()
	_, dbURL := Fresh(t)
	db, err := models.Open(dbURL, 8)
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Empty creates an empty (unmigrated) database and returns its URL, for
// migration tests.
func Empty(t testing.TB) string {
	t.Helper()
	Fresh(t) // ensures setup
	name := fmt.Sprintf("e_%d_%d_%s", os.Getpid(), seq.Add(1), models.RandomBase62(4))
	if err := pgcluster.CreateDatabase(context.Background(), adminURL, name, ""); err != nil {
		t.Fatalf("create empty database: %v", err)
	}
	t.Cleanup(func() { dropDatabase(context.Background(), name) })
	return URL(name)
}

func dropDatabase(ctx context.Context, name string) {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}
