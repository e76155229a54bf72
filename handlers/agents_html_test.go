package handlers

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/agentroster/agentroster/models"
)

func TestRosterRowSwap(t *testing.T) {
	e := newEnv(t)
	e.agentIn(e.org.ID, "swap-me", models.StatusApproved)
	admin := e.signIn("root@example.com")

	status, body := e.get(admin, "/agents")
	if status != http.StatusOK || !parseHTML(t, body).has(`#agent-row-swap-me [data-testid="action-stop"]`) {
		t.Fatalf("roster: %d", status)
	}

	status, hdr, row := e.htmx(admin, "/agents/swap-me/stop", nil)
	if status != http.StatusOK || !strings.HasPrefix(strings.TrimSpace(row), "<tr") || strings.Contains(row, "<html") {
		t.Fatalf("htmx stop: %d %q", status, row)
	}
	doc := parseHTML(t, row)
	if !doc.has(`tr#agent-row-swap-me [data-testid="status-pill"][data-status="stopped"]`) {
		t.Fatalf("row after stop has no stopped pill: %s", row)
	}
	if !doc.has(`[data-testid="action-resume"]`) || doc.has(`[data-testid="action-stop"]`) || doc.has(`[data-testid="action-approve"]`) {
		t.Fatalf("row after stop offers the wrong buttons: %s", row)
	}
	if buttons := doc.Find(`form > button[hx-post]`); buttons.Length() != 2 || buttons.Not(`[hx-target="closest tr"][hx-swap="outerHTML"]`).Length() != 0 || !doc.has(`button[hx-confirm]`) {
		t.Fatalf("row buttons do not swap their row: %s", row)
	}
	if !doc.has(`[data-testid="presence-dot"][data-online="false"]`) || hdr.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("presence / content type: %s %s", hdr.Get("Content-Type"), row)
	}
	if a := e.dbAgent(e.org.ID, "swap-me"); a.Status != models.StatusStopped {
		t.Fatalf("db status %s", a.Status)
	}

	// Stopping again: the row comes back as it is, with an error toast.
	status, hdr, row = e.htmx(admin, "/agents/swap-me/stop", nil)
	if status != http.StatusOK || !strings.Contains(hdr.Get("HX-Trigger"), "cannot stop") || !parseHTML(t, row).has(`tr[data-status="stopped"]`) {
		t.Fatalf("second stop: %d %s %s", status, hdr.Get("HX-Trigger"), row)
	}

	// Resume, then a plain form post (no htmx) is sent back to the list.
	if status, _, row = e.htmx(admin, "/agents/swap-me/resume", nil); !parseHTML(t, row).has(`tr[data-status="approved"] [data-testid="action-stop"]`) {
		t.Fatalf("resume: %d %s", status, row)
	}
	if resp := e.form(admin, "/agents/swap-me/stop", nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/agents" {
		t.Fatalf("plain stop: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp := e.form(admin, "/agents/swap-me/resume", url.Values{"from": {"detail"}}); resp.Header.Get("Location") != "/agents/swap-me" {
		t.Fatalf("plain resume from the detail page: %s", resp.Header.Get("Location"))
	}

	// Pending agents offer Approve; delete answers an empty 200 so the row disappears.
	e.agentIn(e.org.ID, "newbie", models.StatusPending)
	_, body = e.get(admin, "/agents")
	newbie := parseHTML(t, body).Find("#agent-row-newbie")
	var buttons []string
	newbie.Find(`[data-testid^="action-"]`).Each(func(_ int, b *goquery.Selection) { buttons = append(buttons, b.AttrOr("data-testid", "")) })
	if strings.Join(buttons, " ") != "action-approve action-delete" {
		t.Fatalf("pending row buttons: %v", buttons)
	}
	if status, _, row = e.htmx(admin, "/agents/newbie/delete", nil); status != http.StatusOK || row != "" {
		t.Fatalf("htmx delete: %d %q", status, row)
	}
	if e.dbAgent(e.org.ID, "newbie") != nil {
		t.Fatal("agent not deleted")
	}
}

func TestRosterViewer(t *testing.T) {
	e := newEnv(t)
	e.agentIn(e.org.ID, "look-only", models.StatusApproved)
	e.agentIn(e.org.ID, "waiting", models.StatusPending)
	e.user("viewer@example.com", models.RoleViewer)
	v := e.signIn("viewer@example.com")

	status, body := e.get(v, "/agents")
	doc := parseHTML(t, body)
	if status != http.StatusOK || doc.count(`[data-testid="agent-row"]`) != 2 {
		t.Fatalf("viewer roster: %d", status)
	}
	for _, sel := range []string{`[data-testid^="action-"]`, `[data-testid="row-actions"]`, "[hx-post]"} {
		if doc.has(sel) {
			t.Fatalf("viewer sees %s", sel)
		}
	}
	status, body = e.get(v, "/agents/look-only")
	if doc := parseHTML(t, body); status != http.StatusOK || doc.has(`[data-testid^="detail-"]`) || doc.has(`[data-testid="pickup-toggle"]`) || doc.has(`[data-testid="permissions-save"]`) {
		t.Fatalf("viewer detail page: %d", status)
	}
	if status, _, _ := e.htmx(v, "/agents/look-only/stop", nil); status != http.StatusForbidden {
		t.Fatalf("viewer stop: %d", status)
	}
	if resp := e.form(v, "/agents/waiting/approve", nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("viewer approve: %d", resp.StatusCode)
	}
	tok := e.token("viewer@example.com")
	e.call(http.MethodPatch, "/api/v1/agents/look-only/stop", tok, "{}").wantError(http.StatusForbidden, "forbidden")
	// Viewers read in JSON what the roster shows them.
	e.call(http.MethodGet, "/api/v1/organizations/"+e.org.ID.String()+"/agents", tok, nil).want(http.StatusOK)
	if a := e.dbAgent(e.org.ID, "look-only"); a.Status != models.StatusApproved {
		t.Fatal("viewer changed an agent")
	}
	if a := e.dbAgent(e.org.ID, "waiting"); a.Status != models.StatusPending {
		t.Fatal("viewer approved an agent")
	}
}

func TestRosterFiltersAndPages(t *testing.T) {
	e := newEnv(t)
	seedAgents(t, e.db, e.org.ID, 120)
	// A title with LIKE wildcards, and one agent in another team.
	team, _ := models.CreateTeam(t.Context(), e.db, e.org.ID, "ops", e.actor)
	if _, err := models.RegisterAgent(t.Context(), e.db, e.org.ID, team.ID, models.RegisterInput{ID: "odd_one", Title: "100% done_ok <b>bold</b>"}, e.actor); err != nil {
		t.Fatal(err)
	}
	admin := e.signIn("root@example.com")
	rows := func(body string) []string {
		return parseHTML(t, body).Find(`[data-testid="agent-row"]`).Map(func(_ int, r *goquery.Selection) string { return r.AttrOr("data-agent-id", "") })
	}
	next := func(body string) string { return parseHTML(t, body).attr(`a[data-testid="next-page"]`, "href") }

	seen := map[string]bool{}
	path, pages := "/agents", 0
	for path != "" {
		status, body := e.get(admin, path)
		if status != http.StatusOK {
			t.Fatalf("%s: %d", path, status)
		}
		ids := rows(body)
		if len(ids) > rosterPageSize || (next(body) != "" && len(ids) != rosterPageSize) {
			t.Fatalf("page %d has %d rows", pages, len(ids))
		}
		for _, id := range ids {
			if seen[id] {
				t.Fatalf("%s shown twice", id)
			}
			seen[id] = true
		}
		path = next(body)
		pages++
	}
	if len(seen) != 121 || pages != 3 {
		t.Fatalf("pages: %d agents over %d pages", len(seen), pages)
	}

	// The newest agent comes first; escaping holds.
	_, body := e.get(admin, "/agents")
	if ids := rows(body); ids[0] != "odd_one" || ids[1] != "agent-1" {
		t.Fatalf("order: %v", ids[:2])
	}
	if doc := parseHTML(t, body); doc.has("#agents-table b") || !strings.Contains(doc.text("#agent-row-odd_one"), "100% done_ok <b>bold</b>") {
		t.Fatal("title not escaped")
	}

	for q, want := range map[string]int{
		"/agents?q=agent-11":               11, // agent-11, agent-110..119
		"/agents?q=AGENT+11":               11, // titles, case-insensitive
		"/agents?q=100%25":                 1,  // a literal %
		"/agents?q=_":                      1,  // a literal _ in one title; not "any character"
		"/agents?status=pending":           41, // 40 seeded + odd_one
		"/agents?presence=online":          10, // approved, flag on and seen just now: g ≡ 4 (mod 12)
		"/agents?team=" + team.ID.String(): 1,
	} {
		status, body := e.get(admin, q)
		if status != http.StatusOK {
			t.Fatalf("%s: %d", q, status)
		}
		if got := len(rows(body)); got != want {
			t.Errorf("%s: %d rows, want %d", q, got, want)
		}
	}
	// Filters combine: stopped agents among the agent-1… ids (one page).
	_, body = e.get(admin, "/agents?status=stopped&q=agent-1")
	if got, want := len(rows(body)), countStopped(t, e, "agent-1"); got != want || want == 0 || parseHTML(t, body).has(`[data-testid="agent-row"]:not([data-status="stopped"])`) {
		t.Fatalf("status and search: %d rows, want %d", got, want)
	}
	if status, _ := e.get(admin, "/agents?status=bogus"); status != http.StatusBadRequest {
		t.Fatalf("bad status filter: %d", status)
	}
	if status, _ := e.get(admin, "/agents?after=garbage"); status != http.StatusBadRequest {
		t.Fatalf("bad cursor: %d", status)
	}
}

func countStopped(t *testing.T, e *env, prefix string) int {
	n, err := e.db.NewSelect().Table("agents").Where("org_id = ? AND status = 'stopped' AND (id LIKE ? OR title ILIKE ?)", e.org.ID, prefix+"%", "%"+prefix+"%").Count(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}

func TestAgentDetailPage(t *testing.T) {
	e := newEnv(t)
	_, key := e.teamKey(e.org.ID)
	team, _ := models.DefaultTeam(t.Context(), e.db, e.org.ID)
	e.call(http.MethodPost, "/api/v1/teams/"+team.ID.String()+"/agents/register", key, seedRegisterBody).want(http.StatusOK)
	e.call(http.MethodPost, "/api/v1/teams/"+team.ID.String()+"/agents/register", key, map[string]string{"id": "bare", "title": "<script>x</script>"}).want(http.StatusOK)
	admin := e.signIn("root@example.com")

	status, body := e.get(admin, "/agents/claude-1")
	if status != http.StatusOK {
		t.Fatalf("detail: %d", status)
	}
	doc := parseHTML(t, body)
	for field, want := range map[string]string{"RAM": "16 GiB", "Storage": "512 GiB SSD", "Operating system": "Linux 6.5.0", "Machine IP": "10.0.0.42",
		"Machine name": "runner-a", "LLM version": "claude-opus-4-7", "Title": "Claude (build agent)"} {
		if got := doc.text(`[data-testid="field-` + field + `"]`); got != want {
			t.Errorf("detail page: %s is %q, want %q", field, got, want)
		}
	}
	if !strings.Contains(doc.text(`[data-testid="agent-audit"]`), "agent.registered") || !doc.has(`[data-testid="permissions-form"]`) {
		t.Error("detail page lacks the audit row or the permissions form")
	}
	if doc.hasText("not reported") {
		t.Error("reported telemetry shown as not reported")
	}
	status, body = e.get(admin, "/agents/bare")
	doc = parseHTML(t, body)
	if n := doc.withText(`[data-testid="agent-fields"] dd`, "not reported"); status != http.StatusOK || n != 3 { // OS, RAM, storage
		t.Fatalf("bare detail: %d, %d × not reported", status, n)
	}
	if doc.has("script:not([src])") || doc.text(`[data-testid="field-Title"]`) != "<script>x</script>" {
		t.Fatal("title not escaped")
	}
	if status, _ := e.get(admin, "/agents/nobody"); status != http.StatusNotFound {
		t.Fatalf("unknown agent: %d", status)
	}
	if status, _ := e.get(admin, "/agents/BAD%20ID"); status != http.StatusNotFound {
		t.Fatalf("impossible id: %d", status)
	}
}

func TestDetailPickupAndKeys(t *testing.T) {
	e := newEnv(t)
	e.agentIn(e.org.ID, "picker", models.StatusApproved)
	k, raw := e.boundKey(e.org.ID, "picker")
	admin := e.signIn("root@example.com")

	status, body := e.get(admin, "/agents/picker")
	if doc := parseHTML(t, body); status != http.StatusOK || !strings.HasPrefix(doc.text(`[data-testid="key-prefix"]`), k.Prefix) || !doc.has(`[data-testid="key-row"] [data-testid="key-revoke"]`) {
		t.Fatalf("detail keys: %d", status)
	}
	// Pickup toggle through htmx answers the section.
	status, _, sec := e.htmx(admin, "/agents/picker/pickup", url.Values{"enabled": {"false"}})
	if status != http.StatusOK || !parseHTML(t, sec).has(`#pickup-section[data-enabled="false"]`) || strings.Contains(sec, "<html") {
		t.Fatalf("pickup off: %d %s", status, sec)
	}
	if a := e.dbAgent(e.org.ID, "picker"); a.PickupEnabled {
		t.Fatal("pickup still on")
	}
	if resp := e.form(admin, "/agents/picker/pickup", url.Values{"enabled": {"true"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("plain pickup on: %d", resp.StatusCode)
	}
	if a := e.dbAgent(e.org.ID, "picker"); !a.PickupEnabled {
		t.Fatal("pickup still off")
	}
	// JSON toggle; a pending agent cannot get pickup.
	tok := e.token("root@example.com")
	if got := e.call(http.MethodPatch, "/api/v1/agents/picker/pickup", tok, map[string]bool{"enabled": false}).want(http.StatusOK).json(); got["agentPickupEnabled"] != false {
		t.Fatalf("pickup answer: %v", got)
	}
	e.agentIn(e.org.ID, "pending-one", models.StatusPending)
	e.call(http.MethodPatch, "/api/v1/agents/pending-one/pickup", tok, map[string]bool{"enabled": true}).wantError(http.StatusConflict, "invalid_transition")
	e.call(http.MethodPatch, "/api/v1/agents/picker/pickup", tok, "{}").wantError(http.StatusBadRequest, "invalid_input")
	n, _ := e.db.NewSelect().Table("audit_events").Where("action = 'agent.pickup_changed'").Count(t.Context())
	if n != 3 {
		t.Fatalf("pickup events: %d", n)
	}

	// Revoke from the detail page: the row comes back revoked without the agent column.
	status, _, row := e.htmx(admin, "/settings/api-keys/"+k.ID.String()+"/revoke", url.Values{"from": {"agent:picker"}})
	if doc := parseHTML(t, row); status != http.StatusOK || !doc.has(`tr[data-testid="key-row"][data-state="revoked"]`) || doc.has(`td[data-label="Agent"]`) || doc.has(`[data-testid="key-revoke"]`) {
		t.Fatalf("revoke row: %d %s", status, row)
	}
	e.call(http.MethodGet, "/api/v1/agents/picker/status", raw, nil).wantError(http.StatusUnauthorized, "invalid_credential")
}

func TestAPIKeysPage(t *testing.T) {
	e := newEnv(t)
	admin := e.signIn("root@example.com")
	team, _ := models.DefaultTeam(t.Context(), e.db, e.org.ID)

	status, body := e.get(admin, "/settings/api-keys")
	if doc := parseHTML(t, body); status != http.StatusOK || !doc.has(`[data-testid="new-key-form"]`) || doc.text(`#key-expiry option[value="365"]`) != "365 days" {
		t.Fatalf("keys page: %d", status)
	}
	status, _, body = e.post(admin, "/settings/api-keys", url.Values{"name": {"ci-runner"}, "teamId": {team.ID.String()}, "expiry": {"30"}})
	raw := regexp.MustCompile(`value="(ag_ak_[0-9A-Za-z]{40})"`).FindStringSubmatch(body)
	if doc := parseHTML(t, body); status != http.StatusOK || raw == nil || !strings.Contains(doc.text(`[data-testid="new-key"]`), "only time") || !doc.has(`[data-testid="copy-button"][data-copy-target="#new-key-value"]`) {
		t.Fatalf("create: %d, key shown: %v", status, raw != nil)
	}
	keys, _ := models.ListAPIKeys(t.Context(), e.db, models.KeyFilter{Org: e.org.ID})
	if len(keys) != 1 || keys[0].Name != "ci-runner" || keys[0].AgentID != nil || keys[0].ExpiresAt == nil || string(keys[0].KeyHash) != string(models.Hash(raw[1])) {
		t.Fatalf("stored key: %+v", keys)
	}
	if d := keys[0].ExpiresAt.Sub(keys[0].CreatedAt).Hours() / 24; d < 29.9 || d > 30.1 {
		t.Fatalf("expiry %v days", d)
	}
	// The key works, and a reload does not show it again.
	e.call(http.MethodPost, "/api/v1/teams/"+team.ID.String()+"/agents/register", raw[1], map[string]string{"id": "via-page"}).want(http.StatusOK)
	status, body = e.get(admin, "/settings/api-keys")
	if doc := parseHTML(t, body); status != http.StatusOK || strings.Contains(body, raw[1]) || doc.has(`[data-testid="new-key"]`) || !strings.HasPrefix(doc.text(`[data-testid="key-prefix"]`), keys[0].Prefix) {
		t.Fatalf("reload shows the key again (or not the prefix): %d", status)
	}

	// htmx create answers the section with the key; "never" leaves no expiry.
	status, _, sec := e.htmx(admin, "/settings/api-keys", url.Values{"name": {"forever"}, "teamId": {team.ID.String()}, "expiry": {"never"}})
	if status != http.StatusOK || !strings.HasPrefix(strings.TrimSpace(sec), `<div id="api-keys-section"`) || !parseHTML(t, sec).has(`#api-keys-section [data-testid="new-key-value"]`) {
		t.Fatalf("htmx create: %d %s", status, sec)
	}
	// Bad input: 400 with the field named, no key.
	status, _, body = e.post(admin, "/settings/api-keys", url.Values{"name": {""}, "expiry": {"7"}})
	if doc := parseHTML(t, body); status != http.StatusBadRequest || doc.has(`[data-testid="new-key"]`) || !doc.has(`[data-testid="error-expiry"]`) {
		t.Fatalf("bad create: %d", status)
	}

	// Disable, enable and revoke from the list.
	id := keys[0].ID.String()
	if status, _, row := e.htmx(admin, "/settings/api-keys/"+id+"/disable", nil); status != http.StatusOK || !parseHTML(t, row).has(`tr[data-state="disabled"] [data-testid="key-enable"]`) {
		t.Fatalf("disable: %d %s", status, row)
	}
	e.call(http.MethodGet, "/api/v1/agents/via-page/status", raw[1], nil).wantError(http.StatusUnauthorized, "invalid_credential")
	if status, _, row := e.htmx(admin, "/settings/api-keys/"+id+"/enable", nil); status != http.StatusOK || !parseHTML(t, row).has(`tr[data-state="active"]`) {
		t.Fatalf("enable: %d %s", status, row)
	}
	if resp := e.form(admin, "/settings/api-keys/"+id+"/revoke", nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/settings/api-keys" {
		t.Fatalf("plain revoke: %d", resp.StatusCode)
	}
	_, body = e.get(admin, "/settings/api-keys")
	if !parseHTML(t, body).has(`[data-testid="key-row"][data-state="revoked"]`) {
		t.Fatal("revoked key not shown as revoked")
	}
	// Viewers see the list but no form or buttons.
	e.user("viewer@example.com", models.RoleViewer)
	v := e.signIn("viewer@example.com")
	status, body = e.get(v, "/settings/api-keys")
	if doc := parseHTML(t, body); status != http.StatusOK || doc.has(`[data-testid="new-key-form"]`) || doc.has(`[data-testid="keys-table"] form`) || !strings.Contains(doc.text(`[data-testid="key-row"]`), "forever") {
		t.Fatalf("viewer keys page: %d", status)
	}
	if resp := e.form(v, "/settings/api-keys", url.Values{"name": {"x"}, "expiry": {"30"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("viewer create: %d", resp.StatusCode)
	}
}

func TestAPIKeysJSON(t *testing.T) {
	e := newEnv(t)
	tok := e.token("root@example.com")
	org := e.org.ID.String()
	exp := time.Now().AddDate(1, 0, 0).UTC().Truncate(time.Second).Format(time.RFC3339)
	created := e.call(http.MethodPost, "/api/v1/settings/api-keys", tok, map[string]string{"name": "automation", "orgId": org, "expiresAt": exp}).want(http.StatusCreated).json()
	raw, _ := created["rawKey"].(string)
	if !models.ValidAPIKeyFormat(raw) || len(raw) != 46 || created["prefix"] != raw[:12] || created["agentId"] != nil || created["expiresAt"] != exp || created["isActive"] != true || created["orgId"] != org || created["teamId"] == nil {
		t.Fatalf("create answer: %v", created)
	}
	isRFC3339UTCSeconds(t, created["createdAt"].(string))
	id := created["id"].(string)

	var list []map[string]any
	e.call(http.MethodGet, "/api/v1/settings/api-keys?orgId="+org, tok, nil).want(http.StatusOK).decode(&list)
	if len(list) != 1 || list[0]["id"] != id || list[0]["rawKey"] != nil || list[0]["keyHash"] != nil {
		t.Fatalf("list: %v", list)
	}
	e.call(http.MethodPost, "/api/v1/settings/api-keys", tok, map[string]string{"name": "old", "orgId": org, "expiresAt": "2001-01-01T00:00:00Z"}).wantError(http.StatusBadRequest, "invalid_input")
	e.call(http.MethodPost, "/api/v1/settings/api-keys", tok, map[string]string{"name": "x", "orgId": org, "teamId": "00000000-0000-0000-0000-000000000001"}).wantError(http.StatusBadRequest, "invalid_input")
	e.call(http.MethodPost, "/api/v1/settings/api-keys", tok, map[string]any{"name": 5}).wantError(http.StatusBadRequest, "invalid_input")

	if got := e.call(http.MethodPatch, "/api/v1/settings/api-keys/"+id, tok, map[string]bool{"isActive": false}).want(http.StatusOK).json(); got["isActive"] != false || got["state"] != "disabled" {
		t.Fatalf("disable: %v", got)
	}
	e.call(http.MethodGet, "/api/v1/agent/orgs", raw, nil).wantError(http.StatusUnauthorized, "invalid_credential")
	e.call(http.MethodPatch, "/api/v1/settings/api-keys/"+id, tok, map[string]bool{"isActive": true}).want(http.StatusOK)
	e.call(http.MethodGet, "/api/v1/agent/orgs", raw, nil).want(http.StatusOK)
	e.call(http.MethodDelete, "/api/v1/settings/api-keys/"+id, tok, nil).want(http.StatusOK)
	e.call(http.MethodDelete, "/api/v1/settings/api-keys/"+id, tok, nil).want(http.StatusOK)
	e.call(http.MethodPatch, "/api/v1/settings/api-keys/"+id, tok, map[string]bool{"isActive": true}).wantError(http.StatusConflict, "key_revoked")
	e.call(http.MethodGet, "/api/v1/agent/orgs", raw, nil).wantError(http.StatusUnauthorized, "invalid_credential")
	e.call(http.MethodDelete, "/api/v1/settings/api-keys/00000000-0000-0000-0000-000000000001", tok, nil).wantError(http.StatusNotFound, "not_found")

	for action, want := range map[string]int{"api_key.created": 1, "api_key.disabled": 1, "api_key.enabled": 1, "api_key.revoked": 1} {
		n, _ := e.db.NewSelect().Table("audit_events").Where("action = ? AND target_id = ?", action, id).Count(t.Context())
		if int(n) != want {
			t.Errorf("%s: %d events, want %d", action, n, want)
		}
	}
}
