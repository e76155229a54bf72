package handlers

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/agentroster/agentroster/models"
)

// TestOnboardingDocument: a team without a document answers the default one,
// built from PUBLIC_URL, the org and the team, under both JSON names; the
// Agelo web app's PATCH …/onboarding saves a document, and an empty one
// brings the default back.
func TestOnboardingDocument(t *testing.T) {
	e := newEnv(t)
	sa := e.token("root@example.com")
	org := e.org.ID.String()
	var created map[string]any
	e.call(http.MethodPost, "/api/v1/organizations/"+org+"/teams", sa, map[string]any{"name": "Night shift"}).
		want(http.StatusCreated).decode(&created)
	id, _ := created["id"].(string)
	doc, _ := created["onboarding"].(string)
	for _, want := range []string{"# Joining " + e.org.Title + ", team Night shift", e.srv.URL + "/api/v1/teams/" + id + "/agents/register",
		e.srv.URL + "/api/v1/agents/{agentId}/status", e.srv.URL + "/mcp", `"Authorization": "ApiKey <your API key>"`, "onboarding://team/" + id} {
		if !strings.Contains(doc, want) {
			t.Errorf("default document lacks %q:\n%s", want, doc)
		}
	}
	if created["onboardingDoc"] != doc {
		t.Fatalf("onboardingDoc %q differs from onboarding", created["onboardingDoc"])
	}

	path := "/api/v1/organizations/" + org + "/teams/" + id + "/onboarding"
	var saved map[string]any
	e.call(http.MethodPatch, path, sa, map[string]any{"content": "# Ours\n\nAsk in #ops."}).want(http.StatusOK).decode(&saved)
	if saved["onboarding"] != "# Ours\n\nAsk in #ops." || saved["onboardingDoc"] != saved["onboarding"] || saved["name"] != "Night shift" {
		t.Fatalf("saved team %v", saved)
	}
	team, err := models.GetTeam(t.Context(), e.db, e.org.ID, mustUUID(t, id))
	if err != nil || team.Onboarding != "# Ours\n\nAsk in #ops." {
		t.Fatalf("stored %q %v", team.Onboarding, err)
	}
	_, key := e.teamKey(e.org.ID)
	var got onboardingJSON
	e.call(http.MethodGet, "/api/v1/teams/"+id+"/onboarding", key, nil).want(http.StatusOK).decode(&got)
	if got.Content != "# Ours\n\nAsk in #ops." || got.TeamName != "Night shift" {
		t.Fatalf("runtime reads %+v", got)
	}
	var teams []map[string]any
	e.call(http.MethodGet, "/api/v1/organizations/"+org+"/teams", sa, nil).want(http.StatusOK).decode(&teams)
	for _, tm := range teams {
		if tm["onboardingDoc"] != tm["onboarding"] || tm["onboarding"] == "" {
			t.Errorf("team list entry %v", tm)
		}
	}

	e.call(http.MethodPatch, path, sa, map[string]any{}).wantError(http.StatusBadRequest, "invalid_input")
	e.call(http.MethodPatch, path, sa, map[string]any{"content": strings.Repeat("x", models.MaxOnboardingBytes+1)}).wantError(http.StatusBadRequest, "invalid_input")
	e.user("viewer@example.com", models.RoleViewer)
	e.call(http.MethodPatch, path, e.token("viewer@example.com"), map[string]any{"content": "# Viewer"}).wantError(http.StatusForbidden, "forbidden")
	other := e.otherOrg("Zeta Other", "other-admin@example.com")
	e.call(http.MethodPatch, "/api/v1/organizations/"+other.ID.String()+"/teams/"+id+"/onboarding", e.token("other-admin@example.com"),
		map[string]any{"content": "# Theirs"}).wantError(http.StatusNotFound, "not_found")
	e.call(http.MethodPatch, path, sa, map[string]any{"content": ""}).want(http.StatusOK).decode(&saved)
	if !strings.Contains(saved["onboarding"].(string), e.srv.URL+"/mcp") {
		t.Fatalf("an empty document did not bring the default back: %v", saved["onboarding"])
	}
}

// TestCreateOrgDuplicateTitle: POST /organizations with a title the platform
// already has (trimmed, any case) is 409 org_exists and creates nothing.
func TestCreateOrgDuplicateTitle(t *testing.T) {
	e := newEnv(t)
	sa := e.token("root@example.com")
	before := e.count("organizations", "true")
	res := e.call(http.MethodPost, "/api/v1/organizations", sa, map[string]any{"title": "  " + strings.ToUpper(e.org.Title) + " "})
	res.wantError(http.StatusConflict, "org_exists")
	e.call(http.MethodPost, "/api/v1/organizations", sa, map[string]any{"title": "Acme Robots"}).want(http.StatusCreated)
	e.call(http.MethodPost, "/api/v1/organizations", sa, map[string]any{"title": "acme robots"}).wantError(http.StatusConflict, "org_exists")
	if n := e.count("organizations", "true"); n != before+1 {
		t.Fatalf("%d organizations, want %d", n, before+1)
	}
}

// TestRenderMarkdownIsInert: the preview keeps the document's formatting and
// drops whatever could run.
func TestRenderMarkdownIsInert(t *testing.T) {
	html := renderMarkdown("# Title\n\n**bold** `code`\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n[x](javascript:alert(3)) [ok](https://example.com)\n")
	doc := parseHTML(t, html)
	if doc.text("h1") != "Title" || doc.text("strong") != "bold" || doc.text("code") != "code" || doc.attr(`a:contains("ok")`, "href") != "https://example.com" {
		t.Errorf("rendered HTML lacks the title, bold, code or link: %s", html)
	}
	for _, bad := range []string{"<script", "onerror", "javascript:", "<img"} {
		if strings.Contains(strings.ToLower(html), bad) {
			t.Errorf("rendered HTML keeps %q: %s", bad, html)
		}
	}
}

func mustUUID(t *testing.T, s string) uuid.UUID {
	t.Helper()
	id, err := uuid.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
