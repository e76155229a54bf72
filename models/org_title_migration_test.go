package models_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/models/testdb"
)

// TestOrgTitleMigrationRenamesDuplicates applies migration 0012 to an install
// where titles repeat (trimmed, any case): the oldest org of each title keeps
// it, the others get a numbered suffix that is itself free (even next to an
// org already called "Acme (2)", and within the 200-character limit), and
// afterwards no title can be given twice.
func TestOrgTitleMigrationRenamesDuplicates(t *testing.T) {
	ctx := context.Background()
	db := testdb.New(t)
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec(migration(t, "0012_org_title_unique.tx.down.sql"))
	long := strings.Repeat("x", 200)
	rows := []struct {
		title string
		age   int // minutes
	}{
		{"Acme", 50}, {"acme ", 40}, {"ACME", 30}, {"Acme (2)", 20},
		{long, 10}, {strings.ToUpper(long), 5}, {"Solo", 1},
	}
	for _, r := range rows {
		exec("INSERT INTO organizations (title, created_at) VALUES (?, now() - make_interval(mins => ?))", r.title, r.age)
	}
	exec(migration(t, "0012_org_title_unique.tx.up.sql"))

	var titles []string
	if err := db.NewRaw("SELECT title FROM organizations ORDER BY created_at").Scan(ctx, &titles); err != nil {
		t.Fatal(err)
	}
	if len(titles) != len(rows) {
		t.Fatalf("%d orgs after the migration, want %d", len(titles), len(rows))
	}
	if titles[0] != "Acme" || titles[3] != "Acme (2)" || titles[4] != long || titles[6] != "Solo" {
		t.Fatalf("the oldest org of a title or a unique one was renamed: %q", titles)
	}
	seen := map[string]bool{}
	for _, title := range titles {
		key := strings.ToLower(strings.TrimSpace(title))
		if seen[key] || len([]rune(title)) > 200 || title == "" {
			t.Fatalf("titles after the migration: %q", titles)
		}
		seen[key] = true
	}
	if !strings.HasPrefix(titles[1], "acme (") || !strings.HasPrefix(titles[2], "ACME (") || !strings.HasSuffix(titles[5], ")") {
		t.Fatalf("renamed titles: %q", titles)
	}

	_, err := models.CreateOrg(ctx, db, " ACME ", "", nil, models.System)
	var se *models.StateError
	if !errors.As(err, &se) || se.Code != "org_exists" {
		t.Fatalf("create with a taken title after the migration: %v", err)
	}
	if broken, err := testdb.CheckInvariants(ctx, db); err != nil || len(broken) > 0 {
		t.Fatalf("invariants after the migration: %v %v", broken, err)
	}
}
