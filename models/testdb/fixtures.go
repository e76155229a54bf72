package testdb

import (
	"testing"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/agentroster/agentroster/models"
)

// Org creates the platform admin root@example.com, with the organization the
// first one gets, and returns that organization's id.
func Org(t testing.TB, db bun.IDB) uuid.UUID {
	t.Helper()
	ctx := t.Context()
	sa, _, err := models.EnsureBootstrapSA(ctx, db, "root@example.com", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	orgs, err := models.ListUserOrgs(ctx, db, sa.ID)
	if err != nil || len(orgs) != 1 {
		t.Fatalf("bootstrap org: %v %v", orgs, err)
	}
	return orgs[0].ID
}

// Agent registers agent id in org's default team, approved unless pending,
// and returns it.
func Agent(t testing.TB, db bun.IDB, org uuid.UUID, id string, pending bool) *models.Agent {
	t.Helper()
	ctx := t.Context()
	team, err := models.DefaultTeam(ctx, db, org)
	if err != nil {
		t.Fatal(err)
	}
	a, err := models.RegisterAgent(ctx, db, org, team.ID, models.RegisterInput{ID: id, Title: "Agent " + id}, models.System)
	if err != nil {
		t.Fatal(err)
	}
	if pending {
		return a
	}
	if a, err = models.TransitionAgent(ctx, db, org, id, "approve", models.System); err != nil {
		t.Fatal(err)
	}
	return a
}
