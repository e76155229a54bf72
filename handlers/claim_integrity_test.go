package handlers

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/agentroster/agentroster/models"
)

const testClientSecret = "client-secret-0123456789abcdefghijklmnop"

// TestJoinReplayShowsNoSecret: a replay with the README's Idempotency-Key and
// another body names the request but never its claim secret, is audited, and
// is refused once the invite is revoked or expired. The attacker who replays
// cannot claim; the runtime that joined still can.
func TestJoinReplayShowsNoSecret(t *testing.T) {
	e := newEnv(t)
	e.relaxInviteLimits()
	tok := e.token("root@example.com")
	inv := e.invite(tok, map[string]any{"agentName": "replayed", "maxUses": 1})
	var first, replay joinAnswerOut
	e.joinInvite(inv.Token, map[string]any{"title": "Real runtime"}, "Idempotency-Key", "boot-1").want(http.StatusCreated).decode(&first)
	if first.ClaimSecret == nil || !strings.HasPrefix(*first.ClaimSecret, models.ClaimSecretPrefix) || first.ClientSecret {
		t.Fatalf("join answer %+v", first)
	}
	// The invite is spent by this very request; the replay still answers it.
	r := e.joinInvite(inv.Token, map[string]any{"title": "Attacker", "adapterType": "mcp"}, "Idempotency-Key", "boot-1").want(http.StatusCreated)
	r.decode(&replay)
	if r.Header.Get("Idempotent-Replayed") != "true" || replay.JoinRequestID != first.JoinRequestID || replay.Status != "PENDING" {
		t.Fatalf("replay %+v", replay)
	}
	if replay.ClaimSecret != nil || strings.Contains(string(r.Body), "claimSecret") || strings.Contains(string(r.Body), *first.ClaimSecret) {
		t.Fatalf("the replay shows a claim secret: %s", r.Body)
	}
	if n := e.count("audit_events", "action = 'join_request.replayed' AND target_id = ?", first.JoinRequestID); n != 1 {
		t.Fatalf("%d replay audit events, want 1", n)
	}
	if n := e.count("join_requests", "id = ? AND title = 'Real runtime' AND adapter_type = 'http'", first.JoinRequestID); n != 1 {
		t.Fatal("the replay changed the request")
	}
	// After approval the replay still gives no secret, only the state.
	e.call(http.MethodPost, "/api/v1/internal/join-requests/"+first.JoinRequestID+"/approve", tok, struct{}{}).want(http.StatusOK)
	e.joinInvite(inv.Token, map[string]any{}, "Idempotency-Key", "boot-1").want(http.StatusCreated).decode(&replay)
	if replay.Status != "APPROVED" || replay.ClaimSecret != nil {
		t.Fatalf("replay after approval %+v", replay)
	}

	// Revoked: the replay is refused with the invite's code.
	e.call(http.MethodDelete, "/api/v1/internal/invites/"+inv.ID, tok, nil).want(http.StatusOK)
	e.joinInvite(inv.Token, map[string]any{}, "Idempotency-Key", "boot-1").wantError(http.StatusGone, "invite_revoked")
	// The real runtime claims with the secret it was shown once.
	e.claim(first.JoinRequestID, *first.ClaimSecret).want(http.StatusOK)

	// Expired: refused too.
	inv2 := e.invite(tok, map[string]any{"agentName": "replayed-late", "maxUses": 2})
	e.joinInvite(inv2.Token, map[string]any{}, "Idempotency-Key", "boot-1").want(http.StatusCreated)
	if _, err := e.db.NewRaw("UPDATE invites SET expires_at = now() - interval '1 second' WHERE id = ?", inv2.ID).Exec(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.joinInvite(inv2.Token, map[string]any{}, "Idempotency-Key", "boot-1").wantError(http.StatusGone, "invite_expired")
	checkInvariants(t, e.db)
}

// TestJoinClientSecret: a runtime's own secret is the only one that claims,
// is never echoed, and a replay must repeat it.
func TestJoinClientSecret(t *testing.T) {
	e := newEnv(t)
	e.relaxInviteLimits()
	tok := e.token("root@example.com")
	inv := e.invite(tok, map[string]any{"agentName": "own-secret", "maxUses": 1})
	e.joinInvite(inv.Token, map[string]any{"clientSecret": "too-short"}).wantError(http.StatusBadRequest, "invalid_input")
	e.joinInvite(inv.Token, map[string]any{"clientSecret": strings.Repeat("x", 31) + " "}).wantError(http.StatusBadRequest, "invalid_input")
	if n := e.count("invites", "id = ? AND uses = 0", inv.ID); n != 1 {
		t.Fatal("a refused join used the invite")
	}
	var j, replay joinAnswerOut
	r := e.joinInvite(inv.Token, map[string]any{"clientSecret": testClientSecret}, "Idempotency-Key", "boot-1").want(http.StatusCreated)
	r.decode(&j)
	if j.ClaimSecret != nil || !j.ClientSecret || strings.Contains(string(r.Body), testClientSecret) {
		t.Fatalf("join answer with a clientSecret: %s", r.Body)
	}
	// Same key, same secret: the request's id and state.
	e.joinInvite(inv.Token, map[string]any{"clientSecret": testClientSecret}, "Idempotency-Key", "boot-1").want(http.StatusCreated).decode(&replay)
	if replay.JoinRequestID != j.JoinRequestID || replay.ClaimSecret != nil {
		t.Fatalf("replay %+v", replay)
	}
	// Same key, another secret or none: refused.
	e.joinInvite(inv.Token, map[string]any{"clientSecret": testClientSecret + "x"}, "Idempotency-Key", "boot-1").wantError(http.StatusConflict, "idempotency_key_reused")
	e.joinInvite(inv.Token, map[string]any{}, "Idempotency-Key", "boot-1").wantError(http.StatusConflict, "idempotency_key_reused")

	e.claim(j.JoinRequestID, testClientSecret).want(http.StatusAccepted)
	e.claim(j.JoinRequestID, testClientSecret+"x").wantError(http.StatusUnauthorized, "invalid_claim_secret")
	e.call(http.MethodPost, "/api/v1/internal/join-requests/"+j.JoinRequestID+"/approve", tok, struct{}{}).want(http.StatusOK)
	var cl claimOut
	e.claim(j.JoinRequestID, testClientSecret).want(http.StatusOK).decode(&cl)
	if cl.AgentID != "own-secret" {
		t.Fatalf("claim %+v", cl)
	}
	// Neither secret is in the table.
	var dump string
	if err := e.db.NewRaw("SELECT string_agg(j::text, ',') FROM join_requests AS j").Scan(t.Context(), &dump); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(dump, testClientSecret) {
		t.Fatal("the clientSecret is stored in plaintext")
	}
}

// TestClaimOfDeletedAgent: approve, do not claim, delete the agent, register
// a new agent of the same name: the old secret yields nothing, for good.
func TestClaimOfDeletedAgent(t *testing.T) {
	e := newEnv(t)
	e.relaxInviteLimits()
	tok := e.token("root@example.com")
	_, j := e.joinNew(tok, "phoenix")
	e.call(http.MethodPost, "/api/v1/internal/join-requests/"+j.JoinRequestID+"/approve", tok, struct{}{}).want(http.StatusOK)
	e.call(http.MethodDelete, "/api/v1/agents/phoenix", tok, nil).want(http.StatusOK)
	if n := e.count("join_requests", "id = ? AND claim_voided_at IS NOT NULL", j.JoinRequestID); n != 1 {
		t.Fatal("deleting the agent did not void its claim")
	}
	_, key := e.teamKey(e.org.ID)
	team, _ := models.DefaultTeam(t.Context(), e.db, e.org.ID)
	e.call(http.MethodPost, "/api/v1/teams/"+team.ID.String()+"/agents/register", key, map[string]string{"id": "phoenix"}).want(http.StatusOK)
	e.claim(j.JoinRequestID, j.ClaimSecret).wantError(http.StatusGone, "agent_deleted")
	if n := e.count("api_keys", "agent_id = 'phoenix'"); n != 0 {
		t.Fatalf("the new agent got %d keys through the old claim", n)
	}
	// An operator cannot bring it back either.
	e.call(http.MethodPost, "/api/v1/internal/join-requests/"+j.JoinRequestID+"/reissue", tok, struct{}{}).wantError(http.StatusGone, "agent_deleted")
	var listed []struct {
		ID            string
		ClaimVoidedAt *string
	}
	e.call(http.MethodGet, "/api/v1/internal/join-requests?status=approved", tok, nil).want(http.StatusOK).decode(&listed)
	if len(listed) != 1 || listed[0].ClaimVoidedAt == nil {
		t.Fatalf("listed %+v", listed)
	}

	// The binding is to the agent row, not its name: a row of the same name
	// with another identity (as a delete and re-create that bypassed the void
	// would leave) does not claim.
	_, j2 := e.joinNew(tok, "twin")
	e.call(http.MethodPost, "/api/v1/internal/join-requests/"+j2.JoinRequestID+"/approve", tok, struct{}{}).want(http.StatusOK)
	if _, err := e.db.NewRaw("UPDATE agents SET uid = gen_random_uuid() WHERE id = 'twin'").Exec(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.claim(j2.JoinRequestID, j2.ClaimSecret).wantError(http.StatusGone, "agent_deleted")
	if n := e.count("api_keys", "agent_id = 'twin'"); n != 0 {
		t.Fatal("a key went to another agent row of the same name")
	}
}

// TestClaimRacesAgentDelete: claims and deletes of the same agent at once
// never leave a key for an agent row the request was not bound to.
func TestClaimRacesAgentDelete(t *testing.T) {
	e := newEnv(t)
	e.relaxInviteLimits()
	tok := e.token("root@example.com")
	const n = 8
	jrs := make([]joinOut, n)
	for i := range jrs {
		_, jrs[i] = e.joinNew(tok, fmt.Sprintf("race-del-%d", i))
		e.call(http.MethodPost, "/api/v1/internal/join-requests/"+jrs[i].JoinRequestID+"/approve", tok, struct{}{}).want(http.StatusOK)
	}
	var wg sync.WaitGroup
	claims := make([]int, n)
	for i := range jrs {
		wg.Add(2)
		go func() {
			defer wg.Done()
			claims[i] = e.claim(jrs[i].JoinRequestID, jrs[i].ClaimSecret).Status
		}()
		go func() {
			defer wg.Done()
			e.call(http.MethodDelete, fmt.Sprintf("/api/v1/agents/race-del-%d", i), tok, nil)
		}()
	}
	wg.Wait()
	for i, s := range claims {
		if s != http.StatusOK && s != http.StatusGone {
			t.Errorf("claim %d answered %d", i, s)
		}
	}
	if k := e.count("api_keys", "agent_id LIKE 'race-del-%'"); k != 0 {
		t.Fatalf("%d keys of deleted agents", k)
	}
	checkInvariants(t, e.db)
}

// TestRegisterReservedName: a team key cannot take a name an active invite
// reserves or a pending join request waits for; once neither holds it, it can.
func TestRegisterReservedName(t *testing.T) {
	e := newEnv(t)
	e.relaxInviteLimits()
	tok := e.token("root@example.com")
	_, key := e.teamKey(e.org.ID)
	team, _ := models.DefaultTeam(t.Context(), e.db, e.org.ID)
	register := func(id string) *result {
		return e.call(http.MethodPost, "/api/v1/teams/"+team.ID.String()+"/agents/register", key, map[string]string{"id": id})
	}
	inv := e.invite(tok, map[string]any{"agentName": "held"})
	register("held").wantError(http.StatusConflict, "name_reserved_by_invite")
	// Spent by a pending request: still held, and the approval works.
	var j joinOut
	e.joinInvite(inv.Token, map[string]any{}).want(http.StatusCreated).decode(&j)
	register("held").wantError(http.StatusConflict, "name_reserved_by_invite")
	e.call(http.MethodPost, "/api/v1/internal/join-requests/"+j.JoinRequestID+"/approve", tok, struct{}{}).want(http.StatusOK)
	register("held").wantError(http.StatusConflict, "agent_exists")

	// A revoked invite holds nothing; nor does a rejected request.
	inv2 := e.invite(tok, map[string]any{"agentName": "released"})
	e.call(http.MethodDelete, "/api/v1/internal/invites/"+inv2.ID, tok, nil).want(http.StatusOK)
	register("released").want(http.StatusOK)
	inv3, j3 := e.joinNew(tok, "rejected-name")
	_ = inv3
	register("rejected-name").wantError(http.StatusConflict, "name_reserved_by_invite")
	e.call(http.MethodPost, "/api/v1/internal/join-requests/"+j3.JoinRequestID+"/reject", tok, struct{}{}).want(http.StatusOK)
	register("rejected-name").want(http.StatusOK)

	// Creating an invite and registering the same name at once: never both.
	const n = 12
	var wg sync.WaitGroup
	invites, registers := make([]int, n), make([]int, n)
	for i := range n {
		name := fmt.Sprintf("contested-%d", i)
		wg.Add(2)
		go func() {
			defer wg.Done()
			invites[i] = e.call(http.MethodPost, "/api/v1/internal/invites", tok, map[string]any{"agentName": name, "orgId": e.org.ID.String()}).Status
		}()
		go func() { defer wg.Done(); registers[i] = register(name).Status }()
	}
	wg.Wait()
	for i := range n {
		ok := (invites[i] == http.StatusCreated) != (registers[i] == http.StatusOK)
		if !ok || (invites[i] != http.StatusCreated && invites[i] != http.StatusConflict) || (registers[i] != http.StatusOK && registers[i] != http.StatusConflict) {
			t.Errorf("contested-%d: invite %d, register %d; want exactly one to win", i, invites[i], registers[i])
		}
	}
}

// TestReissueClaim: after the 7-day window an approval left the runtime
// without a way to its key; the operator re-issues the claim.
func TestReissueClaim(t *testing.T) {
	e := newEnv(t)
	e.relaxInviteLimits()
	tok := e.token("root@example.com")
	inv := e.invite(tok, map[string]any{"agentName": "late"})
	var j joinAnswerOut
	e.joinInvite(inv.Token, map[string]any{"clientSecret": testClientSecret}).want(http.StatusCreated).decode(&j)
	reissue := func() *result {
		return e.call(http.MethodPost, "/api/v1/internal/join-requests/"+j.JoinRequestID+"/reissue", tok, struct{}{})
	}
	reissue().wantError(http.StatusConflict, "join_request_pending")
	// Approved after the window: the claim has expired.
	if _, err := e.db.NewRaw("UPDATE join_requests SET claim_expires_at = now() - interval '1 minute' WHERE id = ?", j.JoinRequestID).Exec(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.call(http.MethodPost, "/api/v1/internal/join-requests/"+j.JoinRequestID+"/approve", tok, struct{}{}).want(http.StatusOK)
	e.claim(j.JoinRequestID, testClientSecret).wantError(http.StatusUnauthorized, "claim_expired")

	var re joinAnswerOut
	r := reissue().want(http.StatusOK)
	r.decode(&re)
	if re.ClaimSecret == nil || !strings.HasPrefix(*re.ClaimSecret, models.ClaimSecretPrefix) || re.JoinRequestID != j.JoinRequestID || re.ClientSecret {
		t.Fatalf("reissue %s", r.Body)
	}
	if n := e.count("audit_events", "action = 'join_request.claim_reissued' AND target_id = ?", j.JoinRequestID); n != 1 {
		t.Fatalf("%d reissue audit events", n)
	}
	// The clientSecret no longer claims; the new secret does, once.
	e.claim(j.JoinRequestID, testClientSecret).wantError(http.StatusUnauthorized, "invalid_claim_secret")
	// A second re-issue replaces the first.
	var re2 joinAnswerOut
	reissue().want(http.StatusOK).decode(&re2)
	e.claim(j.JoinRequestID, *re.ClaimSecret).wantError(http.StatusUnauthorized, "invalid_claim_secret")
	var cl claimOut
	e.claim(j.JoinRequestID, *re2.ClaimSecret).want(http.StatusOK).decode(&cl)
	e.call(http.MethodGet, "/api/v1/agent/orgs", cl.APIKey, nil).want(http.StatusOK)
	reissue().wantError(http.StatusConflict, "already_claimed")

	// Rejected, unknown, and a viewer.
	_, jr := e.joinNew(tok, "nope")
	e.call(http.MethodPost, "/api/v1/internal/join-requests/"+jr.JoinRequestID+"/reject", tok, struct{}{}).want(http.StatusOK)
	e.call(http.MethodPost, "/api/v1/internal/join-requests/"+jr.JoinRequestID+"/reissue", tok, struct{}{}).wantError(http.StatusConflict, "join_request_rejected")
	e.user("viewer@example.com", "viewer")
	e.call(http.MethodPost, "/api/v1/internal/join-requests/"+j.JoinRequestID+"/reissue", e.token("viewer@example.com"), struct{}{}).want(http.StatusForbidden)
	checkInvariants(t, e.db)
}

// TestReissueClaimHTML: the Re-issue button on the join requests screen shows
// the new secret once, outside the table; a plain post shows it on the page.
func TestReissueClaimHTML(t *testing.T) {
	e := newEnv(t)
	e.relaxInviteLimits()
	tok := e.token("root@example.com")
	_, j := e.joinNew(tok, "handover")
	c := e.signIn("root@example.com")
	_, page := e.get(c, "/agents/join-requests?status=approved")
	if parseHTML(t, page).has(`[data-testid="jr-reissue"]`) {
		t.Fatal("a Re-issue button before approval")
	}
	e.call(http.MethodPost, "/api/v1/internal/join-requests/"+j.JoinRequestID+"/approve", tok, struct{}{}).want(http.StatusOK)
	_, page = e.get(c, "/agents/join-requests?status=approved")
	if doc := parseHTML(t, page); doc.attr(`[data-testid="jr-reissue"]`, "hx-post") != "/agents/join-requests/"+j.JoinRequestID+"/reissue" || !doc.has(`#claim-reveal`) {
		t.Fatal("no Re-issue button on an approved, unclaimed request")
	}
	secretRE := regexp.MustCompile(`id="reissued-secret" readonly value="([^"]+)"`)
	status, hdr, body := e.post(c, "/agents/join-requests/"+j.JoinRequestID+"/reissue", url.Values{}, "HX-Request", "true")
	if status != http.StatusOK || !strings.Contains(hdr.Get("HX-Trigger"), "showToast") {
		t.Fatalf("htmx reissue: %d %v", status, hdr)
	}
	htmxSecret := match(t, secretRE, body)
	status, _, body = e.post(c, "/agents/join-requests/"+j.JoinRequestID+"/reissue", url.Values{})
	if status != http.StatusOK {
		t.Fatalf("plain reissue: %d", status)
	}
	plainSecret := match(t, secretRE, body)
	if plainSecret == htmxSecret || !parseHTML(t, body).has(`[data-testid="join-requests-table"]`) {
		t.Fatal("the plain post did not show a new secret on the list")
	}
	e.claim(j.JoinRequestID, htmxSecret).wantError(http.StatusUnauthorized, "invalid_claim_secret")
	e.claim(j.JoinRequestID, plainSecret).want(http.StatusOK)
	// Claimed: no button, and the page never shows a secret again.
	_, page = e.get(c, "/agents/join-requests?status=approved")
	if parseHTML(t, page).has(`[data-testid="jr-reissue"]`) || strings.Contains(page, plainSecret) {
		t.Fatal("the claimed request still offers a re-issue or shows its secret")
	}
	// A refused re-issue over htmx: an error toast, nothing swapped.
	status, hdr, _ = e.post(c, "/agents/join-requests/"+j.JoinRequestID+"/reissue", url.Values{}, "HX-Request", "true")
	if status != http.StatusNoContent || !strings.Contains(hdr.Get("HX-Trigger"), "error") {
		t.Fatalf("refused htmx reissue: %d %v", status, hdr)
	}
}
