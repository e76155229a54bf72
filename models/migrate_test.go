package models_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/models/testdb"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func tables(t *testing.T, ctx context.Context, url string) []string {
	t.Helper()
	db, err := models.Open(url, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var names []string
	err = db.NewRaw("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name NOT LIKE 'bun_%' ORDER BY 1").Scan(ctx, &names)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestMigrationsUpDownUp(t *testing.T) {
	ctx := context.Background()
	url := testdb.Empty(t)
	db, err := models.Open(url, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	if err := models.Migrate(ctx, db, quiet); err != nil {
		t.Fatalf("up: %v", err)
	}
	up := tables(t, ctx, url)
	for _, want := range []string{"organizations", "teams", "users", "memberships", "sessions", "audit_events", "agents", "invites", "join_requests", "api_keys"} {
		if !contains(up, want) {
			t.Errorf("after up, table %s missing (have %v)", want, up)
		}
	}
	for range 10 { // roll every group back
		if err := models.Rollback(ctx, db, quiet); err != nil {
			t.Fatalf("down: %v", err)
		}
	}
	if down := tables(t, ctx, url); len(down) != 0 {
		t.Fatalf("after down, tables remain: %v", down)
	}
	if err := models.Migrate(ctx, db, quiet); err != nil {
		t.Fatalf("up again: %v", err)
	}
	if again := tables(t, ctx, url); strings.Join(again, ",") != strings.Join(up, ",") {
		t.Fatalf("up again gave %v, want %v", again, up)
	}
	var status strings.Builder
	if err := models.MigrationStatus(ctx, db, &status); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(status.String(), "pending") || !strings.Contains(status.String(), "0001_foundation") {
		t.Fatalf("status after up:\n%s", status.String())
	}
}

func TestConcurrentMigrateAppliesOnce(t *testing.T) {
	ctx := context.Background()
	url := testdb.Empty(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			db, err := models.Open(url, 2)
			if err != nil {
				errs <- err
				return
			}
			defer db.Close()
			errs <- models.Migrate(ctx, db, quiet)
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent migrate: %v", err)
		}
	}
	db, _ := models.Open(url, 1)
	defer db.Close()
	var groups []int64
	if err := db.NewRaw("SELECT DISTINCT group_id FROM bun_migrations").Scan(ctx, &groups); err != nil {
		t.Fatal(err)
	}
	if len(groups) != 1 {
		t.Fatalf("migrations applied in %d groups, want 1 (two servers migrated)", len(groups))
	}
}
