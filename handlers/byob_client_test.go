package handlers

import (
	"errors"
	"net/http"
	"testing"

	"github.com/agentroster/agentroster/cmd/byob/client"
	"github.com/agentroster/agentroster/models"
)

// TestRuntimeClient uses the runtime client package against the real server:
// every call decodes the documented answer, and errors arrive as APIError
// with the server's code.
func TestRuntimeClient(t *testing.T) {
	e := newEnv(t)
	key, raw := e.teamKey(e.org.ID)
	ctx := t.Context()
	c := client.New(e.srv.URL, raw)
	tel := client.CollectTelemetry(t.TempDir())

	ag, err := c.Register(ctx, key.TeamID.String(), client.RegisterInput{ID: "go-1", Title: "Go client", LLMVersion: "claude-opus-4-7", Telemetry: tel})
	if err != nil || ag.ID != "go-1" || ag.Status != client.StatusPending || ag.CreatedAt.IsZero() || ag.OSName == nil {
		t.Fatalf("register: %+v %v", ag, err)
	}
	_, err = c.Register(ctx, key.TeamID.String(), client.RegisterInput{ID: "go-1"})
	if !client.IsCode(err, "agent_exists") || client.StatusOf(err) != http.StatusConflict {
		t.Fatalf("duplicate register: %v", err)
	}
	st, err := c.Status(ctx, "go-1")
	if err != nil || st.Status != client.StatusPending || st.IsOnline {
		t.Fatalf("status: %+v %v", st, err)
	}
	if _, err := c.Online(ctx, "go-1"); !client.IsCode(err, "agent_not_approved") {
		t.Fatalf("online while pending: %v", err)
	}

	e.call(http.MethodPatch, "/api/v1/agents/go-1/approve", e.token(e.sa.Email), map[string]any{}).want(http.StatusOK)
	on, err := c.Online(ctx, "go-1")
	if err != nil || !on.IsOnline || on.LastSeenAt == nil {
		t.Fatalf("online: %+v %v", on, err)
	}
	p, err := c.Permissions(ctx, "go-1")
	if err != nil || len(p.CanRead) == 0 || len(p.ColumnAccess) == 0 {
		t.Fatalf("permissions: %+v %v", p, err)
	}
	orgs, err := c.Orgs(ctx)
	if err != nil || len(orgs) != 1 || orgs[0].ID != e.org.ID.String() {
		t.Fatalf("orgs: %+v %v", orgs, err)
	}
	off, err := c.Offline(ctx, "go-1")
	if err != nil || off.IsOnline {
		t.Fatalf("offline: %+v %v", off, err)
	}

	if _, err := models.TransitionAgent(ctx, e.db, e.org.ID, "go-1", "stop", e.actor); err != nil {
		t.Fatal(err)
	}
	var ae *client.APIError
	if _, err := c.Online(ctx, "go-1"); !errors.As(err, &ae) || ae.Code != "agent_stopped" || ae.Status != http.StatusForbidden || ae.Details["status"] != "stopped" {
		t.Fatalf("online while stopped: %#v", err)
	}
	if client.Transient(err) {
		t.Fatal("agent_stopped counted as transient")
	}

	bad := client.New(e.srv.URL, "ag_ak_"+"0123456789abcdefghijklmnopqrstuvwxyzABCDEF")
	if _, err := bad.Status(ctx, "go-1"); client.StatusOf(err) != http.StatusUnauthorized || !client.IsCode(err, "invalid_credential") {
		t.Fatalf("unknown key: %v", err)
	}
}

// TestRuntimeClientJoin uses the client's invite calls against the real
// invite routes: show, join (replayed with the same Idempotency-Key),
// claim while pending, after approval exactly once, then already_claimed.
func TestRuntimeClientJoin(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	tok := e.token(e.sa.Email)
	_, link := e.newInvite(tok, "joined-go")
	base, token, err := client.ParseInviteURL(link)
	if err != nil || base != e.srv.URL {
		t.Fatalf("invite link %q: %q %v", link, base, err)
	}
	c := client.New(base, "")
	inv, err := c.Invite(ctx, token)
	if err != nil || inv.AgentName != "joined-go" || inv.UsesLeft != 1 || inv.ExpiresAt.IsZero() {
		t.Fatalf("invite: %+v %v", inv, err)
	}
	in := client.JoinInput{AdapterType: "http", Title: "Joined from Go", Telemetry: client.CollectTelemetry(t.TempDir())}
	jr, err := c.Join(ctx, token, in, "idem-1")
	if err != nil || jr.Status != "PENDING" || jr.ClaimSecret == "" || jr.JoinRequestID == "" {
		t.Fatalf("join: %+v %v", jr, err)
	}
	again, err := c.Join(ctx, token, in, "idem-1")
	if err != nil || again.JoinRequestID != jr.JoinRequestID {
		t.Fatalf("replayed join: %+v %v", again, err)
	}
	if _, err := c.Claim(ctx, jr.JoinRequestID, jr.ClaimSecret); !errors.Is(err, client.ErrPending) {
		t.Fatalf("claim while pending: %v", err)
	}
	e.call(http.MethodPost, "/api/v1/internal/join-requests/"+jr.JoinRequestID+"/approve", tok, map[string]any{}).want(http.StatusOK)
	cl, err := c.Claim(ctx, jr.JoinRequestID, jr.ClaimSecret)
	if err != nil || cl.AgentID != "joined-go" || cl.OrgID != e.org.ID.String() {
		t.Fatalf("claim: %+v %v", cl, err)
	}
	if _, err := c.Claim(ctx, jr.JoinRequestID, jr.ClaimSecret); !client.IsCode(err, "already_claimed") {
		t.Fatalf("second claim: %v", err)
	}
	st, err := client.New(base, cl.APIKey).Status(ctx, cl.AgentID)
	if err != nil || st.Status != client.StatusApproved {
		t.Fatalf("status with the claimed key: %+v %v", st, err)
	}
	if _, err := c.Invite(ctx, token); client.StatusOf(err) != http.StatusGone {
		t.Fatalf("spent invite: %v", err)
	}
}
