package handlers

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/uptrace/bun"

	"github.com/agentroster/agentroster/handlers/live"
	"github.com/agentroster/agentroster/models"
)

func TestLiveEventsFollowCommitsAndOrgs(t *testing.T) {
	e := newEnv(t)
	<-e.h.broker.Ready()
	other, err := models.CreateOrg(t.Context(), e.db, "Other org", "", nil, e.actor)
	if err != nil {
		t.Fatal(err)
	}
	names := openStream(t, e, e.signIn("root@example.com"))
	for e.h.broker.Streams() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	ctx := t.Context()
	// A rolled-back change announces nothing; another org's change is not ours.
	e.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		models.Publish(ctx, tx, models.Event{Org: e.org.ID, Kind: "never-rolled-back"})
		return context.Canceled
	})
	models.Publish(ctx, e.db, models.Event{Org: other.ID, Kind: "never-other-org"})
	models.Publish(ctx, e.db, models.Event{Org: e.org.ID, Kind: "agent", ID: "claude-1"})
	expectEvent(t, names, "agent-claude-1")
}

func TestStreamsPerSessionAreBounded(t *testing.T) {
	e := newEnv(t)
	c := e.signIn("root@example.com")
	for range live.MaxStreamsPerSession {
		openStream(t, e, c)
	}
	for e.h.broker.Streams() < live.MaxStreamsPerSession {
		time.Sleep(10 * time.Millisecond)
	}
	if status, _ := e.get(c, "/events"); status != http.StatusTooManyRequests {
		t.Fatalf("stream over the bound: %d, want 429", status)
	}
}

func TestStreamsEndOnShutdown(t *testing.T) {
	e := newEnv(t)
	names := openStream(t, e, e.signIn("root@example.com"))
	for e.h.broker.Streams() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	e.h.BeginShutdown()
	select {
	case _, ok := <-names:
		for ok {
			_, ok = <-names
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stream still open 5s after shutdown began")
	}
}

// TestPageRefreshEventsWaitForTheRequest: inside a request, an event that
// only refreshes pages is collected from the request's context (the one the
// handlers give the models) and announced after the handler, so the
// transaction that made it does not notify.
func TestPageRefreshEventsWaitForTheRequest(t *testing.T) {
	e := newEnv(t)
	r := gin.New()
	r.Use(e.h.announceAfter)
	var deferredErr, direct error
	r.GET("/x", func(c *gin.Context) {
		// A nil database: only a collected event can succeed.
		deferredErr = models.Publish(c.Request.Context(), nil, models.Event{Org: e.org.ID, Kind: models.EventJoinRequest})
		direct = models.Publish(c.Request.Context(), e.db, models.Event{Org: e.org.ID, Kind: models.EventAgent, ID: "a"})
	})
	r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/x", nil))
	if deferredErr != nil || direct != nil {
		t.Fatalf("page refresh event: %v; agent event: %v", deferredErr, direct)
	}
}

// TestStreamEndsWhenTheClientLeaves: a stream is served apart from the
// request once it is open; a client that closes its connection still frees
// its place (the per-session bound counts open streams) and its subscription.
func TestStreamEndsWhenTheClientLeaves(t *testing.T) {
	e := newEnv(t)
	c := e.signIn("root@example.com")
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+"/events", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Content-Type-Options") == "" {
		t.Fatalf("events: %d, headers %v", resp.StatusCode, resp.Header)
	}
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	if line != "retry: 2000\n" {
		t.Fatalf("first line %q", line)
	}
	if n := e.h.broker.Streams(); n != 1 {
		t.Fatalf("%d streams open, want 1", n)
	}
	cancel()
	resp.Body.Close()
	for deadline := time.Now().Add(5 * time.Second); e.h.broker.Streams() != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the stream of a client that left is still subscribed after 5 s")
		}
	}
	// Its place is free again: the session may open its whole allowance.
	for range live.MaxStreamsPerSession {
		openStream(t, e, c)
	}
}
