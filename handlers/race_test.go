package handlers

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/agentroster/agentroster/models"
)

// The concurrency suite: real concurrent requests against the real server and
// database, many rounds each; after every round the shared invariants hold.

// together runs fns at once (released by one barrier) and waits for all.
func together(fns ...func()) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, fn := range fns {
		wg.Add(1)
		go func() { defer wg.Done(); <-start; fn() }()
	}
	close(start)
	wg.Wait()
}

// answers counts answers by status, safe for concurrent use.
type answers struct {
	mu sync.Mutex
	n  map[int]int
}

func (c *answers) add(status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[int]int{}
	}
	c.n[status]++
}

func (c *answers) get(status int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[status]
}

// only reports the statuses outside allowed, for an error message.
func (c *answers) only(allowed ...int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	bad := ""
	for s, n := range c.n {
		ok := false
		for _, a := range allowed {
			ok = ok || a == s
		}
		if !ok {
			bad += fmt.Sprintf(" %d×%d", s, n)
		}
	}
	return bad
}

// raceEnv is an env whose org has an admin token and a team key, trusting
// X-Forwarded-For from the loopback so each round can come from its own IP.
func raceEnv(t *testing.T) (*env, string, string) {
	e := newEnv(t)
	e.h.cfg.TrustedProxies = []string{"127.0.0.1/32", "::1/128"}
	e.srv.Config.Handler = e.h.Routes()
	_, key := e.teamKey(e.org.ID)
	return e, e.token("root@example.com"), key
}

// finishRace checks the invariants and logs the race's summary line.
func finishRace(t *testing.T, e *env, name string, n, violations int) {
	t.Helper()
	violations += checkInvariants(t, e.db)
	summary(t, "race", name, "races", n, "violations", violations)
}

func TestRaceStopVersusOnline(t *testing.T) {
	e, admin, key := raceEnv(t)
	n, violations := rounds(20), 0
	for i := range n {
		id := fmt.Sprintf("so-%d", i)
		e.agentIn(e.org.ID, id, models.StatusApproved)
		var stop, online answers
		fns := []func(){func() { s, _ := e.do(http.MethodPatch, "/api/v1/agents/"+id+"/stop", admin, "{}"); stop.add(s) }}
		for range 4 {
			fns = append(fns, func() { s, _ := e.do(http.MethodPost, "/api/v1/agents/"+id+"/online", key, nil); online.add(s) })
		}
		together(fns...)
		if stop.get(http.StatusOK) != 1 || online.only(http.StatusOK, http.StatusForbidden) != "" {
			t.Errorf("round %d: stop %v online %v", i, stop.n, online.n)
			violations++
		}
		// Once the stop has answered, /online is refused and the agent is offline.
		if s, _ := e.do(http.MethodPost, "/api/v1/agents/"+id+"/online", key, nil); s != http.StatusForbidden {
			t.Errorf("round %d: online after stop: %d", i, s)
			violations++
		}
		if a := e.dbAgent(e.org.ID, id); a.Status != models.StatusStopped || a.IsOnline || a.PickupEnabled {
			t.Errorf("round %d: after stop %+v", i, a)
			violations++
		}
		if got := e.targetEvents("agent.stopped", id); got != 1 {
			t.Errorf("round %d: %d stop events", i, got)
			violations++
		}
	}
	finishRace(t, e, "stop-vs-online", n, violations)
}

// transitionRace fires actions (each a PATCH) at agent id together with a few
// /online calls, then checks that every success has exactly one audit event
// and that the final status is the one the successes imply.
func transitionRace(t *testing.T, e *env, admin, key, id string, actions []string) (ok map[string]int, violations int) {
	t.Helper()
	events := map[string]string{"approve": "agent.approved", "stop": "agent.stopped", "resume": "agent.resumed"}
	base := map[string]int{}
	for action, event := range events {
		base[action] = e.targetEvents(event, id)
	}
	var mu sync.Mutex
	ok = map[string]int{}
	var fns []func()
	for _, action := range actions {
		fns = append(fns, func() {
			s, b := e.do(http.MethodPatch, "/api/v1/agents/"+id+"/"+action, admin, "{}")
			if s != http.StatusOK && s != http.StatusConflict {
				t.Errorf("%s %s: %d %s", action, id, s, b)
			}
			if s == http.StatusOK {
				mu.Lock()
				ok[action]++
				mu.Unlock()
			}
		})
	}
	for range 2 {
		fns = append(fns, func() {
			if s, b := e.do(http.MethodPost, "/api/v1/agents/"+id+"/online", key, nil); s >= 500 || s == 0 {
				t.Errorf("online %s: %d %s", id, s, b)
			}
		})
	}
	together(fns...)
	for action, event := range events {
		if got := e.targetEvents(event, id) - base[action]; got != ok[action] {
			t.Errorf("%s: %d successful %s, %d %s events", id, ok[action], action, got, event)
			violations++
		}
	}
	return ok, violations
}

func TestRaceResumeVersusStop(t *testing.T) {
	e, admin, key := raceEnv(t)
	n, violations := rounds(20), 0
	for i := range n {
		id := fmt.Sprintf("rs-%d", i)
		e.agentIn(e.org.ID, id, models.StatusApproved)
		ok, v := transitionRace(t, e, admin, key, id, []string{"stop", "resume", "stop", "resume"})
		violations += v
		// Stops and resumes alternate from approved: stop, resume, stop, …
		a := e.dbAgent(e.org.ID, id)
		want := models.StatusApproved
		if ok["stop"] == ok["resume"]+1 {
			want = models.StatusStopped
		} else if ok["stop"] != ok["resume"] {
			t.Errorf("round %d: %d stops and %d resumes succeeded", i, ok["stop"], ok["resume"])
			violations++
		}
		if ok["stop"] == 0 || a.Status != want || (want == models.StatusStopped && a.IsOnline) {
			t.Errorf("round %d: successes %v, agent %s online=%v, want %s", i, ok, a.Status, a.IsOnline, want)
			violations++
		}
	}
	finishRace(t, e, "resume-vs-stop", n, violations)
}

func TestRaceApproveVersusStop(t *testing.T) {
	e, admin, key := raceEnv(t)
	n, violations := rounds(20), 0
	for i := range n {
		id := fmt.Sprintf("as-%d", i)
		e.agentIn(e.org.ID, id, models.StatusPending)
		ok, v := transitionRace(t, e, admin, key, id, []string{"approve", "stop", "approve", "stop"})
		violations += v
		// From pending: approve, stop, approve, … (approve also accepts stopped).
		a := e.dbAgent(e.org.ID, id)
		want := models.StatusStopped
		if ok["approve"] == ok["stop"]+1 {
			want = models.StatusApproved
		} else if ok["approve"] != ok["stop"] {
			t.Errorf("round %d: %d approves and %d stops succeeded", i, ok["approve"], ok["stop"])
			violations++
		}
		if ok["approve"] == 0 || a.Status != want {
			t.Errorf("round %d: successes %v, agent %s, want %s", i, ok, a.Status, want)
			violations++
		}
	}
	finishRace(t, e, "approve-vs-stop", n, violations)
}

func TestRaceDeleteVersusRegister(t *testing.T) {
	e, admin, key := raceEnv(t)
	team, err := models.DefaultTeam(t.Context(), e.db, e.org.ID)
	if err != nil {
		t.Fatal(err)
	}
	n, violations := rounds(20), 0
	for i := range n {
		id := fmt.Sprintf("dr-%d", i)
		e.agentIn(e.org.ID, id, models.StatusApproved)
		_, bound := e.boundKey(e.org.ID, id)
		var del, reg, use answers
		together(
			func() { s, _ := e.do(http.MethodDelete, "/api/v1/agents/"+id, admin, nil); del.add(s) },
			func() {
				s, _ := e.do(http.MethodPost, "/api/v1/teams/"+team.ID.String()+"/agents/register", key, map[string]string{"id": id, "title": "again"})
				reg.add(s)
			},
			func() { s, _ := e.do(http.MethodGet, "/api/v1/agents/"+id+"/status", bound, nil); use.add(s) },
		)
		if del.get(http.StatusOK) != 1 || reg.only(http.StatusOK, http.StatusConflict) != "" || use.only(http.StatusOK, http.StatusUnauthorized, http.StatusNotFound) != "" {
			t.Errorf("round %d: delete %v register %v use %v", i, del.n, reg.n, use.n)
			violations++
		}
		// The new registration (if it won) is a fresh pending agent; the old
		// agent's bound key is gone with it either way.
		a := e.dbAgent(e.org.ID, id)
		if (a != nil) != (reg.get(http.StatusOK) == 1) || (a != nil && (a.Status != models.StatusPending || a.Title != "again")) {
			t.Errorf("round %d: register %v, agent %+v", i, reg.n, a)
			violations++
		}
		if s, _ := e.do(http.MethodGet, "/api/v1/agents/"+id+"/status", bound, nil, "X-Forwarded-For", fmt.Sprintf("10.1.%d.1", i)); s != http.StatusUnauthorized {
			t.Errorf("round %d: deleted agent's key answered %d", i, s)
			violations++
		}
		if got, want := e.targetEvents("agent.registered", id), 1+reg.get(http.StatusOK); got != want {
			t.Errorf("round %d: %d registered events, want %d", i, got, want)
			violations++
		}
	}
	finishRace(t, e, "delete-vs-register", n, violations)
}

func TestRaceKeyRevokeVersusUse(t *testing.T) {
	e, admin, _ := raceEnv(t)
	e.agentIn(e.org.ID, "ru", models.StatusApproved)
	n, violations := rounds(20), 0
	for i := range n {
		k, raw := e.teamKey(e.org.ID)
		ip := fmt.Sprintf("10.2.%d.%d", i/250, i%250+1)
		var revoked atomic.Bool
		var before, lateOK atomic.Int64
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for late := 0; late < 5; {
					after := revoked.Load()
					s, b := e.do(http.MethodGet, "/api/v1/agents/ru/status", raw, nil, "X-Forwarded-For", ip)
					switch {
					case s == http.StatusOK && after:
						lateOK.Add(1)
					case s == http.StatusOK:
						before.Add(1)
					case s != http.StatusUnauthorized && s != http.StatusTooManyRequests:
						t.Errorf("round %d: key use answered %d %s", i, s, b)
						return
					}
					if after {
						late++
					}
				}
			}()
		}
		for before.Load() < 4 {
			// let the key be in use before revoking it
			e.do(http.MethodGet, "/healthz", "", nil)
		}
		if s, b := e.do(http.MethodDelete, "/api/v1/settings/api-keys/"+k.ID.String(), admin, nil); s != http.StatusOK {
			t.Fatalf("revoke: %d %s", s, b)
		}
		revoked.Store(true)
		wg.Wait()
		if lateOK.Load() != 0 {
			t.Errorf("round %d: %d requests with a revoked key succeeded after the revoke answered", i, lateOK.Load())
			violations++
		}
		if got := e.targetEvents("api_key.revoked", k.ID.String()); got != 1 {
			t.Errorf("round %d: %d revoke events", i, got)
			violations++
		}
	}
	finishRace(t, e, "revoke-vs-use", n, violations)
}

// inviteRaceEnv is a raceEnv whose invite and claim limits do not get in the way.
func inviteRaceEnv(t *testing.T) (*env, string) {
	e, admin, _ := raceEnv(t)
	e.relaxInviteLimits()
	return e, admin
}

// joinOnce joins an invite and returns the join answer (fatal on failure).
func (e *env) joinOnce(token string) joinOut {
	e.t.Helper()
	var j joinOut
	e.joinInvite(token, map[string]any{"adapterType": "http"}).want(http.StatusCreated).decode(&j)
	return j
}

// TestRaceInviteClaims: many runtimes join a three-use invite at once (three
// win), every request is approved in turn (each a re-registration of the
// agent the first created, superseding the earlier unclaimed ones), and each
// claim secret is redeemed by several callers at once: the last approved
// gets one key, the superseded ones none.
func TestRaceInviteClaims(t *testing.T) {
	e, admin := inviteRaceEnv(t)
	n, violations := rounds(10), 0
	for i := range n {
		inv := e.invite(admin, map[string]any{"agentName": fmt.Sprintf("ic-%d", i), "maxUses": 3})
		var mu sync.Mutex
		var joins []joinOut
		var joined answers
		var fns []func()
		for range 8 {
			fns = append(fns, func() {
				s, b := e.do(http.MethodPost, "/api/v1/invites/"+inv.Token+"/join", "", map[string]string{"adapterType": "http"})
				joined.add(s)
				if s == http.StatusCreated {
					var j joinOut
					json.Unmarshal(b, &j)
					mu.Lock()
					joins = append(joins, j)
					mu.Unlock()
				}
			})
		}
		together(fns...)
		if joined.get(http.StatusCreated) != 3 || joined.only(http.StatusCreated, http.StatusGone) != "" {
			t.Errorf("round %d: joins %v", i, joined.n)
			violations++
		}
		for _, j := range joins {
			if s, b := e.do(http.MethodPost, "/api/v1/internal/join-requests/"+j.JoinRequestID+"/approve", admin, struct{}{}); s != http.StatusOK {
				t.Fatalf("approve: %d %s", s, b)
			}
		}
		fns = nil
		claimed := map[string]*answers{}
		for _, j := range joins {
			claimed[j.JoinRequestID] = &answers{}
			for range 4 {
				fns = append(fns, func() {
					s, _ := e.do(http.MethodPost, "/api/v1/join-requests/"+j.JoinRequestID+"/claim", "", map[string]string{"claimSecret": j.ClaimSecret})
					claimed[j.JoinRequestID].add(s)
				})
			}
		}
		together(fns...)
		last := joins[len(joins)-1].JoinRequestID
		for id, c := range claimed {
			ok := c.get(http.StatusOK) == 1 && c.only(http.StatusOK, http.StatusConflict) == ""
			if id != last {
				ok = c.only(http.StatusGone) == ""
			}
			if !ok {
				t.Errorf("round %d: claims of %s: %v", i, id, c.n)
				violations++
			}
		}
		violations += checkInvariants(t, e.db)
	}
	summary(t, "race", "invite-claims", "races", n, "violations", violations)
}

// TestRaceApproveVersusReject: approvals and rejections of one join request
// at once: exactly one decision wins, and it is the one in the database.
func TestRaceApproveVersusReject(t *testing.T) {
	e, admin := inviteRaceEnv(t)
	n, violations := rounds(20), 0
	for i := range n {
		inv := e.invite(admin, map[string]any{"agentName": fmt.Sprintf("ar-%d", i)})
		j := e.joinOnce(inv.Token)
		var approve, reject answers
		var fns []func()
		for k := range 4 {
			action, c := "approve", &approve
			if k%2 == 1 {
				action, c = "reject", &reject
			}
			fns = append(fns, func() {
				s, _ := e.do(http.MethodPost, "/api/v1/internal/join-requests/"+j.JoinRequestID+"/"+action, admin, struct{}{})
				c.add(s)
			})
		}
		together(fns...)
		wins := approve.get(http.StatusOK) + reject.get(http.StatusOK)
		if wins != 1 || approve.only(http.StatusOK, http.StatusConflict) != "" || reject.only(http.StatusOK, http.StatusConflict) != "" {
			t.Errorf("round %d: approve %v reject %v", i, approve.n, reject.n)
			violations++
		}
		want := "REJECTED"
		if approve.get(http.StatusOK) == 1 {
			want = "APPROVED"
		}
		if e.count("join_requests", "id = ? AND status = ?", j.JoinRequestID, want) != 1 {
			t.Errorf("round %d: request is not %s", i, want)
			violations++
		}
		agents := e.count("agents", "org_id = ? AND id = ?", e.org.ID, inv.AgentName)
		if (want == "APPROVED") != (agents == 1) {
			t.Errorf("round %d: %s with %d agents", i, want, agents)
			violations++
		}
		// The loser of a rejection cannot claim; the winner of an approval once.
		s, _ := e.do(http.MethodPost, "/api/v1/join-requests/"+j.JoinRequestID+"/claim", "", map[string]string{"claimSecret": j.ClaimSecret})
		if (want == "APPROVED" && s != http.StatusOK) || (want == "REJECTED" && s != http.StatusForbidden) {
			t.Errorf("round %d: claim after %s: %d", i, want, s)
			violations++
		}
		violations += checkInvariants(t, e.db)
	}
	summary(t, "race", "approve-vs-reject", "races", n, "violations", violations)
}

// TestRaceBulkInvitesOverlap: two bulk creations whose names overlap (in
// opposite orders) at once: one wins whole, the other is refused whole, never
// a deadlock or a 5xx, and no name is reserved twice.
func TestRaceBulkInvitesOverlap(t *testing.T) {
	e, _ := inviteRaceEnv(t)
	c := e.signIn("root@example.com")
	n, violations := rounds(20), 0
	for i := range n {
		a := []string{fmt.Sprintf("bo-%d-a", i), fmt.Sprintf("bo-%d-shared1", i), fmt.Sprintf("bo-%d-shared2", i)}
		b := []string{fmt.Sprintf("bo-%d-shared2", i), fmt.Sprintf("bo-%d-shared1", i), fmt.Sprintf("bo-%d-b", i)}
		var res answers
		bulk := func(names []string) func() {
			return func() {
				s, _, _ := e.postNoFatal(c, "/agents/invites/bulk", url.Values{"names": {strings.Join(names, "\n")}, "adapterType": {"http"}, "maxUses": {"1"}})
				res.add(s)
			}
		}
		together(bulk(a), bulk(b))
		if res.get(http.StatusOK) != 1 || res.get(http.StatusBadRequest) != 1 {
			t.Errorf("round %d: bulk answers %v", i, res.n)
			violations++
		}
		if got := e.count("invites", "agent_name LIKE ?", fmt.Sprintf("bo-%d-%%", i)); got != 3 {
			t.Errorf("round %d: %d invites, want the 3 of the winner", i, got)
			violations++
		}
		violations += checkInvariants(t, e.db)
	}
	summary(t, "race", "bulk-invites-overlap", "races", n, "violations", violations)
}

// postNoFatal posts a same-origin form from any goroutine; status 0 on a
// transport error.
func (e *env) postNoFatal(c *http.Client, path string, v url.Values) (int, http.Header, string) {
	resp, err := c.Do(formRequest(e.srv.URL, path, v))
	if err != nil {
		return 0, nil, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}
