package handlers

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/agentroster/agentroster/models"
)

// parallel runs f n times at once and returns the statuses.
func parallel(n int, f func(i int) int) []int {
	statuses := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			statuses[i] = f(i)
		}()
	}
	close(start)
	wg.Wait()
	return statuses
}

func tally(statuses []int) map[int]int {
	m := map[int]int{}
	for _, s := range statuses {
		m[s]++
	}
	return m
}

func TestInviteFlowJSON(t *testing.T) {
	e := newEnv(t)
	tok := e.token("root@example.com")
	inv := e.invite(tok, map[string]any{"agentName": "claude-1", "adapterType": "mcp", "maxUses": 1, "ttlSeconds": 3600})
	if len(inv.Token) != 32 || !models.IsBase62(inv.Token, 32) || inv.URL != e.srv.URL+"/invite/"+inv.Token {
		t.Fatalf("token %q url %q", inv.Token, inv.URL)
	}
	if inv.State != "Active" || inv.Uses != 0 || inv.MaxUses != 1 || inv.AdapterType != "mcp" {
		t.Fatalf("invite %+v", inv)
	}

	info := e.call(http.MethodGet, "/api/v1/invites/"+inv.Token, "", nil).want(http.StatusOK).json()
	if info["agentName"] != "claude-1" || info["orgTitle"] != e.org.Title || info["teamName"] != "default" || info["usesLeft"] != float64(1) {
		t.Fatalf("invite info %v", info)
	}
	isRFC3339UTCSeconds(t, info["expiresAt"].(string))

	var j joinOut
	e.joinInvite(inv.Token, map[string]any{"adapterType": "mcp", "title": "Claude (build)", "machineName": "build-7", "ramBytes": 17179869184},
		"User-Agent", "runtime/1.0").want(http.StatusCreated).decode(&j)
	if j.Status != "PENDING" || !strings.HasPrefix(j.ClaimSecret, models.ClaimSecretPrefix) || j.ClaimURL != e.srv.URL+"/api/v1/join-requests/"+j.JoinRequestID+"/claim" {
		t.Fatalf("join %+v", j)
	}
	// The invite is spent now.
	e.call(http.MethodGet, "/api/v1/invites/"+inv.Token, "", nil).wantError(http.StatusGone, "invite_spent")

	// Pending: 202, no key yet.
	e.claim(j.JoinRequestID, j.ClaimSecret).want(http.StatusAccepted)

	// The operator sees the request with its context.
	list := e.call(http.MethodGet, "/api/v1/internal/join-requests?status=pending", tok, nil).want(http.StatusOK)
	var jrs []map[string]any
	list.decode(&jrs)
	if len(jrs) != 1 || jrs[0]["userAgent"] != "runtime/1.0" || jrs[0]["sourceIp"] != "127.0.0.1" || jrs[0]["machineName"] != "build-7" {
		t.Fatalf("join requests %v", jrs)
	}
	if bytes.Contains(list.Body, []byte(j.ClaimSecret)) || bytes.Contains(list.Body, []byte("claimSecret")) {
		t.Fatal("listing shows the claim secret")
	}

	ap := e.call(http.MethodPost, "/api/v1/internal/join-requests/"+j.JoinRequestID+"/approve?orgId="+e.org.ID.String(), tok, struct{}{}).want(http.StatusOK).json()
	agent := ap["agent"].(map[string]any)
	if ap["status"] != "APPROVED" || agent["id"] != "claude-1" || agent["status"] != "approved" || agent["title"] != "Claude (build)" ||
		agent["agentPickupEnabled"] != true || agent["joinedVia"] != "invite" || agent["adapterType"] != "mcp" {
		t.Fatalf("approve %v", ap)
	}

	var cl claimOut
	e.claim(j.JoinRequestID, j.ClaimSecret).want(http.StatusOK).decode(&cl)
	if !models.ValidAPIKeyFormat(cl.APIKey) || cl.AgentID != "claude-1" || cl.OrgID != e.org.ID.String() || cl.TeamID != inv.TeamID {
		t.Fatalf("claim %+v", cl)
	}
	e.claim(j.JoinRequestID, j.ClaimSecret).wantError(http.StatusConflict, "already_claimed")

	orgs := e.call(http.MethodGet, "/api/v1/agent/orgs", cl.APIKey, nil).want(http.StatusOK)
	if !bytes.Contains(orgs.Body, []byte(e.org.ID.String())) {
		t.Fatalf("agent orgs %s", orgs.Body)
	}
	e.call(http.MethodGet, "/api/v1/agents/claude-1/status", cl.APIKey, nil).want(http.StatusOK)
	// The key is bound to its agent.
	e.agentIn(e.org.ID, "other", models.StatusApproved)
	e.call(http.MethodGet, "/api/v1/agents/other/status", cl.APIKey, nil).wantError(http.StatusForbidden, "key_bound_to_other_agent")

	for _, action := range []string{"invite.created", "invite.used", "join_request.created", "join_request.approved", "agent.created", "api_key.claimed"} {
		if n := e.count("audit_events", "org_id = ? AND action = ?", e.org.ID, action); n != 1 {
			t.Errorf("audit %s: %d events, want 1", action, n)
		}
	}
}

func TestInviteRejectKeepsUse(t *testing.T) {
	e := newEnv(t)
	tok := e.token("root@example.com")
	inv := e.invite(tok, map[string]any{"agentName": "worker", "maxUses": 2})
	var j joinOut
	e.joinInvite(inv.Token, map[string]any{}).want(http.StatusCreated).decode(&j)
	r := e.call(http.MethodPost, "/api/v1/internal/join-requests/"+j.JoinRequestID+"/reject", tok, struct{}{}).want(http.StatusOK).json()
	if r["status"] != "REJECTED" {
		t.Fatalf("reject %v", r)
	}
	e.claim(j.JoinRequestID, j.ClaimSecret).wantError(http.StatusForbidden, "join_request_rejected")
	e.call(http.MethodPost, "/api/v1/internal/join-requests/"+j.JoinRequestID+"/approve", tok, struct{}{}).wantError(http.StatusConflict, "join_request_decided")
	if n := e.count("invites", "id = ? AND uses = 1", inv.ID); n != 1 {
		t.Fatal("rejecting gave the use back")
	}
	if e.dbAgent(e.org.ID, "worker") != nil {
		t.Fatal("rejection created an agent")
	}
	// Reject and revoke: the invite stops working.
	var j2 joinOut
	e.joinInvite(inv.Token, map[string]any{}).want(http.StatusCreated).decode(&j2)
	e.call(http.MethodPost, "/api/v1/internal/join-requests/"+j2.JoinRequestID+"/reject", tok, map[string]any{"revokeInvite": true}).want(http.StatusOK)
	e.call(http.MethodGet, "/api/v1/invites/"+inv.Token, "", nil).wantError(http.StatusGone, "invite_revoked")
}

func TestInviteIdempotentJoin(t *testing.T) {
	e := newEnv(t)
	e.relaxInviteLimits()
	tok := e.token("root@example.com")
	inv := e.invite(tok, map[string]any{"agentName": "idem", "maxUses": 3})
	var first, again joinOut
	e.joinInvite(inv.Token, map[string]any{}, "Idempotency-Key", "boot-1").want(http.StatusCreated).decode(&first)
	r := e.joinInvite(inv.Token, map[string]any{}, "Idempotency-Key", "boot-1").want(http.StatusCreated)
	r.decode(&again)
	// The replay names the same request but never shows its secret again.
	if first.ClaimSecret == "" || again.ClaimSecret != "" || r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay %+v, first %+v", again, first)
	}
	again.ClaimSecret = first.ClaimSecret
	if again != first {
		t.Fatalf("replay %+v, first %+v", again, first)
	}
	// Concurrent retries with one key: still one request and one use.
	statuses := parallel(10, func(int) int {
		return e.joinInvite(inv.Token, map[string]any{}, "Idempotency-Key", "boot-2").Status
	})
	if c := tally(statuses); c[http.StatusCreated] != 10 {
		t.Fatalf("statuses %v", c)
	}
	if n := e.count("join_requests", "invite_id = ?", inv.ID); n != 2 {
		t.Fatalf("%d join requests, want 2", n)
	}
	if n := e.count("invites", "id = ? AND uses = 2", inv.ID); n != 1 {
		t.Fatal("replays used the invite")
	}
}

func TestInviteConcurrentJoins(t *testing.T) {
	for _, tc := range []struct{ maxUses, want int }{{1, 1}, {3, 3}} {
		t.Run(fmt.Sprintf("max-uses-%d", tc.maxUses), func(t *testing.T) {
			e := newEnv(t)
			e.relaxInviteLimits()
			tok := e.token("root@example.com")
			inv := e.invite(tok, map[string]any{"agentName": "race", "maxUses": tc.maxUses})
			statuses := parallel(50, func(int) int {
				return e.joinInvite(inv.Token, map[string]any{"adapterType": "http"}).Status
			})
			c := tally(statuses)
			if c[http.StatusCreated] != tc.want || c[http.StatusGone] != 50-tc.want {
				t.Fatalf("statuses %v", c)
			}
			if n := e.count("join_requests", "invite_id = ?", inv.ID); n != tc.want {
				t.Fatalf("%d join requests, want %d", n, tc.want)
			}
			if n := e.count("invites", "id = ? AND uses = ?", inv.ID, tc.want); n != 1 {
				t.Fatalf("uses is not %d", tc.want)
			}
		})
	}
}

func TestInviteConcurrentDecisions(t *testing.T) {
	e := newEnv(t)
	tok := e.token("root@example.com")
	_, j := e.joinNew(tok, "decided")
	statuses := parallel(20, func(i int) int {
		action := "approve"
		if i%2 == 1 {
			action = "reject"
		}
		return e.call(http.MethodPost, "/api/v1/internal/join-requests/"+j.JoinRequestID+"/"+action, tok, struct{}{}).Status
	})
	c := tally(statuses)
	if c[http.StatusOK] != 1 || c[http.StatusConflict] != 19 {
		t.Fatalf("statuses %v", c)
	}
	approved := e.count("join_requests", "id = ? AND status = 'APPROVED'", j.JoinRequestID) == 1
	agents := e.count("agents", "org_id = ? AND id = 'decided'", e.org.ID)
	if (approved && agents != 1) || (!approved && agents != 0) {
		t.Fatalf("approved %v, %d agent rows", approved, agents)
	}
	if n := e.count("audit_events", "action IN ('join_request.approved', 'join_request.rejected')"); n != 1 {
		t.Fatalf("%d decision events", n)
	}
}

func TestInviteConcurrentClaims(t *testing.T) {
	e := newEnv(t)
	e.relaxInviteLimits()
	tok := e.token("root@example.com")
	_, j := e.joinNew(tok, "claimer")
	e.call(http.MethodPost, "/api/v1/internal/join-requests/"+j.JoinRequestID+"/approve", tok, struct{}{}).want(http.StatusOK)
	keys := make([]string, 20)
	statuses := parallel(20, func(i int) int {
		r := e.claim(j.JoinRequestID, j.ClaimSecret)
		if r.Status == http.StatusOK {
			var cl claimOut
			r.decode(&cl)
			keys[i] = cl.APIKey
		}
		return r.Status
	})
	c := tally(statuses)
	if c[http.StatusOK] != 1 || c[http.StatusConflict] != 19 {
		t.Fatalf("statuses %v", c)
	}
	if n := e.count("api_keys", "join_request_id = ?", j.JoinRequestID); n != 1 {
		t.Fatalf("%d keys issued", n)
	}
	var key string
	for _, k := range keys {
		key += k
	}
	e.call(http.MethodGet, "/api/v1/agent/orgs", key, nil).want(http.StatusOK)
}

func TestInviteReregistration(t *testing.T) {
	e := newEnv(t)
	tok := e.token("root@example.com")
	inv := e.invite(tok, map[string]any{"agentName": "multi", "maxUses": 2})
	flow := func() string {
		var j joinOut
		e.joinInvite(inv.Token, map[string]any{"title": "Multi"}).want(http.StatusCreated).decode(&j)
		e.call(http.MethodPost, "/api/v1/internal/join-requests/"+j.JoinRequestID+"/approve", tok, struct{}{}).want(http.StatusOK)
		var cl claimOut
		e.claim(j.JoinRequestID, j.ClaimSecret).want(http.StatusOK).decode(&cl)
		return cl.APIKey
	}
	first := flow()
	e.call(http.MethodGet, "/api/v1/agent/orgs", first, nil).want(http.StatusOK)
	second := flow()
	if n := e.count("agents", "org_id = ? AND id = 'multi'", e.org.ID); n != 1 {
		t.Fatalf("%d agents", n)
	}
	e.call(http.MethodGet, "/api/v1/agent/orgs", first, nil).wantError(http.StatusUnauthorized, "invalid_credential")
	e.call(http.MethodGet, "/api/v1/agent/orgs", second, nil).want(http.StatusOK)

	// An agent of that name made another way is not taken over. A team key
	// can no longer register a name a pending request waits for, so the agent
	// is written directly, as one made before that rule was.
	inv2 := e.invite(tok, map[string]any{"agentName": "squatted"})
	var j joinOut
	e.joinInvite(inv2.Token, map[string]any{}).want(http.StatusCreated).decode(&j)
	team, _ := models.DefaultTeam(t.Context(), e.db, e.org.ID)
	_, key := e.teamKey(e.org.ID)
	e.call(http.MethodPost, "/api/v1/teams/"+team.ID.String()+"/agents/register", key, map[string]string{"id": "squatted"}).
		wantError(http.StatusConflict, "name_reserved_by_invite")
	if _, err := e.db.NewInsert().Model(&models.Agent{OrgID: e.org.ID, ID: "squatted", TeamID: team.ID, Status: models.StatusPending, AdapterType: "http", JoinedVia: "register"}).Exec(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.call(http.MethodPost, "/api/v1/internal/join-requests/"+j.JoinRequestID+"/approve", tok, struct{}{}).wantError(http.StatusConflict, "name_taken")
	if n := e.count("join_requests", "id = ? AND status = 'PENDING'", j.JoinRequestID); n != 1 {
		t.Fatal("refused approval changed the request")
	}
}

// TestInviteDumpHoldsNoSecrets dumps the invites, join requests and API keys
// tables as text and looks for every plaintext token, secret and key.
func TestInviteDumpHoldsNoSecrets(t *testing.T) {
	e := newEnv(t)
	tok := e.token("root@example.com")
	var secrets []string
	for i := range 3 {
		inv := e.invite(tok, map[string]any{"agentName": fmt.Sprintf("dump-%d", i)})
		var j joinOut
		e.joinInvite(inv.Token, map[string]any{}, "Idempotency-Key", "k").want(http.StatusCreated).decode(&j)
		e.call(http.MethodPost, "/api/v1/internal/join-requests/"+j.JoinRequestID+"/approve", tok, struct{}{}).want(http.StatusOK)
		var cl claimOut
		e.claim(j.JoinRequestID, j.ClaimSecret).want(http.StatusOK).decode(&cl)
		secrets = append(secrets, inv.Token, j.ClaimSecret, cl.APIKey, strings.TrimPrefix(j.ClaimSecret, models.ClaimSecretPrefix), strings.TrimPrefix(cl.APIKey, models.APIKeyPrefix))
	}
	var dump strings.Builder
	for _, table := range []string{"invites", "join_requests", "api_keys", "audit_events"} {
		var rows []string
		// Each row as text, bytea columns as hex and as escaped text.
		err := e.db.NewRaw("SELECT t::text FROM "+table+" t").Scan(t.Context(), &rows)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			dump.WriteString(r + "\n")
		}
		var raw [][]byte
		if err := e.db.NewRaw("SELECT convert_to(t::text, 'UTF8') FROM "+table+" t").Scan(t.Context(), &raw); err != nil {
			t.Fatal(err)
		}
		for _, r := range raw {
			dump.Write(r)
		}
	}
	text := dump.String()
	if len(text) < 1000 {
		t.Fatalf("dump too small: %d bytes", len(text))
	}
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Fatalf("the dump contains the plaintext %q", s)
		}
	}
}

// rows counts what a refused request must not have written.
func (e *env) rows() [4]int {
	return [4]int{e.count("invites", "true"), e.count("join_requests", "true"), e.count("api_keys", "true"), e.count("audit_events", "true")}
}

func TestInviteBadInput(t *testing.T) {
	e := newEnv(t)
	e.relaxInviteLimits()
	tok := e.token("root@example.com")
	e.agentIn(e.org.ID, "existing", models.StatusApproved)
	e.invite(tok, map[string]any{"agentName": "reserved"})
	spent := e.invite(tok, map[string]any{"agentName": "spent"})
	var spentJoin joinOut
	e.joinInvite(spent.Token, map[string]any{}).want(http.StatusCreated).decode(&spentJoin)
	expired := e.invite(tok, map[string]any{"agentName": "expired"})
	if _, err := e.db.NewUpdate().Table("invites").Set("expires_at = now() - interval '1 second'").Where("id = ?", expired.ID).Exec(t.Context()); err != nil {
		t.Fatal(err)
	}
	revoked := e.invite(tok, map[string]any{"agentName": "revoked"})
	e.call(http.MethodDelete, "/api/v1/internal/invites/"+revoked.ID, tok, nil).want(http.StatusOK)
	active := e.invite(tok, map[string]any{"agentName": "active", "maxUses": 5})
	var pending joinOut
	e.joinInvite(active.Token, map[string]any{}).want(http.StatusCreated).decode(&pending)
	oldClaim := e.invite(tok, map[string]any{"agentName": "old-claim"})
	var old joinOut
	e.joinInvite(oldClaim.Token, map[string]any{}).want(http.StatusCreated).decode(&old)
	if _, err := e.db.NewUpdate().Table("join_requests").Set("claim_expires_at = now() - interval '1 second'").Where("id = ?", old.JoinRequestID).Exec(t.Context()); err != nil {
		t.Fatal(err)
	}

	create := func(body map[string]any) func() *result {
		return func() *result { return e.call(http.MethodPost, "/api/v1/internal/invites", tok, body) }
	}
	join := func(token string, body any) func() *result {
		return func() *result { return e.joinInvite(token, body) }
	}
	claim := func(id string, body any) func() *result {
		return func() *result { return e.call(http.MethodPost, "/api/v1/join-requests/"+id+"/claim", "", body) }
	}
	long := strings.Repeat("a", 64)
	cases := []struct {
		name   string
		do     func() *result
		status int
		code   string
		field  string
	}{
		{"ttl too short", create(map[string]any{"agentName": "a1", "ttlSeconds": 299}), 400, "invalid_input", "ttlSeconds"},
		{"ttl too long", create(map[string]any{"agentName": "a1", "ttlSeconds": 604801}), 400, "invalid_input", "ttlSeconds"},
		{"ttl huge", create(map[string]any{"agentName": "a1", "ttlSeconds": int64(1) << 62}), 400, "invalid_input", "ttlSeconds"},
		{"max uses 0", create(map[string]any{"agentName": "a1", "maxUses": 0}), 400, "invalid_input", "maxUses"},
		{"max uses 101", create(map[string]any{"agentName": "a1", "maxUses": 101}), 400, "invalid_input", "maxUses"},
		{"max uses not a number", create(map[string]any{"agentName": "a1", "maxUses": "one"}), 400, "invalid_input", "maxUses"},
		{"unknown adapter", create(map[string]any{"agentName": "a1", "adapterType": "grpc"}), 400, "invalid_input", "adapterType"},
		{"empty name", create(map[string]any{"agentName": "  "}), 400, "invalid_input", "agentName"},
		{"overlong name", create(map[string]any{"agentName": long}), 400, "invalid_input", "agentName"},
		{"name with spaces", create(map[string]any{"agentName": "My Agent"}), 400, "invalid_input", "agentName"},
		{"reserved name", create(map[string]any{"agentName": "join-requests"}), 400, "invalid_input", "agentName"},
		{"unknown team", create(map[string]any{"agentName": "a1", "teamId": "00000000-0000-0000-0000-000000000001"}), 400, "invalid_input", "teamId"},
		{"name of an agent", create(map[string]any{"agentName": "existing"}), 409, "name_taken", ""},
		{"name of an active invite", create(map[string]any{"agentName": "reserved"}), 409, "name_taken", ""},
		{"create malformed JSON", func() *result { return e.call(http.MethodPost, "/api/v1/internal/invites", tok, `{"agentName":`) }, 400, "malformed_json", ""},
		{"join unknown adapter", join(active.Token, map[string]any{"adapterType": "smtp"}), 400, "invalid_input", "adapterType"},
		{"join bad machine ip", join(active.Token, map[string]any{"machineIp": "not-an-ip"}), 400, "invalid_input", "machineIp"},
		{"join overlong title", join(active.Token, map[string]any{"title": strings.Repeat("t", 201)}), 400, "invalid_input", "title"},
		{"join malformed JSON", join(active.Token, `{"adapterType"`), 400, "malformed_json", ""},
		{"join expired invite", join(expired.Token, map[string]any{}), 410, "invite_expired", ""},
		{"join spent invite", join(spent.Token, map[string]any{}), 410, "invite_spent", ""},
		{"join revoked invite", join(revoked.Token, map[string]any{}), 410, "invite_revoked", ""},
		{"join unknown token", join(models.RandomBase62(32), map[string]any{}), 404, "invite_not_found", ""},
		{"join malformed token", join("short", map[string]any{}), 404, "invite_not_found", ""},
		{"claim wrong secret", claim(pending.JoinRequestID, map[string]string{"claimSecret": "ag_cs_wrong"}), 401, "invalid_claim_secret", ""},
		{"claim unknown request", claim("8f9c0f4e-9f7c-4b8e-9a52-0d3b1f9a1e11", map[string]string{"claimSecret": pending.ClaimSecret}), 401, "invalid_claim_secret", ""},
		{"claim malformed id", claim("nope", map[string]string{"claimSecret": pending.ClaimSecret}), 401, "invalid_claim_secret", ""},
		{"claim no secret", claim(pending.JoinRequestID, map[string]string{}), 400, "invalid_input", "claimSecret"},
		{"claim malformed JSON", claim(pending.JoinRequestID, `[`), 400, "malformed_json", ""},
		{"claim expired secret", claim(old.JoinRequestID, map[string]string{"claimSecret": old.ClaimSecret}), 401, "claim_expired", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.rows()
			r := tc.do()
			r.t = t
			r.wantError(tc.status, tc.code)
			if tc.field != "" {
				fields, _ := r.errorDetails()["fields"].(map[string]any)
				if _, ok := fields[tc.field]; !ok {
					t.Fatalf("details do not name %s: %s", tc.field, r.Body)
				}
			}
			if after := e.rows(); after != before {
				t.Fatalf("rows changed from %v to %v", before, after)
			}
		})
	}
	// Unknown and malformed tokens answer the same body.
	a := e.call(http.MethodGet, "/api/v1/invites/"+models.RandomBase62(32), "", nil)
	b := e.call(http.MethodGet, "/api/v1/invites/x", "", nil)
	if a.Status != http.StatusNotFound || string(a.Body) != string(b.Body) {
		t.Fatalf("unknown %d %s, malformed %d %s", a.Status, a.Body, b.Status, b.Body)
	}
}

func TestInviteRateLimits(t *testing.T) {
	e := newEnv(t)
	tok := e.token("root@example.com")
	inv := e.invite(tok, map[string]any{"agentName": "limited"})
	var last *result
	for range 40 {
		last = e.call(http.MethodGet, "/api/v1/invites/"+inv.Token, "", nil)
		if last.Status == http.StatusTooManyRequests {
			break
		}
	}
	last.wantError(http.StatusTooManyRequests, "rate_limited")
	if last.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	e.joinInvite(inv.Token, map[string]any{}).wantError(http.StatusTooManyRequests, "rate_limited")
	for range 70 {
		last = e.claim("8f9c0f4e-9f7c-4b8e-9a52-0d3b1f9a1e11", "ag_cs_x")
		if last.Status == http.StatusTooManyRequests {
			break
		}
	}
	last.wantError(http.StatusTooManyRequests, "rate_limited")
	if last.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After on claim")
	}
}

func TestInviteInternalPermissions(t *testing.T) {
	e := newEnv(t)
	e.user("viewer@example.com", models.RoleViewer)
	other := e.otherOrg("Other", "boss@example.com")
	root := e.token("root@example.com")
	viewer := e.token("viewer@example.com")
	boss := e.token("boss@example.com")
	inv, j := e.joinNew(root, "perm")

	e.call(http.MethodPost, "/api/v1/internal/invites", viewer, map[string]any{"orgId": e.org.ID.String(), "agentName": "v"}).wantError(http.StatusForbidden, "forbidden")
	e.call(http.MethodGet, "/api/v1/internal/invites?orgId="+e.org.ID.String(), viewer, nil).want(http.StatusOK) // without links
	e.call(http.MethodPost, "/api/v1/internal/join-requests/"+j.JoinRequestID+"/approve", viewer, struct{}{}).wantError(http.StatusForbidden, "forbidden")
	// Another org's admin: as if nothing existed.
	e.call(http.MethodPost, "/api/v1/internal/invites", boss, map[string]any{"orgId": e.org.ID.String(), "agentName": "x"}).wantError(http.StatusNotFound, "not_found")
	e.call(http.MethodPost, "/api/v1/internal/join-requests/"+j.JoinRequestID+"/approve", boss, struct{}{}).wantError(http.StatusNotFound, "not_found")
	e.call(http.MethodDelete, "/api/v1/internal/invites/"+inv.ID, boss, nil).wantError(http.StatusNotFound, "not_found")
	var list []any
	e.call(http.MethodGet, "/api/v1/internal/join-requests?orgId="+other.ID.String(), boss, nil).want(http.StatusOK).decode(&list)
	if len(list) != 0 {
		t.Fatalf("other org sees %v", list)
	}
	e.call(http.MethodGet, "/api/v1/internal/join-requests?status=maybe", root, nil).wantError(http.StatusBadRequest, "invalid_input")
	// A mismatching ?orgId= on an object route is a 404 too.
	e.call(http.MethodPost, "/api/v1/internal/join-requests/"+j.JoinRequestID+"/approve?orgId="+other.ID.String(), root, struct{}{}).wantError(http.StatusNotFound, "not_found")
	if n := e.count("join_requests", "status = 'PENDING'"); n != 1 {
		t.Fatal("a refused call decided the request")
	}
}

// TestInviteClaimAfterAgentDeleted: the agent of an approved request was
// deleted before the claim. The claim answers 410 agent_deleted, issues no key
// and leaves the request unclaimed.
func TestInviteClaimAfterAgentDeleted(t *testing.T) {
	e := newEnv(t)
	tok := e.token("root@example.com")
	_, j := e.joinNew(tok, "gone-agent")
	e.call(http.MethodPost, "/api/v1/internal/join-requests/"+j.JoinRequestID+"/approve", tok, struct{}{}).want(http.StatusOK)
	e.call(http.MethodDelete, "/api/v1/agents/gone-agent?orgId="+e.org.ID.String(), tok, nil).want(http.StatusOK)
	for range 2 {
		e.claim(j.JoinRequestID, j.ClaimSecret).wantError(http.StatusGone, "agent_deleted")
	}
	if n := e.count("join_requests", "id = ? AND claimed_at IS NULL", j.JoinRequestID); n != 1 {
		t.Fatal("a refused claim marked the request claimed")
	}
	if n := e.count("api_keys", "join_request_id = ?", j.JoinRequestID); n != 0 {
		t.Fatalf("%d keys issued for a deleted agent", n)
	}
}

// TestInviteJoinQueuesNotification: a join queues join_request.created for
// each endpoint that subscribes to it, with the request's id, and for no other.
func TestInviteJoinQueuesNotification(t *testing.T) {
	e := newEnv(t)
	tok := e.token("root@example.com")
	hook, _ := e.webhook(tok, "https://example.com/joins", models.NotifyJoinRequestCreated)
	e.webhook(tok, "https://example.com/keys", models.NotifyKeyRevoked)
	_, j := e.joinNew(tok, "notified")
	if n := e.count("notification_outbox", "event = ?", models.NotifyJoinRequestCreated); n != 1 {
		t.Fatalf("%d join_request.created notifications queued, want 1", n)
	}
	if n := e.count("notification_outbox", "endpoint_id = ? AND payload->>'joinRequestId' = ?", hook, j.JoinRequestID); n != 1 {
		t.Fatal("the notification is not for the subscribed endpoint or names another request")
	}
}

// TestReregistrationVoidsAnEarlierUnclaimedRequest: with a two-use invite,
// a request approved but never claimed is superseded by a later approved
// one: only the newest registration gets a key, as its approval revokes the
// keys of the earlier ones.
func TestReregistrationVoidsAnEarlierUnclaimedRequest(t *testing.T) {
	e := newEnv(t)
	tok := e.token("root@example.com")
	first, second := e.approvedTwice(tok, "worker")
	var cl claimOut
	e.claim(second.JoinRequestID, second.ClaimSecret).want(http.StatusOK).decode(&cl)
	e.claim(first.JoinRequestID, first.ClaimSecret).wantError(http.StatusGone, "claim_superseded")
	if n := e.count("api_keys", "agent_id = 'worker' AND revoked_at IS NULL"); n != 1 {
		t.Fatalf("%d live keys for one agent", n)
	}
	e.call(http.MethodGet, "/api/v1/agent/orgs", cl.APIKey, nil).want(http.StatusOK)
}

// TestInviteListPages: the JSON list pages by keyset like the screen (no
// silent cap), searches names and filters by state.
func TestInviteListPages(t *testing.T) {
	e := newEnv(t)
	tok := e.token("root@example.com")
	ins := make([]models.InviteInput, 130)
	for i := range ins {
		ins[i] = models.InviteInput{AgentName: fmt.Sprintf("page-%03d", i), MaxUses: 1, TTLSeconds: 3600}
	}
	// Two batches: one call creates at most 100.
	for _, batch := range [][]models.InviteInput{ins[:100], ins[100:]} {
		if _, err := models.CreateInvites(t.Context(), e.db, e.h.sealer, e.org.ID, batch, e.actor); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	path := "/api/v1/internal/invites"
	for pages := 0; path != ""; pages++ {
		if pages > 3 {
			t.Fatal("too many pages")
		}
		var page []inviteOut
		res := e.call(http.MethodGet, path, tok, nil).want(http.StatusOK).decode(&page)
		for _, inv := range page {
			if seen[inv.AgentName] {
				t.Fatalf("%s twice", inv.AgentName)
			}
			seen[inv.AgentName] = true
		}
		path = ""
		if link := res.Header.Get("Link"); link != "" {
			path = strings.TrimSuffix(strings.TrimPrefix(strings.Split(link, ";")[0], "<"), ">")
		}
	}
	if len(seen) != 130 {
		t.Fatalf("%d invites listed, want 130", len(seen))
	}
	var page []inviteOut
	e.call(http.MethodGet, "/api/v1/internal/invites?q=page-12&limit=500", tok, nil).want(http.StatusOK).decode(&page)
	if len(page) != 10 {
		t.Fatalf("search: %d", len(page))
	}
	e.call(http.MethodGet, "/api/v1/internal/invites?state=revoked", tok, nil).want(http.StatusOK).decode(&page)
	if len(page) != 0 {
		t.Fatalf("revoked: %d", len(page))
	}
	e.call(http.MethodGet, "/api/v1/internal/invites?state=sideways", tok, nil).wantError(http.StatusBadRequest, "invalid_input")
	e.call(http.MethodGet, "/api/v1/internal/invites?limit=501", tok, nil).wantError(http.StatusBadRequest, "invalid_input")
}
