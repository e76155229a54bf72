package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/agentroster/agentroster/models"
)

// badTextQueryParams are the query parameters the routes read; each is sent
// with a NUL byte and with invalid UTF-8 to every route.
var badTextQueryParams = []string{
	"q", "status", "presence", "teamId", "agentId", "after", "before", "limit", "orgId", "action", "actor",
	"target", "targetType", "since", "until", "scope", "next", "done", "v", "column", "page", "format",
}

// TestBadTextEveryRoute walks gin's route table: a NUL byte or invalid UTF-8
// in any query parameter or path parameter answers 400 invalid_input naming
// the field (JSON on the API), never a 5xx, and writes nothing.
func TestBadTextEveryRoute(t *testing.T) {
	e := newEnv(t)
	admin := e.token("root@example.com")
	_, key := e.teamKey(e.org.ID)
	target, _ := e.teamKey(e.org.ID)
	e.agentIn(e.org.ID, "target", models.StatusApproved)
	team, err := models.DefaultTeam(t.Context(), e.db, e.org.ID)
	if err != nil {
		t.Fatal(err)
	}
	browser := e.signIn("root@example.com")
	values := pathValues(e, admin, "target", target.ID.String(), team.ID.String())
	rows := tableRows(t, e)

	sent := 0
	send := func(route gin.RouteInfo, path, field string) {
		t.Helper()
		// A bounded wait: /events streams when it does not refuse.
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, route.Method, e.srv.URL+path, strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		e.authorize(req, route, key, admin)
		resp, err := browser.Do(req)
		if err != nil {
			t.Errorf("%s %s: %v", route.Method, path, err)
			return
		}
		sent++
		if resp.StatusCode != http.StatusBadRequest {
			resp.Body.Close() // unread: /events would stream
			t.Errorf("%s %s: %d, want 400", route.Method, path, resp.StatusCode)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.HasPrefix(route.Path, "/api/") {
			var eb errorBody
			if json.Unmarshal(body, &eb) != nil || eb.Error.Code != "invalid_input" {
				t.Errorf("%s %s: %.300s, want invalid_input", route.Method, path, body)
				return
			}
			fields, _ := eb.Error.Details["fields"].(map[string]any)
			if _, ok := fields[field]; !ok {
				t.Errorf("%s %s: fields %v do not name %q", route.Method, path, fields, field)
			}
		}
	}
	for _, route := range e.h.Routes().(*gin.Engine).Routes() {
		path := route.Path
		var params []string
		for _, seg := range strings.Split(route.Path, "/") {
			if len(seg) > 1 && (seg[0] == ':' || seg[0] == '*') {
				v, ok := paramValue(values, route.Path, seg[1:])
				if !ok {
					t.Fatalf("route %s %s: add a value for the parameter %q to pathValues", route.Method, route.Path, seg[1:])
				}
				params = append(params, seg)
				path = strings.Replace(path, seg, v, 1)
			}
		}
		for _, name := range badTextQueryParams {
			send(route, path+"?"+name+"=a%00", name)
			send(route, path+"?"+name+"=%ff%fe", name)
		}
		for _, p := range params {
			for _, bad := range []string{"a%00", "%00", "%c3%28"} {
				hp := route.Path
				for _, q := range params {
					val, _ := paramValue(values, route.Path, q[1:])
					if q == p {
						val = bad
						if p[0] == '*' {
							val = "css/" + bad
						}
					}
					hp = strings.Replace(hp, q, val, 1)
				}
				send(route, hp, p[1:])
			}
		}
	}
	if after := tableRows(t, e); after != rows {
		t.Errorf("refused requests wrote: %s → %s", rows, after)
	}
	if sent < 1000 {
		t.Fatalf("only %d requests sent", sent)
	}
	summary(t, "bad_text_sent", sent)
}

// TestBadTextBodies: NUL bytes (escaped) and invalid UTF-8 in JSON strings,
// nested ones included, and in form values are 400 invalid_input naming
// the field.
func TestBadTextBodies(t *testing.T) {
	e := newEnv(t)
	admin := e.token("root@example.com")
	orgPath := "/api/v1/organizations/" + e.org.ID.String()
	for _, tc := range []struct {
		path, body, field string
	}{
		{orgPath + "/teams", `{"name":"a\u0000b"}`, "name"},
		{orgPath + "/teams", "{\"name\":\"ok\",\"onboarding\":\"\xff\xfe\"}", "onboarding"},
		{orgPath + "/webhooks", `{"url":"https://hooks.example.com/x","events":["agent.pending","a\u0000"]}`, "events.1"},
		{"/api/v1/internal/invites", `{"agentName":"x","metadata":{"k":"\u0000"}}`, "metadata.k"},
		{"/api/v1/auth/login", "{\"email\":\"root@example.com\",\"password\":\"\xc3\x28\"}", "password"},
	} {
		r := e.call(http.MethodPost, tc.path, admin, tc.body)
		r.wantError(http.StatusBadRequest, "invalid_input")
		if _, ok := r.errorDetails()["fields"].(map[string]any)[tc.field]; !ok {
			t.Errorf("%s %q: %s does not name %q", tc.path, tc.body, r.Body, tc.field)
		}
	}
	// A literal backslash-u0000 is text, not a NUL.
	e.call(http.MethodPost, orgPath+"/teams", admin, `{"name":"slash","onboarding":"a \\u0000 b"}`).want(http.StatusCreated)

	c := e.signIn("root@example.com")
	for _, body := range []string{"name=a%00b", "name=%ff", "name=ok&onboarding=x%00"} {
		req := formRequest(e.srv.URL, "/settings/teams", nil)
		req.Body = io.NopCloser(bytes.NewReader([]byte(body)))
		req.ContentLength = int64(len(body))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !parseHTML(t, string(page)).hasText("valid UTF-8") {
			t.Errorf("form %q: %d", body, resp.StatusCode)
		}
	}
	var n int
	if err := e.db.NewRaw("SELECT count(*) FROM teams").Scan(t.Context(), &n); err != nil || n != 2 {
		t.Fatalf("teams: %d %v, want the default and the one with a literal backslash", n, err)
	}
}
