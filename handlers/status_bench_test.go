package handlers

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkStatusPoll serves a runtime's status poll with its key and agent
// cached, through the whole middleware chain but no network: the server's
// own CPU and allocations per poll (the load command's status path).
func BenchmarkStatusPoll(b *testing.B) {
	e := newEnv(b)
	<-e.h.broker.Ready() // the cache stores only while the listener is up
	seedAgents(b, e.db, e.org.ID, 3)
	_, key := e.boundKey(e.org.ID, "agent-2") // approved
	routes := e.h.Routes()
	poll := func() {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/agents/agent-2/status", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		req.RemoteAddr = "192.0.2.1:1234"
		w := httptest.NewRecorder()
		routes.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status: %d %s", w.Code, w.Body)
		}
	}
	poll() // fills the cache
	b.ReportAllocs()
	for b.Loop() {
		poll()
	}
}
