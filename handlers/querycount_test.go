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
	<-e.h.broker.Ready()
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
	if full != empty || full < 1 || full > 7 {
		t.Fatalf("roster page: %d queries with no agents, %d with 120: want the same, 1 to 7", empty, full)
	}

	_, key := e.boundKey(e.org.ID, "agent-2") // approved
	poll := func() int {
		return qc.count("/api/v1/agents/agent-2/status", func() {
			e.call(http.MethodGet, "/api/v1/agents/agent-2/status", key, nil).want(http.StatusOK)
		})
	}
	cold, warm := poll(), poll()
	t.Logf("status: %d queries cold, %d cached", cold, warm)
	if cold < 1 || cold > 2 || warm != 0 {
		t.Fatalf("status: %d queries cold (want 1 or 2: key and agent), %d cached (want 0)", cold, warm)
	}
}

// TestQueriesPerRequestInvitesAndJoinRequests counts the queries of the
// Invites and Join requests pages: the same with 300 rows as with none, but
// one per distinct approver named on the join requests page.
func TestQueriesPerRequestInvitesAndJoinRequests(t *testing.T) {
	e := newEnv(t)
	qc := &queryCounter{byPath: map[string]int{}}
	e.db.AddQueryHook(qc)
	browser := e.signIn("root@example.com")
	page := func(path string) int {
		return qc.count(path, func() {
			if status, body := e.get(browser, path+"?status=all"); status != http.StatusOK {
				t.Fatalf("%s: %d %.200s", path, status, body)
			}
		})
	}
	emptyInv, emptyJR := page("/agents/invites"), page("/agents/join-requests")

	// 300 invites, each with a join request, half of them approved by the admin.
	_, err := e.db.ExecContext(t.Context(), `
		WITH t AS (SELECT id FROM teams WHERE org_id = ? LIMIT 1),
		inv AS (
			INSERT INTO invites (org_id, team_id, agent_name, adapter_type, token_hash, token_enc, expires_at)
			SELECT ?, t.id, 'load-' || g, 'http', sha256(('tok' || g)::bytea), '\x00'::bytea, now() + interval '1 day'
			FROM t, generate_series(1, 300) AS g
			RETURNING id, team_id, agent_name)
		INSERT INTO join_requests (org_id, invite_id, team_id, agent_name, adapter_type, status, claim_secret_hash,
			claim_expires_at, decided_at, decided_by)
		SELECT ?, inv.id, inv.team_id, inv.agent_name, 'http', s.status, sha256(inv.agent_name::bytea),
			now() + interval '7 days', CASE WHEN s.status = 'APPROVED' THEN now() END,
			CASE WHEN s.status = 'APPROVED' THEN ?::uuid END
		FROM inv CROSS JOIN LATERAL (SELECT CASE WHEN right(inv.agent_name, 1) IN ('0', '2', '4', '6', '8')
			THEN 'APPROVED' ELSE 'PENDING' END AS status) AS s`, e.org.ID, e.org.ID, e.org.ID, e.sa.ID)
	if err != nil {
		t.Fatal(err)
	}
	fullInv, fullJR := page("/agents/invites"), page("/agents/join-requests")
	t.Logf("invites page: %d queries empty, %d with 300; join requests page: %d empty, %d with 300 (one approver)",
		emptyInv, fullInv, emptyJR, fullJR)
	if fullInv != emptyInv || fullInv < 1 {
		t.Fatalf("invites page: %d queries with none, %d with 300", emptyInv, fullInv)
	}
	if emptyJR < 1 || fullJR > emptyJR+1 {
		t.Fatalf("join requests page: %d queries with none, %d with 300 rows and one approver", emptyJR, fullJR)
	}
}
