package handlers

import (
	"net/http"
	"testing"

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
