package models_test

import (
	"context"
	"errors"
	"testing"

	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/models/testdb"
)

// TestClaimMigrationOfOpenRequests applies migration 0008 to requests made
// before it: an approved, unclaimed request whose agent still exists is bound
// to it and claims with the secret it was given (only its hash was ever
// stored); one whose agent was deleted and re-created under the same name is
// void and cannot claim the new agent's key.
func TestClaimMigrationOfOpenRequests(t *testing.T) {
	ctx := context.Background()
	db := testdb.New(t)
	org, err := models.CreateOrg(ctx, db, "Legacy", "", nil, models.System)
	if err != nil {
		t.Fatal(err)
	}
	join := func(name string) (*models.Joined, error) {
		inv, err := models.CreateInvite(ctx, db, newSealer(t), org.ID, models.InviteInput{AgentName: name, MaxUses: 1, TTLSeconds: 3600}, models.System)
		if err != nil {
			return nil, err
		}
		j, err := models.JoinInvite(ctx, db, inv.Token, models.JoinInput{}, models.System)
		if err != nil {
			return nil, err
		}
		_, err = models.ApproveJoinRequest(ctx, db, org.ID, j.Request.ID, models.System)
		return j, err
	}
	kept, err := join("kept")
	if err != nil {
		t.Fatal(err)
	}
	replaced, err := join("replaced")
	if err != nil {
		t.Fatal(err)
	}

	// Back to the schema before 0008, and the state its bug left: the agent
	// of "replaced" deleted and a new one registered under its name.
	exec := func(sql string) {
		t.Helper()
		if _, err := db.ExecContext(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	exec(migration(t, "0008_claim_integrity.tx.down.sql"))
	exec("UPDATE agents SET created_at = created_at - interval '1 hour' WHERE id = 'kept'")
	exec("UPDATE join_requests SET decided_at = decided_at - interval '1 minute' WHERE agent_name = 'kept'")
	exec("UPDATE agents SET created_at = now() + interval '1 minute' WHERE id = 'replaced'")
	exec(migration(t, "0008_claim_integrity.tx.up.sql"))

	cl, err := models.ClaimJoinRequest(ctx, db, kept.Request.ID, kept.ClaimSecret, models.System)
	if err != nil || cl.Key == nil || *cl.Key.AgentID != "kept" {
		t.Fatalf("claim of a request open across the migration: %+v %v", cl, err)
	}
	_, err = models.ClaimJoinRequest(ctx, db, replaced.Request.ID, replaced.ClaimSecret, models.System)
	var se *models.StateError
	if !errors.As(err, &se) || se.Code != "agent_deleted" {
		t.Fatalf("claim of a request whose agent was replaced: %v", err)
	}
	if broken, err := testdb.CheckInvariants(ctx, db); err != nil || len(broken) > 0 {
		t.Fatalf("invariants after the migration: %v %v", broken, err)
	}
}

func newSealer(t *testing.T) *models.Sealer {
	t.Helper()
	s, err := models.NewSealer([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
