package handlers

import (
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/agentroster/agentroster/models"
)

func columnIDs(t *testing.T, e *env) []string {
	t.Helper()
	cols, err := models.ListColumns(t.Context(), e.db, e.org.ID)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(cols))
	for i, c := range cols {
		ids[i] = c.ID
	}
	return ids
}

func TestColumnsJSON(t *testing.T) {
	e := newEnv(t)
	tok := e.token("root@example.com")
	base := "/api/v1/organizations/" + e.org.ID.String() + "/columns"

	var cols []models.BoardColumn
	e.call(http.MethodGet, base, tok, nil).want(http.StatusOK).decode(&cols)
	if len(cols) != 4 || cols[0].ID != "col_backlog" || !cols[0].AgentCanRead {
		t.Fatalf("default columns: %+v", cols)
	}
	created := e.call(http.MethodPost, base, tok, map[string]any{"name": "Blocked", "agentCanModerate": true}).want(http.StatusCreated).json()
	if created["id"] != "col_blocked" || created["position"] != float64(5) || created["agentCanRead"] != true || created["agentCanModerate"] != true {
		t.Fatalf("created: %v", created)
	}
	e.call(http.MethodPost, base, tok, map[string]any{"name": "Blocked"}).wantError(http.StatusConflict, "column_exists")
	e.call(http.MethodPost, base, tok, map[string]any{"name": "X", "id": "Bad Id"}).wantError(http.StatusBadRequest, "invalid_input")
	e.call(http.MethodPost, base, tok, map[string]any{"name": ""}).wantError(http.StatusBadRequest, "invalid_input")
	e.call(http.MethodPost, base, tok, map[string]any{"name": "QA", "id": "col_qa", "position": 1}).want(http.StatusCreated)
	if got := columnIDs(t, e); strings.Join(got, ",") != "col_qa,col_backlog,col_in_progress,col_in_review,col_done,col_blocked" {
		t.Fatalf("order after insert at 1: %v", got)
	}

	// Rename and change defaults; turning read off turns moderate off.
	upd := e.call(http.MethodPatch, base+"/col_blocked", tok, map[string]any{"name": "Blocked (waiting)", "agentCanRead": false}).want(http.StatusOK).json()
	if upd["name"] != "Blocked (waiting)" || upd["agentCanRead"] != false || upd["agentCanModerate"] != false {
		t.Fatalf("update: %v", upd)
	}
	e.call(http.MethodPatch, base+"/col_blocked", tok, map[string]any{"position": 2}).want(http.StatusOK)
	e.call(http.MethodPatch, base+"/col_done", tok, map[string]any{"position": 99}).want(http.StatusOK)
	if got := columnIDs(t, e); strings.Join(got, ",") != "col_qa,col_blocked,col_backlog,col_in_progress,col_in_review,col_done" {
		t.Fatalf("order after moves: %v", got)
	}
	e.call(http.MethodPatch, base+"/col_nope", tok, map[string]any{"name": "x"}).wantError(http.StatusNotFound, "not_found")
	e.call(http.MethodDelete, base+"/col_qa", tok, nil).want(http.StatusOK)
	e.call(http.MethodDelete, base+"/col_qa", tok, nil).wantError(http.StatusNotFound, "not_found")

	e.user("viewer@example.com", models.RoleViewer)
	vt := e.token("viewer@example.com")
	e.call(http.MethodGet, base, vt, nil).want(http.StatusOK)
	e.call(http.MethodPost, base, vt, map[string]any{"name": "Nope"}).wantError(http.StatusForbidden, "forbidden")
	e.call(http.MethodDelete, base+"/col_done", vt, nil).wantError(http.StatusForbidden, "forbidden")

	for action, want := range map[string]int{"column.created": 2, "column.updated": 1, "column.reordered": 2, "column.deleted": 1} {
		n, _ := e.db.NewSelect().Table("audit_events").Where("action = ? AND org_id = ?", action, e.org.ID).Count(t.Context())
		if int(n) != want {
			t.Errorf("%s: %d events, want %d", action, n, want)
		}
	}
}

func TestColumnsPage(t *testing.T) {
	e := newEnv(t)
	admin := e.signIn("root@example.com")
	status, body := e.get(admin, "/settings/columns")
	if doc := parseHTML(t, body); status != http.StatusOK || doc.count(`[data-testid="column-row"]`) != 4 || !doc.has(`[data-testid="new-column-form"]`) {
		t.Fatalf("columns page: %d", status)
	}
	if resp := e.form(admin, "/settings/columns", url.Values{"name": {"Blocked"}, "agentCanRead": {"true"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	status, _, body = e.post(admin, "/settings/columns", url.Values{"name": {"Blocked"}})
	if status != http.StatusBadRequest || !parseHTML(t, body).has(`[data-testid="new-column-form"] [data-testid="error-id"]`) {
		t.Fatalf("duplicate create: %d %s", status, body)
	}
	// Move up with htmx answers the table; plain move down redirects.
	status, _, table := e.htmx(admin, "/settings/columns/col_blocked/up", nil)
	if status != http.StatusOK || !strings.HasPrefix(strings.TrimSpace(table), `<div id="columns-table"`) {
		t.Fatalf("move up: %d %s", status, table)
	}
	if got := columnIDs(t, e); strings.Join(got, ",") != "col_backlog,col_in_progress,col_in_review,col_blocked,col_done" {
		t.Fatalf("after up: %v", got)
	}
	if resp := e.form(admin, "/settings/columns/col_backlog/down", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("move down: %d", resp.StatusCode)
	}
	e.form(admin, "/settings/columns/col_done/down", nil) // already last: nothing changes
	if got := columnIDs(t, e); strings.Join(got, ",") != "col_in_progress,col_backlog,col_in_review,col_blocked,col_done" {
		t.Fatalf("after down: %v", got)
	}
	// Save name and defaults; delete.
	if resp := e.form(admin, "/settings/columns/col_in_review", url.Values{"name": {"Review"}, "agentCanModerate": {"true"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d", resp.StatusCode)
	}
	cols, _ := models.ListColumns(t.Context(), e.db, e.org.ID)
	if cols[2].Name != "Review" || !cols[2].AgentCanRead || !cols[2].AgentCanModerate {
		t.Fatalf("saved column: %+v", cols[2])
	}
	if status, _, _ := e.htmx(admin, "/settings/columns/col_blocked/delete", nil); status != http.StatusOK {
		t.Fatalf("delete: %d", status)
	}
	if len(columnIDs(t, e)) != 4 {
		t.Fatal("column not deleted")
	}
	e.user("viewer@example.com", models.RoleViewer)
	v := e.signIn("viewer@example.com")
	if status, body := e.get(v, "/settings/columns"); status != http.StatusOK || parseHTML(t, body).has(`[data-testid="new-column-form"], [data-testid="column-delete"], #columns-table form`) {
		t.Fatalf("viewer columns page: %d", status)
	}
	if resp := e.form(v, "/settings/columns/col_done/delete", nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("viewer delete: %d", resp.StatusCode)
	}
}

func TestAgentPermissions(t *testing.T) {
	e := newEnv(t)
	e.agentIn(e.org.ID, "perm", models.StatusApproved)
	_, key := e.teamKey(e.org.ID)
	tok := e.token("root@example.com")

	// Defaults: backlog and in progress readable.
	p := e.call(http.MethodGet, "/api/v1/agents/perm/permissions", key, nil).want(http.StatusOK).json()
	if !reflect.DeepEqual(p["canRead"], []any{"col_backlog", "col_in_progress"}) || !reflect.DeepEqual(p["canModerate"], []any{}) ||
		!reflect.DeepEqual(p["permissions"], []any{"board.read"}) || !reflect.DeepEqual(p["cardTypeAccess"], []any{}) {
		t.Fatalf("default permissions: %v", p)
	}
	res := e.call(http.MethodPut, "/api/v1/agents/perm/permissions", tok, map[string]any{
		"columns":     []map[string]any{{"columnId": "col_in_progress", "canModerate": true}},
		"transitions": []string{"col_in_progress->col_in_review", "col_in_review->col_done"},
	}).want(http.StatusOK).json()
	if !reflect.DeepEqual(res["transitions"], []any{"col_in_progress->col_in_review", "col_in_review->col_done"}) {
		t.Fatalf("put answer: %v", res)
	}
	p = e.call(http.MethodGet, "/api/v1/agents/perm/permissions", key, nil).want(http.StatusOK).json()
	if !reflect.DeepEqual(p["canRead"], []any{"col_backlog", "col_in_progress", "col_in_review"}) ||
		!reflect.DeepEqual(p["canModerate"], []any{"col_in_progress"}) ||
		!reflect.DeepEqual(p["canTransition"], []any{"col_in_progress->col_in_review", "col_in_review->col_done"}) ||
		!reflect.DeepEqual(p["permissions"], []any{"board.read", "board.moderate", "board.transition"}) {
		t.Fatalf("resolved permissions: %v", p)
	}
	access := p["columnAccess"].([]any)
	if len(access) != 4 || access[2].(map[string]any)["columnId"] != "col_in_review" || access[2].(map[string]any)["canRead"] != true || access[2].(map[string]any)["name"] != "In review" {
		t.Fatalf("columnAccess: %v", access)
	}

	// Bad input writes nothing.
	for _, body := range []map[string]any{
		{"columns": []map[string]any{{"columnId": "col_nope", "canRead": true}}},
		{"transitions": []string{"col_backlog->col_backlog"}},
		{"transitions": []string{"col_backlog->col_nope"}},
		{"transitions": []string{"nonsense"}},
	} {
		e.call(http.MethodPut, "/api/v1/agents/perm/permissions", tok, body).wantError(http.StatusBadRequest, "invalid_input")
	}
	e.call(http.MethodPut, "/api/v1/agents/nobody/permissions", tok, map[string]any{}).wantError(http.StatusNotFound, "not_found")
	g, _ := models.GetGrants(t.Context(), e.db, e.org.ID, "perm")
	if len(g.Columns) != 1 || len(g.Transitions) != 2 {
		t.Fatalf("grants after refused updates: %+v", g)
	}

	// The editor: a plain form post saves and redirects; htmx answers the section.
	admin := e.signIn("root@example.com")
	resp := e.form(admin, "/agents/perm/permissions", url.Values{"read": {"col_done"}, "transitions": {"col_backlog->col_in_progress\r\n\r\n"}})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/agents/perm?saved=permissions") {
		t.Fatalf("editor post: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	g, _ = models.GetGrants(t.Context(), e.db, e.org.ID, "perm")
	if len(g.Columns) != 1 || g.Columns[0].ColumnID != "col_done" || g.Columns[0].CanModerate || len(g.Transitions) != 1 || g.Transitions[0].String() != "col_backlog->col_in_progress" {
		t.Fatalf("grants after the editor: %+v", g)
	}
	status, _, sec := e.htmx(admin, "/agents/perm/permissions", url.Values{"moderate": {"col_in_review"}, "transitions": {"col_in_review->col_done"}})
	if status != http.StatusOK || parseHTML(t, sec).text(`#permissions-section [data-testid="flash"]`) != "Permissions saved." || !strings.HasPrefix(strings.TrimSpace(sec), `<section id="permissions-section"`) {
		t.Fatalf("htmx editor: %d %s", status, sec)
	}
	status, _, sec = e.htmx(admin, "/agents/perm/permissions", url.Values{"transitions": {"col_in_review->col_done\nnot a transition"}})
	doc := parseHTML(t, sec)
	if status != http.StatusOK || !strings.Contains(doc.text(`[data-testid="error-transitions"]`), "line 2") || !strings.Contains(doc.text(`[data-testid="transitions-input"]`), "not a transition") {
		t.Fatalf("htmx editor with a bad line: %d %s", status, sec)
	}
	status, _, page := e.post(admin, "/agents/perm/permissions", url.Values{"transitions": {"col_x->col_y"}})
	if status != http.StatusBadRequest || !parseHTML(t, page).has(`[data-testid="permissions-form"] [data-testid="error-transitions"]`) {
		t.Fatalf("plain editor with an unknown column: %d", status)
	}
	g, _ = models.GetGrants(t.Context(), e.db, e.org.ID, "perm")
	if len(g.Columns) != 1 || !g.Columns[0].CanModerate || g.Columns[0].ColumnID != "col_in_review" {
		t.Fatalf("grants after refused editor posts: %+v", g)
	}
	n, _ := e.db.NewSelect().Table("audit_events").Where("action = 'agent.permissions_changed' AND target_id = 'perm'").Count(t.Context())
	if n != 3 {
		t.Fatalf("permissions_changed events: %d", n)
	}
	// Deleting a column drops grants on it.
	e.call(http.MethodDelete, "/api/v1/organizations/"+e.org.ID.String()+"/columns/col_in_review", tok, nil).want(http.StatusOK)
	g, _ = models.GetGrants(t.Context(), e.db, e.org.ID, "perm")
	if len(g.Columns) != 0 || len(g.Transitions) != 0 {
		t.Fatalf("grants on a deleted column: %+v", g)
	}
}
