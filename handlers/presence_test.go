package handlers

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentroster/agentroster/models"
)

// TestPresenceWhileDraining: once shutdown has begun, requests still being
// served can change presence (the writer stops only when the handler closes).
func TestPresenceWhileDraining(t *testing.T) {
	e := newEnv(t)
	_, key := e.teamKey(e.org.ID)
	e.agentIn(e.org.ID, "d1", models.StatusApproved)
	e.h.BeginShutdown()
	on := e.call(http.MethodPost, "/api/v1/agents/d1/online", key, nil).want(http.StatusOK).json()
	if on["isOnline"] != true {
		t.Fatalf("online while draining: %v", on)
	}
	if !e.dbAgent(e.org.ID, "d1").IsOnline {
		t.Fatal("online flag not written while draining")
	}
}

// TestPresenceBatchAuditsAndAnnouncesEachFlip sends presence changes for many
// agents at once, so they commit in shared batches: every flip gets its
// audit row with its own request's actor, every flip reaches a live stream,
// a repeated /offline writes nothing, and a pending agent is refused.
func TestPresenceBatchAuditsAndAnnouncesEachFlip(t *testing.T) {
	e := newEnv(t)
	<-e.h.broker.Ready()
	_, key := e.teamKey(e.org.ID)
	const n = 24
	for i := range n {
		e.agentIn(e.org.ID, fmt.Sprintf("b%d", i), models.StatusApproved)
	}
	e.agentIn(e.org.ID, "pending", models.StatusPending)
	names := openStream(t, e, e.signIn("root@example.com"))
	for e.h.broker.Streams() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("b%d", i)
			e.call(http.MethodPost, "/api/v1/agents/"+id+"/online", key, nil).want(http.StatusOK)
			if i%2 == 0 {
				e.call(http.MethodPost, "/api/v1/agents/"+id+"/offline", key, nil).want(http.StatusOK)
				e.call(http.MethodPost, "/api/v1/agents/"+id+"/offline", key, nil).want(http.StatusOK) // no-op
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		e.call(http.MethodPost, "/api/v1/agents/pending/online", key, nil).want(http.StatusConflict)
	}()
	wg.Wait()

	seen := map[string]bool{}
	for len(seen) < n {
		select {
		case name := <-names:
			if id, ok := strings.CutPrefix(name, "agent-b"); ok {
				seen[id] = true
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("live updates reached %d of %d agents", len(seen), n)
		}
	}
	var rows []struct {
		Action, TargetID, ActorType, RequestID string
	}
	if err := e.db.NewSelect().Table("audit_events").Column("action", "target_id", "actor_type", "request_id").
		Where("action IN ('agent.online', 'agent.offline')").Scan(t.Context(), &rows); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	requests := map[string]bool{}
	for _, r := range rows {
		count[r.Action]++
		if r.ActorType == "" || r.RequestID == "" {
			t.Fatalf("audit row without its actor: %+v", r)
		}
		if requests[r.RequestID] {
			t.Fatalf("two audit rows for request %s", r.RequestID)
		}
		requests[r.RequestID] = true
	}
	if count["agent.online"] != n || count["agent.offline"] != n/2 {
		t.Fatalf("audit rows %v, want %d agent.online and %d agent.offline", count, n, n/2)
	}
	for i := range n {
		a := e.dbAgent(e.org.ID, fmt.Sprintf("b%d", i))
		if a.IsOnline != (i%2 == 1) {
			t.Fatalf("b%d online %v after its changes", i, a.IsOnline)
		}
	}
	if e.dbAgent(e.org.ID, "pending").IsOnline {
		t.Fatal("a pending agent went online")
	}
}
