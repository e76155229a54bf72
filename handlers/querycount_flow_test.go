package handlers

import (
	"context"
	"net/http"
	"testing"

	"github.com/gin-gonic/gin"
)

// withGinContext gives each request's context a *gin.Context that carries
// the request, which is where queryCounter looks for the path a query ran
// for: handlers give the database the request's own context, not gin's, so
// without it every count would be zero. newEnvOn wraps every test server.
func withGinContext(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), gin.ContextKey, &gin.Context{Request: r})))
	})
}

// TestQueriesPerJoinFlow counts the queries of one whole join flow through
// the JSON API, as the load command runs it: an operator (bearer token)
// creates an invite, a runtime joins with its token, the operator approves the
// join request, the runtime claims its key. Each request has an upper bound.
//
// The counter sees what goes through bun, BEGIN and COMMIT of its
// transactions included (bun reports them to query hooks too): every count is
// a round trip to the database. NOTIFYs of page-refresh events are sent after
// the request, batched with other requests', and are not counted.
//
// Before the counts were cut: create invite 10, join 7, approve 9, claim 7.
func TestQueriesPerJoinFlow(t *testing.T) {
	e := newEnv(t)
	qc := &queryCounter{byPath: map[string]int{}}
	e.db.AddQueryHook(qc)
	admin := e.token("root@example.com")
	org := e.org.ID.String()

	const createPath = "/api/v1/internal/invites"
	var inv struct{ Token string }
	create := qc.count(createPath, func() {
		e.call(http.MethodPost, createPath, admin, map[string]any{
			"orgId": org, "agentName": "flow-1", "adapterType": "http", "maxUses": 1, "ttlSeconds": 3600,
		}).want(http.StatusCreated).decode(&inv)
	})

	joinPath := "/api/v1/invites/" + inv.Token + "/join"
	var jr struct{ JoinRequestID, ClaimSecret string }
	join := qc.count(joinPath, func() {
		e.call(http.MethodPost, joinPath, "", map[string]any{"adapterType": "http"}).want(http.StatusCreated).decode(&jr)
	})

	approvePath := "/api/v1/internal/join-requests/" + jr.JoinRequestID + "/approve"
	approve := qc.count(approvePath, func() {
		e.call(http.MethodPost, approvePath+"?orgId="+org, admin, struct{}{}).want(http.StatusOK)
	})

	claimPath := "/api/v1/join-requests/" + jr.JoinRequestID + "/claim"
	var key struct{ APIKey, AgentID string }
	claim := qc.count(claimPath, func() {
		e.call(http.MethodPost, claimPath, "", map[string]string{"claimSecret": jr.ClaimSecret}).want(http.StatusOK).decode(&key)
	})
	if key.AgentID != "flow-1" || key.APIKey == "" {
		t.Fatalf("claim answered agent %q key %q", key.AgentID, key.APIKey)
	}

	t.Logf("join flow queries: create invite %d, join %d, approve %d, claim %d (total %d)",
		create, join, approve, claim, create+join+approve+claim)
	for _, c := range []struct {
		name     string
		got, max int
	}{
		// user, org; BEGIN, name lock, team and name check, invite with its audit event, COMMIT
		{"create invite", create, 7},
		// BEGIN, use of the invite, join request with both audit events and its notifications, COMMIT
		{"join", join, 4},
		// user, request's org and caller's role; BEGIN, decision, agent, both audit events, COMMIT
		{"approve", approve, 7},
		// request (secret check); BEGIN, claim with the agent's team, key with its audit event, COMMIT
		{"claim", claim, 5},
	} {
		// At least one: a count of 0 means the hook no longer sees the
		// request's queries, not that it made none.
		if c.got < 1 || c.got > c.max {
			t.Errorf("%s: %d queries, want 1 to %d", c.name, c.got, c.max)
		}
	}
}
