package handlers

import (
	"fmt"
	"net/http"
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

// tally counts answers by status, safe for concurrent use.
type tally struct {
	mu sync.Mutex
	n  map[int]int
}

func (c *tally) add(status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[int]int{}
	}
	c.n[status]++
}

func (c *tally) get(status int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[status]
}

// only reports the statuses outside allowed, for an error message.
func (c *tally) only(allowed ...int) string {
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
		var stop, online tally
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
		if got := e.auditCount("agent.stopped", id); got != 1 {
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
		base[action] = e.auditCount(event, id)
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
		if got := e.auditCount(event, id) - base[action]; got != ok[action] {
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
		var del, reg, use tally
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
		if got, want := e.auditCount("agent.registered", id), 1+reg.get(http.StatusOK); got != want {
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
		if got := e.auditCount("api_key.revoked", k.ID.String()); got != 1 {
			t.Errorf("round %d: %d revoke events", i, got)
			violations++
		}
	}
	finishRace(t, e, "revoke-vs-use", n, violations)
}
