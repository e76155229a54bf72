package models_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/agentroster/agentroster/models"
)

// TestTransitionAgent walks the seeds' state machine: every status against
// every action, with pickup and presence as the spec fixes them, one status
// event per change, and the refusal naming the current status.
func TestTransitionAgent(t *testing.T) {
	w := newWorld(t)
	type want struct {
		status string // "" = refused
		pickup bool
	}
	cases := map[string]map[string]want{
		models.StatusPending:  {models.ActionApprove: {models.StatusApproved, true}, models.ActionStop: {}, models.ActionResume: {}},
		models.StatusApproved: {models.ActionApprove: {}, models.ActionStop: {models.StatusStopped, false}, models.ActionResume: {}},
		models.StatusStopped:  {models.ActionApprove: {models.StatusApproved, true}, models.ActionStop: {}, models.ActionResume: {models.StatusApproved, true}},
	}
	n := 0
	for from, actions := range cases {
		for action, w2 := range actions {
			n++
			id := strings.ToLower(from + "-" + action)
			before := w.agent(id, from)
			if before.Status != from {
				t.Fatalf("%s: set up as %s", id, before.Status)
			}
			if from == models.StatusApproved {
				// Online, so a stop has presence to clear.
				if _, err := w.db.NewUpdate().Model(before).Set("is_online = true").WherePK().Exec(w.ctx); err != nil {
					t.Fatal(err)
				}
			}
			events := countRows(t, w.db, "audit_events", "target_id = ?", id)
			got, err := models.TransitionAgent(w.ctx, w.db, w.org, id, action, models.System)
			if w2.status == "" {
				var se *models.StateError
				if !errors.As(err, &se) || se.Code != "invalid_transition" || se.Details["status"] != from {
					t.Errorf("%s %s: %v, want 409 invalid_transition naming %s", action, from, err, from)
				}
				if countRows(t, w.db, "audit_events", "target_id = ?", id) != events {
					t.Errorf("%s %s: a refused transition was audited", action, from)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s %s: %v", action, from, err)
			}
			if got.Status != w2.status || got.PickupEnabled != w2.pickup || got.IsOnline {
				t.Errorf("%s %s: status %s pickup %v online %v", action, from, got.Status, got.PickupEnabled, got.IsOnline)
			}
			if countRows(t, w.db, "audit_events", "target_id = ?", id) != events+1 {
				t.Errorf("%s %s: want exactly one audit event", action, from)
			}
		}
	}
	if n != 9 {
		t.Fatalf("%d cases", n)
	}
	if _, err := models.TransitionAgent(w.ctx, w.db, w.org, "nobody", models.ActionStop, models.System); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("unknown agent: %v", err)
	}
	if _, err := models.TransitionAgent(w.ctx, w.db, uuid.New(), "pending-approve", models.ActionApprove, models.System); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("another org's agent: %v", err)
	}
}

// TestSetGrants: grants replace the earlier ones, unknown columns are field
// errors, and the resolved permissions add the grants to the column defaults.
func TestSetGrants(t *testing.T) {
	w := newWorld(t)
	w.agent("granted", models.StatusApproved)
	cols, err := models.ListColumns(w.ctx, w.db, w.org)
	if err != nil || len(cols) < 2 {
		t.Fatalf("default columns: %v %v", cols, err)
	}
	a, b := cols[0].ID, cols[len(cols)-1].ID
	g := models.Grants{
		Columns:     []models.ColumnGrant{{ColumnID: b, CanModerate: true}},
		Transitions: []models.TransitionGrant{{From: a, To: b}},
	}
	if _, err := models.SetGrants(w.ctx, w.db, w.org, "granted", g, models.System); err != nil {
		t.Fatal(err)
	}
	p, err := models.AgentPermissions(w.ctx, w.db, w.org, "granted")
	if err != nil {
		t.Fatal(err)
	}
	if !contains(p.CanModerate, b) || !contains(p.CanRead, b) || !contains(p.CanRead, a) || !contains(p.CanTransition, a+"->"+b) {
		t.Fatalf("resolved %+v", p)
	}
	// Replacing with nothing leaves only the defaults.
	if _, err := models.SetGrants(w.ctx, w.db, w.org, "granted", models.Grants{}, models.System); err != nil {
		t.Fatal(err)
	}
	if got, err := models.GetGrants(w.ctx, w.db, w.org, "granted"); err != nil || len(got.Columns)+len(got.Transitions) != 0 {
		t.Fatalf("grants after replace: %+v %v", got, err)
	}
	var ve *models.ValidationError
	_, err = models.SetGrants(w.ctx, w.db, w.org, "granted", models.Grants{Columns: []models.ColumnGrant{{ColumnID: "col_nowhere", CanRead: true}}}, models.System)
	if !errors.As(err, &ve) {
		t.Fatalf("unknown column: %v", err)
	}
	if _, err := models.SetGrants(w.ctx, w.db, w.org, "nobody", g, models.System); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("unknown agent: %v", err)
	}
}

// TestJoinApproveClaim: a join uses the invite once, a claim waits while the
// request is pending, gives the key exactly once after approval, refuses a
// wrong secret without telling it from an unknown request, and a rejected
// request never gives one.
func TestJoinApproveClaim(t *testing.T) {
	w := newWorld(t)
	sealer, err := models.NewSealer([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	inv, err := models.CreateInvite(w.ctx, w.db, sealer, w.org, models.InviteInput{AgentName: "joiner", MaxUses: 1, TTLSeconds: 3600}, models.System)
	if err != nil {
		t.Fatal(err)
	}
	j, err := models.JoinInvite(w.ctx, w.db, inv.Token, models.JoinInput{Title: "Joiner"}, models.System)
	if err != nil {
		t.Fatal(err)
	}
	if j.ClaimSecret == "" || j.Request.Status != models.JoinPending {
		t.Fatalf("join: %+v", j)
	}
	if _, err := models.JoinInvite(w.ctx, w.db, inv.Token, models.JoinInput{}, models.System); stateCode(err) != "invite_spent" {
		t.Fatalf("second join of a one-use invite: %v", err)
	}
	cl, err := models.ClaimJoinRequest(w.ctx, w.db, j.Request.ID, j.ClaimSecret, models.System)
	if err != nil || !cl.Pending {
		t.Fatalf("claim while pending: %+v %v", cl, err)
	}
	for _, bad := range []struct {
		id     uuid.UUID
		secret string
	}{{j.Request.ID, j.ClaimSecret + "x"}, {uuid.New(), j.ClaimSecret}} {
		if _, err := models.ClaimJoinRequest(w.ctx, w.db, bad.id, bad.secret, models.System); stateCode(err) != "invalid_claim_secret" {
			t.Fatalf("bad claim: %v", err)
		}
	}
	ap, err := models.ApproveJoinRequest(w.ctx, w.db, w.org, j.Request.ID, models.System)
	if err != nil || ap.Agent.Status != models.StatusApproved || ap.Agent.ID != "joiner" {
		t.Fatalf("approve: %+v %v", ap, err)
	}
	if _, err := models.ApproveJoinRequest(w.ctx, w.db, w.org, j.Request.ID, models.System); stateCode(err) != "join_request_decided" {
		t.Fatalf("second decision: %v", err)
	}
	cl, err = models.ClaimJoinRequest(w.ctx, w.db, j.Request.ID, j.ClaimSecret, models.System)
	if err != nil || cl.Pending || !strings.HasPrefix(cl.RawKey, models.APIKeyPrefix) || cl.Key.AgentID == nil || *cl.Key.AgentID != "joiner" {
		t.Fatalf("claim after approval: %+v %v", cl, err)
	}
	if _, err := models.ClaimJoinRequest(w.ctx, w.db, j.Request.ID, j.ClaimSecret, models.System); stateCode(err) != "already_claimed" {
		t.Fatalf("second claim: %v", err)
	}
	if n := countRows(t, w.db, "api_keys", "agent_id = 'joiner'"); n != 1 {
		t.Fatalf("%d keys", n)
	}

	// Rejected: the claim is refused for good.
	inv2, err := models.CreateInvite(w.ctx, w.db, sealer, w.org, models.InviteInput{AgentName: "refused", MaxUses: 1, TTLSeconds: 3600}, models.System)
	if err != nil {
		t.Fatal(err)
	}
	j2, err := models.JoinInvite(w.ctx, w.db, inv2.Token, models.JoinInput{}, models.System)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := models.RejectJoinRequest(w.ctx, w.db, w.org, j2.Request.ID, false, models.System); err != nil {
		t.Fatal(err)
	}
	if _, err := models.ClaimJoinRequest(w.ctx, w.db, j2.Request.ID, j2.ClaimSecret, models.System); stateCode(err) != "join_request_rejected" {
		t.Fatalf("claim of a rejected request: %v", err)
	}
}
