package handlers

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/agentroster/agentroster/models"
)

// TestCrossOrg walks every runtime and management route with org B's key or
// token against org A's agent, team, key, columns and org: always 403 or 404,
// never org A's data, and nothing in org A changes.
func TestCrossOrg(t *testing.T) {
	e := newEnv(t)
	orgA := e.org
	const agentA, titleA = "alpha-agent", "Alpha Secret Title"
	teamA, _ := models.DefaultTeam(t.Context(), e.db, orgA.ID)
	if _, err := models.RegisterAgent(t.Context(), e.db, orgA.ID, teamA.ID, models.RegisterInput{ID: agentA, Title: titleA, MachineIP: "10.9.9.9"}, e.actor); err != nil {
		t.Fatal(err)
	}
	if _, err := models.TransitionAgent(t.Context(), e.db, orgA.ID, agentA, "approve", e.actor); err != nil {
		t.Fatal(err)
	}
	keyA, rawA := e.teamKey(orgA.ID)

	orgB := e.otherOrg("Bravo", "bravo@example.com")
	e.agentIn(orgB.ID, "bravo-agent", models.StatusApproved)
	_, keyB := e.teamKey(orgB.ID)
	_, boundB := e.boundKey(orgB.ID, "bravo-agent")
	tokenB := e.token("bravo@example.com")

	A, tA, kA := orgA.ID.String(), teamA.ID.String(), keyA.ID.String()
	type call struct {
		method, path string
		body         any
	}
	runtime := []call{
		{"POST", "/api/v1/teams/" + tA + "/agents/register", map[string]string{"id": "intruder"}},
		{"GET", "/api/v1/agents/" + agentA + "/status", nil},
		{"GET", "/api/v1/agents/" + agentA + "/permissions", nil},
		{"POST", "/api/v1/agents/" + agentA + "/online", nil},
		{"POST", "/api/v1/agents/" + agentA + "/offline", nil},
		{"GET", "/api/v1/organizations/" + A + "/agents/mcp/list", nil},
		{"GET", "/api/v1/teams/" + tA + "/onboarding", nil},
	}
	management := []call{
		{"PATCH", "/api/v1/agents/" + agentA + "/approve", "{}"},
		{"PATCH", "/api/v1/agents/" + agentA + "/stop", "{}"},
		{"PATCH", "/api/v1/agents/" + agentA + "/resume", "{}"},
		{"PATCH", "/api/v1/agents/" + agentA + "/stop?orgId=" + A, "{}"},
		{"PATCH", "/api/v1/agents/" + agentA + "/pickup", map[string]bool{"enabled": false}},
		{"PUT", "/api/v1/agents/" + agentA + "/permissions", map[string]any{"columns": []any{}, "transitions": []string{}}},
		{"DELETE", "/api/v1/agents/" + agentA, nil},
		{"DELETE", "/api/v1/agents/" + agentA + "?orgId=" + A, nil},
		{"GET", "/api/v1/organizations/" + A + "/agents", nil},
		{"GET", "/api/v1/settings/api-keys?orgId=" + A, nil},
		{"POST", "/api/v1/settings/api-keys", map[string]string{"name": "x", "orgId": A}},
		{"POST", "/api/v1/settings/api-keys", map[string]string{"name": "x", "teamId": tA}},
		{"PATCH", "/api/v1/settings/api-keys/" + kA, map[string]bool{"isActive": false}},
		{"DELETE", "/api/v1/settings/api-keys/" + kA, nil},
		{"GET", "/api/v1/organizations/" + A + "/columns", nil},
		{"POST", "/api/v1/organizations/" + A + "/columns", map[string]string{"name": "Hacked"}},
		{"PATCH", "/api/v1/organizations/" + A + "/columns/col_backlog", map[string]string{"name": "Hacked"}},
		{"DELETE", "/api/v1/organizations/" + A + "/columns/col_backlog", nil},
		{"GET", "/api/v1/teams/" + tA + "/onboarding", nil},
		{"GET", "/api/v1/organizations/" + A + "/teams", nil},
	}
	check := func(who string, c call, res *result) {
		t.Helper()
		if res.Status != http.StatusForbidden && res.Status != http.StatusNotFound && res.Status != http.StatusBadRequest {
			t.Errorf("%s %s %s: %d, want 403 or 404; body %s", who, c.method, c.path, res.Status, res.Body)
		}
		if res.Status == http.StatusBadRequest && c.method != "POST" {
			t.Errorf("%s %s %s: 400", who, c.method, c.path)
		}
		body := string(res.Body)
		for _, secret := range []string{agentA, titleA, "10.9.9.9", kA, keyA.Prefix} {
			if strings.Contains(body, secret) {
				t.Errorf("%s %s %s: answer shows org A's %q: %s", who, c.method, c.path, secret, body)
			}
		}
	}
	for name, key := range map[string]string{"team key": keyB, "bound key": boundB} {
		for _, c := range runtime {
			check(name, c, e.call(c.method, c.path, key, c.body))
		}
	}
	for _, c := range management {
		check("token", c, e.call(c.method, c.path, tokenB, c.body))
	}
	// A key cannot use management routes, nor a token the runtime ones.
	e.call(http.MethodPatch, "/api/v1/agents/"+agentA+"/stop", rawA, "{}").wantError(http.StatusUnauthorized, "invalid_credential")
	e.call(http.MethodGet, "/api/v1/agents/"+agentA+"/status", tokenB, nil).wantError(http.StatusUnauthorized, "unauthorized")

	// The pages, signed in as org B's admin.
	b := e.signIn("bravo@example.com")
	for _, path := range []string{"/agents/" + agentA, "/agents?orgId=" + A, "/settings/api-keys?orgId=" + A, "/settings/columns?orgId=" + A} {
		status, body := e.get(b, path)
		if status != http.StatusNotFound || strings.Contains(body, titleA) {
			t.Errorf("page %s: %d", path, status)
		}
	}
	if status, body := e.get(b, "/agents"); status != http.StatusOK || strings.Contains(body, agentA) || !parseHTML(t, body).has(`[data-testid="agent-row"][data-agent-id="bravo-agent"]`) {
		t.Errorf("org B's roster: %d, shows A: %v", status, strings.Contains(body, agentA))
	}
	for _, path := range []string{"/agents/" + agentA + "/stop", "/agents/" + agentA + "/delete", "/agents/" + agentA + "/pickup",
		"/agents/" + agentA + "/permissions", "/agents/" + agentA + "/stop?orgId=" + A, "/settings/api-keys/" + kA + "/revoke", "/settings/columns/col_backlog/delete?orgId=" + A,
		"/settings/api-keys?orgId=" + A} {
		status, _, body := e.htmx(b, path, url.Values{"enabled": {"false"}})
		if (status != http.StatusNotFound && status != http.StatusBadRequest) || strings.Contains(body, titleA) {
			t.Errorf("post %s: %d", path, status)
		}
	}

	// Org A is untouched.
	a := e.dbAgent(orgA.ID, agentA)
	if a == nil || a.Status != models.StatusApproved || !a.PickupEnabled {
		t.Fatalf("org A's agent changed: %+v", a)
	}
	if k, _ := models.GetAPIKey(t.Context(), e.db, orgA.ID, keyA.ID); !k.IsActive || k.RevokedAt != nil {
		t.Fatalf("org A's key changed: %+v", k)
	}
	cols, _ := models.ListColumns(t.Context(), e.db, orgA.ID)
	if len(cols) != 4 || cols[0].Name != "Backlog" {
		t.Fatalf("org A's columns changed: %+v", cols)
	}
	if a := e.dbAgent(orgA.ID, "intruder"); a != nil {
		t.Fatal("org B registered an agent in org A")
	}
	n, _ := e.db.NewSelect().Table("api_keys").Where("org_id = ?", orgA.ID).Count(t.Context())
	if n != 1 {
		t.Fatalf("org A has %d keys", n)
	}
}
