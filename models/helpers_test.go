package models_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/agentroster/agentroster/migrations"
	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/models/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// world is an org with its default team on a fresh database.
type world struct {
	t    *testing.T
	ctx  context.Context
	db   *bun.DB
	org  uuid.UUID
	team uuid.UUID
}

func newWorld(t *testing.T) *world {
	t.Helper()
	db := testdb.New(t)
	ctx := t.Context()
	org, err := models.CreateOrg(ctx, db, "Acme", "", nil, models.System)
	if err != nil {
		t.Fatal(err)
	}
	team, err := models.DefaultTeam(ctx, db, org.ID)
	if err != nil {
		t.Fatal(err)
	}
	return &world{t: t, ctx: ctx, db: db, org: org.ID, team: team.ID}
}

// agent registers id and brings it to status through the state machine.
func (w *world) agent(id, status string) *models.Agent {
	w.t.Helper()
	a, err := models.RegisterAgent(w.ctx, w.db, w.org, w.team, models.RegisterInput{ID: id}, models.System)
	if err != nil {
		w.t.Fatal(err)
	}
	steps := map[string][]string{models.StatusApproved: {models.ActionApprove}, models.StatusStopped: {models.ActionApprove, models.ActionStop}}
	for _, s := range steps[status] {
		if a, err = models.TransitionAgent(w.ctx, w.db, w.org, id, s, models.System); err != nil {
			w.t.Fatal(err)
		}
	}
	return a
}

func stateCode(err error) string {
	var se *models.StateError
	if errors.As(err, &se) {
		return se.Code
	}
	return ""
}

func countRows(t *testing.T, db bun.IDB, table, where string, args ...any) int {
	t.Helper()
	n, err := db.NewSelect().Table(table).Where(where, args...).Count(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func migration(t *testing.T, name string) string {
	t.Helper()
	b, err := migrations.FS.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
