package handlers

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentroster/agentroster/models"
)

// The seed's register example, verbatim.
const seedRegisterBody = `{
"id": "claude-1",
"title": "Claude (build agent)",
"machineIp": "10.0.0.42",
"machineName": "runner-a",
"llmVersion": "claude-opus-4-7",
"email": "[email protected]",
"osName": "Linux",
"osVersion": "6.5.0",
"ramBytes": 17179869184,
"storageBytes": 549755813888,
"storageType": "SSD"
}`

// The seed's register answer, verbatim.
const seedRegisterResponse = `{
"id": "claude-1",
"title": "Claude (build agent)",
"status": "pending",
"agentPickupEnabled": false,
"isOnline": false,
"osName": "Linux",
"osVersion": "6.5.0",
"ramBytes": 17179869184,
"storageBytes": 549755813888,
"storageType": "SSD",
"createdAt": "2026-05-02T10:14:22Z"
}`

func decodeNumbers(t *testing.T, b []byte) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return m
}

func keysOf(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func TestRegisterSeedExample(t *testing.T) {
	e := newEnv(t)
	k, raw := e.teamKey(e.org.ID)
	res := e.call(http.MethodPost, "/api/v1/teams/"+k.TeamID.String()+"/agents/register", raw, seedRegisterBody).want(http.StatusOK)
	got, want := decodeNumbers(t, res.Body), decodeNumbers(t, []byte(seedRegisterResponse))
	if !reflect.DeepEqual(keysOf(got), keysOf(want)) {
		t.Fatalf("keys %v, want the seed's %v", keysOf(got), keysOf(want))
	}
	for k, w := range want {
		if k == "createdAt" {
			isRFC3339UTCSeconds(t, got[k].(string))
			continue
		}
		if !reflect.DeepEqual(got[k], w) {
			t.Errorf("%s = %#v, want %#v", k, got[k], w)
		}
	}
	a := e.dbAgent(e.org.ID, "claude-1")
	if a == nil || a.Status != models.StatusPending || a.PickupEnabled || a.JoinedVia != "register" || a.TeamID != k.TeamID ||
		a.MachineIP != "10.0.0.42" || a.Email != "[email protected]" || *a.RAMBytes != 17179869184 {
		t.Fatalf("stored agent: %+v", a)
	}

	// Optional telemetry is absent, not null, when not reported.
	body := e.call(http.MethodPost, "/api/v1/teams/"+k.TeamID.String()+"/agents/register", raw, map[string]string{"id": "old-client", "title": "Old"}).want(http.StatusOK).json()
	for _, f := range []string{"osName", "osVersion", "ramBytes", "storageBytes", "storageType", "lastSeenAt"} {
		if _, ok := body[f]; ok {
			t.Errorf("%s present for a client that did not report it: %v", f, body)
		}
	}

	// Duplicate id, bad ids, bad types, another org's team.
	e.call(http.MethodPost, "/api/v1/teams/"+k.TeamID.String()+"/agents/register", raw, seedRegisterBody).wantError(http.StatusConflict, "agent_exists")
	for _, id := range []string{"", "Claude", "-x", "invites", strings.Repeat("a", 64), "a b"} {
		res := e.call(http.MethodPost, "/api/v1/teams/"+k.TeamID.String()+"/agents/register", raw, map[string]string{"id": id}).wantError(http.StatusBadRequest, "invalid_input")
		if _, ok := res.errorDetails()["fields"].(map[string]any)["id"]; !ok {
			t.Errorf("id %q: details do not name the id: %s", id, res.Body)
		}
	}
	e.call(http.MethodPost, "/api/v1/teams/"+k.TeamID.String()+"/agents/register", raw, `{"id":"x1","ramBytes":"lots"}`).wantError(http.StatusBadRequest, "invalid_input")
	e.call(http.MethodPost, "/api/v1/teams/"+k.TeamID.String()+"/agents/register", raw, `{"id":"x1","ramBytes":-1}`).wantError(http.StatusBadRequest, "invalid_input")
	other := e.otherOrg("Other", "other@example.com")
	otherTeam, _ := models.DefaultTeam(t.Context(), e.db, other.ID)
	e.call(http.MethodPost, "/api/v1/teams/"+otherTeam.ID.String()+"/agents/register", raw, map[string]string{"id": "sneaky"}).wantError(http.StatusForbidden, "forbidden")
	// Any team of the key's org is fine.
	build, err := models.CreateTeam(t.Context(), e.db, e.org.ID, "build", e.actor)
	if err != nil {
		t.Fatal(err)
	}
	e.call(http.MethodPost, "/api/v1/teams/"+build.ID.String()+"/agents/register", raw, map[string]string{"id": "builder"}).want(http.StatusOK)
	if a := e.dbAgent(e.org.ID, "builder"); a == nil || a.TeamID != build.ID {
		t.Fatalf("agent in the build team: %+v", a)
	}
	if a := e.dbAgent(other.ID, "sneaky"); a != nil {
		t.Fatal("agent registered into another org")
	}
	n, _ := e.db.NewSelect().Table("audit_events").Where("action = 'agent.registered' AND org_id = ?", e.org.ID).Count(t.Context())
	if n != 3 {
		t.Fatalf("agent.registered events: %d, want 3", n)
	}
}

func TestRuntimeAuth(t *testing.T) {
	e := newEnv(t)
	e.agentIn(e.org.ID, "worker-1", models.StatusApproved)
	e.agentIn(e.org.ID, "worker-2", models.StatusApproved)
	_, raw := e.teamKey(e.org.ID)
	status := "/api/v1/agents/worker-1/status"

	e.call(http.MethodGet, status, "", nil).wantError(http.StatusUnauthorized, "unauthorized")
	e.call(http.MethodGet, status, raw, nil).want(http.StatusOK)
	// Bearer is accepted when the token is an API key.
	e.call(http.MethodGet, status, "", nil, "Authorization", "Bearer "+raw).want(http.StatusOK)
	e.call(http.MethodGet, status, "", nil, "Authorization", "ApiKey "+models.NewAPIKey()).wantError(http.StatusUnauthorized, "invalid_credential")
	// An operator's token is not an API key.
	e.call(http.MethodGet, status, e.token("root@example.com"), nil).wantError(http.StatusUnauthorized, "unauthorized")

	// A key bound to worker-1 acts for worker-1 only.
	_, bound := e.boundKey(e.org.ID, "worker-1")
	e.call(http.MethodGet, status, bound, nil).want(http.StatusOK)
	for _, path := range []string{"/status", "/permissions"} {
		e.call(http.MethodGet, "/api/v1/agents/worker-2"+path, bound, nil).wantError(http.StatusForbidden, "key_bound_to_other_agent")
	}
	for _, path := range []string{"/online", "/offline"} {
		e.call(http.MethodPost, "/api/v1/agents/worker-2"+path, bound, nil).wantError(http.StatusForbidden, "key_bound_to_other_agent")
	}
	team, _ := models.DefaultTeam(t.Context(), e.db, e.org.ID)
	e.call(http.MethodPost, "/api/v1/teams/"+team.ID.String()+"/agents/register", bound, map[string]string{"id": "new-one"}).
		wantError(http.StatusForbidden, "key_bound_to_other_agent")
	if w2 := e.dbAgent(e.org.ID, "worker-2"); w2.IsOnline {
		t.Fatal("bound key changed another agent")
	}

	// Disabled, expired and revoked keys: 401.
	ctx := t.Context()
	disabled, rawDisabled := e.teamKey(e.org.ID)
	if _, err := models.SetAPIKeyActive(ctx, e.db, e.org.ID, disabled.ID, false, e.actor); err != nil {
		t.Fatal(err)
	}
	expired, rawExpired := e.teamKey(e.org.ID)
	if _, err := e.db.NewUpdate().Table("api_keys").Set("expires_at = now() - interval '1 minute'").Where("id = ?", expired.ID).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	revoked, rawRevoked := e.teamKey(e.org.ID)
	if _, err := models.RevokeAPIKey(ctx, e.db, e.org.ID, revoked.ID, e.actor); err != nil {
		t.Fatal(err)
	}
	for name, k := range map[string]string{"disabled": rawDisabled, "expired": rawExpired, "revoked": rawRevoked} {
		res := e.call(http.MethodGet, status, k, nil)
		if res.Status != http.StatusUnauthorized {
			t.Errorf("%s key: %d, want 401", name, res.Status)
		}
		res.wantError(http.StatusUnauthorized, "invalid_credential")
	}
	// Re-enabling a disabled key works; a revoked one stays revoked.
	if _, err := models.SetAPIKeyActive(ctx, e.db, e.org.ID, disabled.ID, true, e.actor); err != nil {
		t.Fatal(err)
	}
	e.call(http.MethodGet, status, rawDisabled, nil).want(http.StatusOK)
	if _, err := models.SetAPIKeyActive(ctx, e.db, e.org.ID, revoked.ID, true, e.actor); err == nil {
		t.Fatal("revoked key re-enabled")
	}
	e.call(http.MethodGet, status, rawRevoked, nil).wantError(http.StatusUnauthorized, "invalid_credential")
}

func TestBadKeyRateLimit(t *testing.T) {
	e := newEnv(t)
	e.agentIn(e.org.ID, "worker-1", models.StatusApproved)
	_, good := e.teamKey(e.org.ID)
	path := "/api/v1/agents/worker-1/status"
	// Good keys do not use up the budget.
	for range 30 {
		e.call(http.MethodGet, path, good, nil).want(http.StatusOK)
	}
	var last *result
	for i := 0; i < 40; i++ {
		last = e.call(http.MethodGet, path, models.NewAPIKey(), nil)
		if last.Status == http.StatusTooManyRequests {
			break
		}
		last.wantError(http.StatusUnauthorized, "invalid_credential")
	}
	last.wantError(http.StatusTooManyRequests, "rate_limited")
	if last.Header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	// Once the budget is spent, a good key from the same address still works
	// (a revoked runtime polling on must not lock out its successor), while
	// bad keys stay refused.
	e.call(http.MethodGet, path, good, nil).want(http.StatusOK)
	e.call(http.MethodGet, path, models.NewAPIKey(), nil).wantError(http.StatusTooManyRequests, "rate_limited")
}

// TestStateMachine walks every (status × action) pair.
func TestStateMachine(t *testing.T) {
	e := newEnv(t)
	admin := e.token("root@example.com")
	_, key := e.teamKey(e.org.ID)
	type want struct {
		status int
		code   string
		after  string // status afterwards; "" = deleted
	}
	ok := func(after string) want { return want{status: http.StatusOK, after: after} }
	conflict := func(s string) want { return want{http.StatusConflict, "invalid_transition", s} }
	cases := map[string]map[string]want{
		models.StatusPending: {
			"approve": ok(models.StatusApproved), "stop": conflict(models.StatusPending), "resume": conflict(models.StatusPending),
			"online": {http.StatusConflict, "agent_not_approved", models.StatusPending}, "offline": ok(models.StatusPending), "delete": ok(""),
		},
		models.StatusApproved: {
			"approve": conflict(models.StatusApproved), "stop": ok(models.StatusStopped), "resume": conflict(models.StatusApproved),
			"online": ok(models.StatusApproved), "offline": ok(models.StatusApproved), "delete": ok(""),
		},
		models.StatusStopped: {
			"approve": ok(models.StatusApproved), "stop": conflict(models.StatusStopped), "resume": ok(models.StatusApproved),
			"online": {http.StatusForbidden, "agent_stopped", models.StatusStopped}, "offline": ok(models.StatusStopped), "delete": ok(""),
		},
	}
	for _, from := range []string{models.StatusPending, models.StatusApproved, models.StatusStopped} {
		for _, action := range []string{"approve", "stop", "resume", "online", "offline", "delete"} {
			w := cases[from][action]
			t.Run(from+"/"+action, func(t *testing.T) {
				e.t = t
				id := from + "-" + action
				e.agentIn(e.org.ID, id, from)
				if from == models.StatusApproved { // presence on, so stop must clear it
					e.call(http.MethodPost, "/api/v1/agents/"+id+"/online", key, nil).want(http.StatusOK)
				}
				var res *result
				switch action {
				case "online", "offline":
					res = e.call(http.MethodPost, "/api/v1/agents/"+id+"/"+action, key, nil)
				case "delete":
					res = e.call(http.MethodDelete, "/api/v1/agents/"+id, admin, nil)
				default:
					res = e.call(http.MethodPatch, "/api/v1/agents/"+id+"/"+action, admin, "{}")
				}
				if w.code != "" {
					res.wantError(w.status, w.code)
					d := res.errorDetails()
					if d["status"] != from || d["action"] != action {
						t.Fatalf("details %v, want status %s and action %s", d, from, action)
					}
				} else {
					res.want(w.status)
				}
				a := e.dbAgent(e.org.ID, id)
				if w.after == "" {
					if a != nil || !bytes.Equal(res.Body, []byte(`{"success":true}`)) {
						t.Fatalf("after delete: agent %v, body %s", a, res.Body)
					}
					return
				}
				if a == nil || a.Status != w.after {
					t.Fatalf("status after %s: %+v, want %s", action, a, w.after)
				}
				if got := res.json(); w.code == "" && action != "online" && action != "offline" && got["status"] != w.after {
					t.Fatalf("answer status %v, want %s", got["status"], w.after)
				}
				// Side effects of the transitions that landed (SPEC §5).
				switch {
				case w.code != "":
				case action == "stop":
					if a.IsOnline || a.PickupEnabled {
						t.Fatalf("after stop: online %v pickup %v", a.IsOnline, a.PickupEnabled)
					}
				case action == "approve" || action == "resume":
					if !a.PickupEnabled || a.IsOnline {
						t.Fatalf("after %s: pickup %v online %v", action, a.PickupEnabled, a.IsOnline)
					}
				case action == "online":
					if !a.IsOnline || a.LastSeenAt == nil {
						t.Fatalf("after online: %+v", a)
					}
				case action == "offline":
					if a.IsOnline {
						t.Fatal("still online after offline")
					}
				}
			})
		}
	}
	e.t = t
	// Unknown agent: 404 for every action.
	e.call(http.MethodPatch, "/api/v1/agents/nobody/approve", admin, "{}").wantError(http.StatusNotFound, "not_found")
	e.call(http.MethodDelete, "/api/v1/agents/nobody", admin, nil).wantError(http.StatusNotFound, "not_found")
	e.call(http.MethodPost, "/api/v1/agents/nobody/online", key, nil).wantError(http.StatusNotFound, "not_found")
	// Every landed transition was audited (setups included); the delete event keeps the id.
	for action, want := range map[string]int{"agent.approved": 6 + 6 + 2, "agent.stopped": 6 + 1, "agent.resumed": 1, "agent.deleted": 3} {
		got, err := e.db.NewSelect().Table("audit_events").Where("org_id = ? AND action = ?", e.org.ID, action).Count(t.Context())
		if err != nil || int(got) != want {
			t.Errorf("%s events: %d, want %d (%v)", action, got, want, err)
		}
	}
	var ids []string
	if err := e.db.NewSelect().Table("audit_events").Column("target_id").Where("action = 'agent.deleted'").OrderExpr("target_id").Scan(t.Context(), &ids); err != nil {
		t.Fatal(err)
	}
	if strings.Join(ids, ",") != "approved-delete,pending-delete,stopped-delete" {
		t.Fatalf("deleted ids in audit: %v", ids)
	}
}

func TestStoppedAgentAndOffboarding(t *testing.T) {
	e := newEnv(t)
	admin := e.token("root@example.com")
	e.agentIn(e.org.ID, "runner", models.StatusApproved)
	k, key := e.boundKey(e.org.ID, "runner")
	e.call(http.MethodPost, "/api/v1/agents/runner/online", key, nil).want(http.StatusOK)
	e.call(http.MethodPatch, "/api/v1/agents/runner/stop", admin, "{}").want(http.StatusOK)

	st := e.call(http.MethodGet, "/api/v1/agents/runner/status", key, nil).want(http.StatusOK).json()
	if st["status"] != "stopped" || st["isOnline"] != false || st["agentPickupEnabled"] != false {
		t.Fatalf("status of a stopped agent: %v", st)
	}
	e.call(http.MethodPost, "/api/v1/agents/runner/online", key, nil).wantError(http.StatusForbidden, "agent_stopped")
	e.call(http.MethodGet, "/api/v1/agents/runner/permissions", key, nil).wantError(http.StatusForbidden, "agent_stopped")
	e.call(http.MethodPost, "/api/v1/agents/runner/offline", key, nil).want(http.StatusOK)
	e.call(http.MethodPost, "/api/v1/agents/runner/offline", key, nil).want(http.StatusOK)
	// Its bound key keeps only /status and /offline.
	team, _ := models.DefaultTeam(t.Context(), e.db, e.org.ID)
	for _, path := range []string{"/api/v1/agent/orgs", "/api/v1/organizations/" + e.org.ID.String() + "/agents/mcp/list", "/api/v1/teams/" + team.ID.String() + "/onboarding"} {
		e.call(http.MethodGet, path, key, nil).wantError(http.StatusForbidden, "agent_stopped")
	}

	// Offboarding: stop, then revoke the key; the runtime's next call is 401.
	e.call(http.MethodDelete, "/api/v1/settings/api-keys/"+k.ID.String(), admin, nil).want(http.StatusOK)
	e.call(http.MethodDelete, "/api/v1/settings/api-keys/"+k.ID.String(), admin, nil).want(http.StatusOK) // idempotent
	e.call(http.MethodGet, "/api/v1/agents/runner/status", key, nil).wantError(http.StatusUnauthorized, "invalid_credential")
	stored, _ := models.GetAPIKey(t.Context(), e.db, e.org.ID, k.ID)
	if stored.RevokedAt == nil || stored.IsActive {
		t.Fatalf("revoked key row: %+v", stored)
	}
	// Presence events were written only when the flag flipped: one online, one offline (the stop cleared it).
	for action, want := range map[string]int{"agent.online": 1, "agent.offline": 0, "api_key.revoked": 1, "agent.stopped": 1} {
		n, _ := e.db.NewSelect().Table("audit_events").Where("action = ? AND org_id = ?", action, e.org.ID).Count(t.Context())
		if int(n) != want {
			t.Errorf("%s events: %d, want %d", action, n, want)
		}
	}
	// Deleting the agent deletes its bound keys.
	e.call(http.MethodDelete, "/api/v1/agents/runner", admin, nil).want(http.StatusOK)
	if _, err := models.GetAPIKey(t.Context(), e.db, e.org.ID, k.ID); err == nil {
		t.Fatal("bound key survived its agent")
	}
}

func TestPresence(t *testing.T) {
	e := newEnv(t)
	_, key := e.teamKey(e.org.ID)
	e.agentIn(e.org.ID, "p1", models.StatusApproved)
	st := e.call(http.MethodGet, "/api/v1/agents/p1/status", key, nil).want(http.StatusOK).json()
	if st["isOnline"] != false || st["lastSeenAt"] == nil {
		t.Fatalf("first poll: %v", st)
	}
	isRFC3339UTCSeconds(t, st["lastSeenAt"].(string))
	on := e.call(http.MethodPost, "/api/v1/agents/p1/online", key, nil).want(http.StatusOK).json()
	if on["isOnline"] != true || on["id"] != "p1" || on["status"] != "approved" || on["createdAt"] == nil {
		t.Fatalf("online answer: %v", on)
	}
	// A second /online is a no-op: no second event.
	e.call(http.MethodPost, "/api/v1/agents/p1/online", key, nil).want(http.StatusOK)
	n, _ := e.db.NewSelect().Table("audit_events").Where("action = 'agent.online'").Count(t.Context())
	if n != 1 {
		t.Fatalf("agent.online events: %d", n)
	}

	// Polls within 15 s do not write last_seen_at again.
	before := e.dbAgent(e.org.ID, "p1").LastSeenAt
	e.call(http.MethodGet, "/api/v1/agents/p1/status", key, nil).want(http.StatusOK)
	if after := e.dbAgent(e.org.ID, "p1").LastSeenAt; !after.Equal(*before) {
		t.Fatalf("last_seen_at rewritten within 15 s: %v → %v", before, after)
	}
	// An old contact is refreshed by the next poll.
	if _, err := e.db.NewUpdate().Table("agents").Set("last_seen_at = now() - interval '1 minute'").Where("id = 'p1'").Exec(t.Context()); err != nil {
		t.Fatal(err)
	}
	// A change made outside the server reaches the cache through its event (or
	// after cacheTTL); contacts are written within a second: do both now.
	e.h.forget(e.org.ID, "agent", "p1")
	e.call(http.MethodGet, "/api/v1/agents/p1/status", key, nil).want(http.StatusOK)
	if err := e.h.writer.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if seen := e.dbAgent(e.org.ID, "p1").LastSeenAt; time.Since(*seen) > 30*time.Second {
		t.Fatalf("stale last_seen_at not refreshed: %v", seen)
	}

	// Silent for longer than the presence window: shown offline although the flag is set.
	if _, err := e.db.NewUpdate().Table("agents").Set("last_seen_at = now() - interval '10 minutes'").Where("id = 'p1'").Exec(t.Context()); err != nil {
		t.Fatal(err)
	}
	admin := e.token("root@example.com")
	var list []map[string]any
	e.call(http.MethodGet, "/api/v1/organizations/"+e.org.ID.String()+"/agents", admin, nil).want(http.StatusOK).decode(&list)
	if len(list) != 1 || list[0]["isOnline"] != false || list[0]["onlineFlag"] != true || list[0]["machineIp"] == nil {
		t.Fatalf("management list: %v", list)
	}
	e.call(http.MethodGet, "/api/v1/organizations/"+e.org.ID.String()+"/agents?presence=offline", admin, nil).want(http.StatusOK).decode(&list)
	if len(list) != 1 {
		t.Fatalf("presence=offline: %v", list)
	}
	e.call(http.MethodGet, "/api/v1/organizations/"+e.org.ID.String()+"/agents?presence=online", admin, nil).want(http.StatusOK).decode(&list)
	if len(list) != 0 {
		t.Fatalf("presence=online: %v", list)
	}
	// /online brings it back.
	e.call(http.MethodPost, "/api/v1/agents/p1/online", key, nil).want(http.StatusOK)
	if a := e.dbAgent(e.org.ID, "p1"); !a.EffectiveOnline(time.Now(), 2*time.Minute) {
		t.Fatalf("not online after /online: %+v", a)
	}
}

// TestStopWinsOverOnline: while the agent hammers /online, an admin stops it.
// After the stop has answered, no /online succeeds and the agent ends offline.
func TestStopWinsOverOnline(t *testing.T) {
	e := newEnv(t)
	admin := e.token("root@example.com")
	e.agentIn(e.org.ID, "busy", models.StatusApproved)
	_, key := e.teamKey(e.org.ID)

	var stopped atomic.Bool
	var onlineOK, lateOK, lateRefused atomic.Int64
	start := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			after := 0
			for after < 10 {
				late := stopped.Load()
				req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/api/v1/agents/busy/online", nil)
				req.Header.Set("Authorization", "ApiKey "+key)
				resp, err := client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				switch {
				case resp.StatusCode == http.StatusOK && late:
					lateOK.Add(1)
				case resp.StatusCode == http.StatusOK:
					onlineOK.Add(1)
				case late && resp.StatusCode == http.StatusForbidden:
					lateRefused.Add(1)
				case resp.StatusCode != http.StatusForbidden:
					t.Errorf("online: %d", resp.StatusCode)
				}
				if late {
					after++
				}
			}
		}()
	}
	close(start)
	for onlineOK.Load() < 20 {
		time.Sleep(time.Millisecond)
	}
	e.call(http.MethodPatch, "/api/v1/agents/busy/stop", admin, "{}").want(http.StatusOK)
	stopped.Store(true)
	wg.Wait()

	if lateOK.Load() != 0 {
		t.Fatalf("%d /online calls succeeded after the stop answered", lateOK.Load())
	}
	if lateRefused.Load() != 60 {
		t.Fatalf("refused after stop: %d, want 60", lateRefused.Load())
	}
	a := e.dbAgent(e.org.ID, "busy")
	if a.Status != models.StatusStopped || a.IsOnline || a.PickupEnabled {
		t.Fatalf("after stop: %+v", a)
	}
}

func TestRuntimeReads(t *testing.T) {
	e := newEnv(t)
	_, key := e.teamKey(e.org.ID)
	e.agentIn(e.org.ID, "reader", models.StatusApproved)
	e.agentIn(e.org.ID, "waiting", models.StatusPending)

	var orgs []map[string]any
	e.call(http.MethodGet, "/api/v1/agent/orgs", key, nil).want(http.StatusOK).decode(&orgs)
	if len(orgs) != 1 || orgs[0]["id"] != e.org.ID.String() || orgs[0]["title"] != e.org.Title || orgs[0]["color"] != e.org.Color || len(orgs[0]) != 3 {
		t.Fatalf("agent/orgs: %v", orgs)
	}
	var list []map[string]any
	e.call(http.MethodGet, "/api/v1/organizations/"+e.org.ID.String()+"/agents/mcp/list", key, nil).want(http.StatusOK).decode(&list)
	if len(list) != 2 || list[0]["id"] != "waiting" || list[1]["id"] != "reader" {
		t.Fatalf("mcp list: %v", list)
	}
	if _, private := list[0]["machineIp"]; private {
		t.Fatal("runtime list shows private fields")
	}

	team, _ := models.DefaultTeam(t.Context(), e.db, e.org.ID)
	if _, err := models.UpdateTeam(t.Context(), e.db, e.org.ID, team.ID, team.Name, "# Hello agents", e.actor); err != nil {
		t.Fatal(err)
	}
	ob := e.call(http.MethodGet, "/api/v1/teams/"+team.ID.String()+"/onboarding", key, nil).want(http.StatusOK).json()
	if ob["teamId"] != team.ID.String() || ob["teamName"] != "default" || ob["content"] != "# Hello agents" {
		t.Fatalf("onboarding: %v", ob)
	}
	e.call(http.MethodGet, "/api/v1/teams/"+team.ID.String()+"/onboarding", e.token("root@example.com"), nil).want(http.StatusOK)
	e.call(http.MethodGet, "/api/v1/teams/"+team.ID.String()+"/onboarding", "", nil).wantError(http.StatusUnauthorized, "unauthorized")

	// Pending agents may not read permissions yet.
	e.call(http.MethodGet, "/api/v1/agents/waiting/permissions", key, nil).wantError(http.StatusConflict, "agent_not_approved")
	p := e.call(http.MethodGet, "/api/v1/agents/reader/permissions", key, nil).want(http.StatusOK).json()
	for _, f := range []string{"canRead", "canModerate", "canTransition", "columnAccess", "cardTypeAccess", "permissions"} {
		if _, ok := p[f]; !ok {
			t.Fatalf("permissions lacks %s: %v", f, p)
		}
	}
}
