package handlers

import (
	"context"
	"net/http"
	"testing"

	"github.com/gin-gonic/gin"
)

// withGinContext gives each request's context a *gin.Context carrying the
// request: queryCounter finds the path a query ran for there, and handlers
// give the database the request's context, not gin's.
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
// The hook counts what goes through bun; BEGIN and COMMIT go through
// database/sql and are not counted, so a request that needs a transaction
// costs two round trips more than its count says.
func TestQueriesPerJoinFlow(t *testing.T) {
	e := newEnv(t)
	e.srv.Config.Handler = withGinContext(e.srv.Config.Handler)
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

	t.Logf("join flow queries: create invite %d, join %d, approve %d, claim %d (total %d; plus BEGIN/COMMIT)",
		create, join, approve, claim, create+join+approve+claim)
	for _, c := range []struct {
		name     string
		got, max int
	}{
		{"create invite", create, 99},
		{"join", join, 99},
		{"approve", approve, 99},
		{"claim", claim, 99},
	} {
		if c.got > c.max {
			t.Errorf("%s: %d queries, want at most %d", c.name, c.got, c.max)
		}
	}
}
