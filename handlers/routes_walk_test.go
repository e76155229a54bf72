package handlers

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/agentroster/agentroster/models"
)

// walkedRoute is one route of the table with its parameters filled in.
type walkedRoute struct {
	Method, Pattern, Path string
}

func (r walkedRoute) String() string { return r.Method + " " + r.Pattern }

// routeTable returns every route of the server (gin's own list), with each
// :param and *param replaced by params[name]. A parameter without a value
// fails the test, so a new route cannot be skipped silently.
func (e *env) routeTable(params map[string]string) []walkedRoute {
	e.t.Helper()
	eng, ok := e.h.Routes().(*gin.Engine)
	if !ok {
		e.t.Fatal("Routes() is not a *gin.Engine")
	}
	var out []walkedRoute
	for _, ri := range eng.Routes() {
		parts := strings.Split(ri.Path, "/")
		for i, p := range parts {
			if p == "" || (p[0] != ':' && p[0] != '*') {
				continue
			}
			v, ok := params[p[1:]]
			if !ok {
				e.t.Fatalf("route %s %s: no test value for parameter %s", ri.Method, ri.Path, p)
			}
			parts[i] = url.PathEscape(v)
		}
		out = append(out, walkedRoute{Method: ri.Method, Pattern: ri.Path, Path: strings.Join(parts, "/")})
	}
	return out
}

// send calls a route as a browser (client c with its cookies, a same-origin
// form post) or, for /api/ routes with a bearer token, as a script.
func (e *env) send(r walkedRoute, c *http.Client, bearer string) int {
	e.t.Helper()
	var body io.Reader
	ctype := "application/x-www-form-urlencoded"
	if strings.HasPrefix(r.Path, "/api/") {
		body, ctype = strings.NewReader("{}"), "application/json"
	} else {
		body = strings.NewReader("")
	}
	req, _ := http.NewRequest(r.Method, e.srv.URL+r.Path, body)
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Origin", e.srv.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if c == nil {
		c = e.browser()
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// walkParams are real objects of the env's org, so a refusal is about the
// role and not about a missing object.
func (e *env) walkParams() map[string]string {
	e.t.Helper()
	ctx := e.t.Context()
	e.agentIn(e.org.ID, "walk-agent", models.StatusApproved)
	key, _ := e.teamKey(e.org.ID)
	team, err := models.DefaultTeam(ctx, e.db, e.org.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	target := e.user("target@example.com", models.RoleViewer)
	ep, _, err := models.CreateWebhook(ctx, e.db, e.h.sealer, e.org.ID, models.WebhookInput{URL: "http://127.0.0.1:9/hook", Events: []string{models.NotifyAgentPending}}, e.actor)
	if err != nil {
		e.t.Fatal(err)
	}
	return map[string]string{
		"orgId": e.org.ID.String(), "teamId": team.ID.String(), "agentId": "walk-agent", "id": key.ID.String(),
		"columnId": "col_backlog", "userId": target.ID.String(), "endpointId": ep.ID.String(),
		"token": models.RandomBase62(43), "path": "js/app.js",
	}
}

// selfService are state-changing routes every signed-in operator may use on
// their own account, whatever their role.
var selfService = map[string]bool{
	"POST /login": true, "POST /logout": true, "POST /orgs/switch": true,
	"POST /account/password": true, "POST /api/v1/auth/login": true, "POST /api/v1/account/password": true,
	"POST /account/invitations/:id/accept": true, "POST /account/invitations/:id/decline": true,
	"POST /api/v1/account/invitations/:id/accept": true, "POST /api/v1/account/invitations/:id/decline": true,
}

// TestViewerForbiddenOnEveryStateChangingRoute walks the whole route table:
// every non-GET operator route answers a viewer 403, through the browser
// session and through a bearer token, and changes nothing.
func TestViewerForbiddenOnEveryStateChangingRoute(t *testing.T) {
	e := newEnv(t)
	params := e.walkParams()
	e.user("viewer@example.com", models.RoleViewer)
	browser := e.signIn("viewer@example.com")
	bearer := e.token("viewer@example.com")
	auditBefore, _ := e.db.NewSelect().Table("audit_events").Count(t.Context())

	checked := 0
	for _, r := range e.routeTable(params) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead || selfService[r.String()] {
			continue
		}
		// Public routes (no operator credential needed) are not role-checked.
		if anon := e.send(r, nil, ""); anon != http.StatusUnauthorized && anon != http.StatusSeeOther {
			t.Logf("%s: public (anonymous %d)", r, anon)
			continue
		}
		status := e.send(r, browser, "")
		if strings.HasPrefix(r.Path, "/api/") {
			status = e.send(r, nil, bearer)
		}
		if status == http.StatusUnauthorized {
			// Runtime routes take an API key, not an operator credential.
			t.Logf("%s: runtime route (401 for an operator)", r)
			continue
		}
		if status != http.StatusForbidden {
			t.Errorf("%s as a viewer: status %d, want 403", r, status)
		}
		if !strings.HasPrefix(r.Path, "/api/") {
			// The same handler through a bearer token is refused as well.
			if s := e.send(r, nil, bearer); s != http.StatusForbidden && s != http.StatusUnauthorized && s != http.StatusSeeOther {
				t.Errorf("%s with a viewer's bearer token: status %d", r, s)
			}
		}
		checked++
	}
	if checked < 30 {
		t.Fatalf("only %d state-changing routes checked", checked)
	}
	auditAfter, _ := e.db.NewSelect().Table("audit_events").Count(t.Context())
	if auditAfter != auditBefore {
		t.Fatalf("a viewer's refused requests wrote %d audit events", auditAfter-auditBefore)
	}
	t.Logf("%d state-changing routes answer viewers 403", checked)
}
