package handlers

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/uptrace/bun"
)

// queryCounter is a bun query hook that counts the queries each request path
// runs (a query's context is the request's gin.Context).
type queryCounter struct {
	mu     sync.Mutex
	byPath map[string]int
}

func (q *queryCounter) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context {
	return ctx
}

func (q *queryCounter) AfterQuery(ctx context.Context, _ *bun.QueryEvent) {
	c, ok := ctx.Value(gin.ContextKey).(*gin.Context)
	if !ok {
		return
	}
	q.mu.Lock()
	q.byPath[c.Request.URL.Path]++
	q.mu.Unlock()
}

// count returns how many queries one call of do made on path.
func (q *queryCounter) count(path string, do func()) int {
	q.mu.Lock()
	q.byPath = map[string]int{}
	q.mu.Unlock()
	do()
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.byPath[path]
}

// TestQueriesPerRequest counts the queries of the roster page and the status
// route: a fixed number whatever the number of agents (no query per row), and
// none at all for a status poll answered from the cache.
func TestQueriesPerRequest(t *testing.T) {
	e := newEnv(t)
	qc := &queryCounter{byPath: map[string]int{}}
	e.db.AddQueryHook(qc)
	<-e.h.broker.ready
	browser := e.signIn("root@example.com")

	roster := func() int {
		return qc.count("/agents", func() {
			if status, body := e.get(browser, "/agents"); status != http.StatusOK {
				t.Fatalf("roster: %d %.200s", status, body)
			}
		})
	}
	empty := roster()
	seedAgents(t, e.db, e.org.ID, 120) // more than a page
	full := roster()
	t.Logf("roster page: %d queries with no agents, %d with a full page", empty, full)
	if full != empty || full > 8 {
		t.Fatalf("roster page: %d queries with no agents, %d with 120: want the same, at most 8", empty, full)
	}

	_, key := e.boundKey(e.org.ID, "agent-2") // approved
	poll := func() int {
		return qc.count("/api/v1/agents/agent-2/status", func() {
			e.call(http.MethodGet, "/api/v1/agents/agent-2/status", key, nil).want(http.StatusOK)
		})
	}
	cold, warm := poll(), poll()
	t.Logf("status: %d queries cold, %d cached", cold, warm)
	if cold > 2 || warm != 0 {
		t.Fatalf("status: %d queries cold (want at most 2: key and agent), %d cached (want 0)", cold, warm)
	}
}
