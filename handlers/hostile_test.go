package handlers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/agentroster/agentroster/models"
)

// Hostile input through every route of the route table: each answer is below
// 500, an API error carries its code, and a refused request writes nothing.

const (
	sqlPayload    = `x'); DROP TABLE agents; -- ' OR '1'='1`
	scriptPayload = `<script>alert(1)</script><img src=x onerror=alert(2)>"'`
)

// hostileFields are the text fields of every request body in the API; each
// hostile body sets all of them.
var hostileFields = []string{
	"id", "title", "name", "email", "password", "color", "orgId", "teamId", "machineIp", "machineName",
	"llmVersion", "adapterType", "onboarding", "columnId", "osName", "osVersion", "storageType",
	"agentName", "claimSecret", "expiresAt", "expiry", "from", "transitions", "next", "ttl", "names",
}

// hostileRequest is one request of the walk.
type hostileRequest struct {
	kind, method, path, contentType string
	body                            []byte
	headers                         []string
}

// jsonWithAll returns a JSON object setting every hostile field to v.
func jsonWithAll(v string) []byte {
	m := map[string]string{}
	for _, f := range hostileFields {
		m[f] = v
	}
	b, _ := json.Marshal(m)
	return b
}

func formWithAll(v string) []byte {
	f := url.Values{}
	for _, k := range hostileFields {
		f.Set(k, v)
	}
	return []byte(f.Encode())
}

// hostileBodies are the bodies sent to every route that takes one.
func hostileBodies(api bool) []hostileRequest {
	ct := "application/json"
	big := []byte(`{"title":"` + strings.Repeat("a", maxJSONBody+1) + `"}`)
	if !api {
		ct = "application/x-www-form-urlencoded"
		big = []byte("name=" + strings.Repeat("a", maxFormBody+1))
	}
	reqs := []hostileRequest{
		{kind: "oversized body", contentType: ct, body: big},
		{kind: "deeply nested JSON", contentType: ct, body: []byte(strings.Repeat(`{"a":[`, 20000) + strings.Repeat(`]}`, 20000))},
		{kind: "deep array", contentType: ct, body: []byte(strings.Repeat("[", 100000))},
		{kind: "invalid UTF-8", contentType: ct, body: []byte("{\"title\":\"\xff\xfe\xfd\",\"name\":\"\xc3\x28\"}")},
		{kind: "NUL byte raw", contentType: ct, body: []byte("{\"title\":\"a\x00b\"}")},
		{kind: "NUL escaped", contentType: ct, body: jsonWithAll("a\u0000b")},
		{kind: "wrong content type", contentType: "text/plain", body: []byte(`{"title":"x"}`)},
		{kind: "xml", contentType: "application/xml", body: []byte(`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>`)},
		{kind: "multipart", contentType: "multipart/form-data; boundary=zz", body: []byte("--zz\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\n" + sqlPayload + "\r\n--zz--\r\n")},
		{kind: "SQL in every field", contentType: ct, body: jsonWithAll(sqlPayload)},
		{kind: "script in every field", contentType: ct, body: jsonWithAll(scriptPayload)},
		{kind: "wrong types", contentType: ct, body: []byte(`{"id":1,"title":[],"name":{},"enabled":"yes","isActive":"no","position":"x","ramBytes":-1e400,"columns":"x","transitions":5}`)},
		{kind: "huge numbers", contentType: ct, body: []byte(`{"ramBytes":1e30,"storageBytes":-1,"position":99999999999999999999,"maxUses":-5}`)},
		{kind: "JSON array", contentType: ct, body: []byte(`[1,2,3]`)},
		{kind: "trailing data", contentType: ct, body: []byte(`{} {"x":1}`)},
	}
	if !api {
		reqs = append(reqs,
			hostileRequest{kind: "SQL in every form field", contentType: ct, body: formWithAll(sqlPayload)},
			hostileRequest{kind: "script in every form field", contentType: ct, body: formWithAll(scriptPayload)},
			hostileRequest{kind: "NUL in every form field", contentType: ct, body: formWithAll("a\x00b")},
			hostileRequest{kind: "invalid UTF-8 form", contentType: ct, body: []byte("name=%ff%fe&title=%c3%28&id=%ff")},
			hostileRequest{kind: "bad form encoding", contentType: ct, body: []byte("name=%zz&%%%=1")},
		)
	}
	return reqs
}

// hostilePathValues replace one parameter at a time.
var hostilePathValues = []string{
	"..%2f..%2fetc%2fpasswd", "%00", "x%00y", url.PathEscape(sqlPayload), url.PathEscape(scriptPayload),
	strings.Repeat("a", 5000), "%ff%fe", "..", "00000000-0000-0000-0000-000000000000",
}

func TestHostileInputEveryRoute(t *testing.T) {
	e := newEnv(t)
	e.srv.Config.MaxHeaderBytes = 64 << 10 // as cmd/server sets it
	admin := e.token("root@example.com")
	_, key := e.teamKey(e.org.ID)
	target, _ := e.teamKey(e.org.ID) // a key the key routes may disable or revoke
	e.agentIn(e.org.ID, "target", models.StatusApproved)
	team, err := models.DefaultTeam(t.Context(), e.db, e.org.ID)
	if err != nil {
		t.Fatal(err)
	}
	browser := e.signIn("root@example.com")
	values := pathValues(e, admin, "target", target.ID.String(), team.ID.String())

	routes := e.h.Routes().(*gin.Engine).Routes()
	// Destructive routes last, so the objects stay for the others.
	sort.SliceStable(routes, func(i, j int) bool {
		d := func(r gin.RouteInfo) bool {
			return r.Method == http.MethodDelete || strings.HasSuffix(r.Path, "/delete") || strings.HasSuffix(r.Path, "/revoke") || r.Path == "/logout"
		}
		return !d(routes[i]) && d(routes[j])
	})

	sent, fiveXX := 0, 0
	rows := tableRows(t, e) // the row counts before the next request
	send := func(route gin.RouteInfo, hr hostileRequest) {
		t.Helper()
		api := strings.HasPrefix(hr.path, "/api/")
		req, _ := http.NewRequest(hr.method, e.srv.URL+hr.path, bytes.NewReader(hr.body))
		if hr.contentType != "" {
			req.Header.Set("Content-Type", hr.contentType)
		}
		e.authorize(req, route, key, admin)
		for i := 0; i+1 < len(hr.headers); i += 2 {
			req.Header.Set(hr.headers[i], hr.headers[i+1])
		}
		before := rows
		defer func() { rows = tableRows(t, e) }()
		client := browser
		if route.Path == "/events" {
			return // a stream: covered by its own tests
		}
		resp, err := client.Do(req)
		sent++
		if err != nil {
			t.Errorf("%s %s (%s): %v", hr.method, route.Path, hr.kind, err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			fiveXX++
			t.Errorf("%s %s (%s): %d %.300s", hr.method, route.Path, hr.kind, resp.StatusCode, body)
			return
		}
		if hr.kind == "oversized body" && resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("%s %s (%s): %d, want 413", hr.method, route.Path, hr.kind, resp.StatusCode)
		}
		if hr.kind == "oversized header" && resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("%s %s (%s): %d, want 431", hr.method, route.Path, hr.kind, resp.StatusCode)
		}
		if resp.StatusCode < 400 {
			return
		}
		if api && resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			var eb errorBody
			if json.Unmarshal(body, &eb) != nil || eb.Error.Code == "" {
				t.Errorf("%s %s (%s): %d without an error code: %.200s", hr.method, route.Path, hr.kind, resp.StatusCode, body)
			}
		}
		if rows = tableRows(t, e); rows != before {
			t.Errorf("%s %s (%s): refused with %d but wrote: %s → %s", hr.method, route.Path, hr.kind, resp.StatusCode, before, rows)
		}
	}

	for _, route := range routes {
		path := route.Path
		var params []string
		for _, seg := range strings.Split(route.Path, "/") {
			if len(seg) > 1 && (seg[0] == ':' || seg[0] == '*') {
				name := seg[1:]
				v, ok := paramValue(values, route.Path, name)
				if !ok {
					t.Fatalf("route %s %s: add a value for the parameter %q to pathValues", route.Method, route.Path, name)
				}
				params = append(params, seg)
				path = strings.Replace(path, seg, v, 1)
			}
		}
		api := strings.HasPrefix(path, "/api/")
		// Bodies, for every method that takes one.
		if route.Method != http.MethodGet && route.Method != http.MethodHead {
			for _, hr := range hostileBodies(api) {
				hr.method, hr.path = route.Method, path
				send(route, hr)
			}
		}
		// Hostile path parameters, one at a time.
		for _, p := range params {
			for _, v := range hostilePathValues {
				hp := route.Path
				for _, q := range params {
					val, _ := paramValue(values, route.Path, q[1:])
					if q == p {
						val = v
					}
					hp = strings.Replace(hp, q, val, 1)
				}
				send(route, hostileRequest{kind: "path " + p + "=" + v, method: route.Method, path: hp, contentType: "application/json", body: []byte("{}")})
			}
		}
		// Hostile query strings and headers.
		q := "?orgId=" + url.QueryEscape(sqlPayload) + "&status=" + url.QueryEscape(scriptPayload) + "&limit=-1&after=%00&q=%ff&next=//evil.example"
		send(route, hostileRequest{kind: "query", method: route.Method, path: path + q, contentType: "application/json", body: []byte("{}")})
		send(route, hostileRequest{kind: "oversized header", method: route.Method, path: path, contentType: "application/json", body: []byte("{}"),
			headers: []string{"X-Padding", strings.Repeat("p", 100<<10)}})
		send(route, hostileRequest{kind: "hostile headers", method: route.Method, path: path, contentType: "application/json", body: []byte("{}"),
			headers: []string{"X-Request-ID", scriptPayload, "X-Forwarded-For", sqlPayload, "HX-Request", "true", "Idempotency-Key", strings.Repeat("k", 4000), "Accept", "application/json"}})
	}
	if fiveXX == 0 && sent < 100 {
		t.Fatalf("only %d hostile requests sent", sent)
	}
	bad := checkInvariants(t, e.db)
	summary(t, "hostile_sent", sent, "hostile_5xx", fiveXX, "violations", bad)
}

// TestHostileTextStoredVerbatim: SQL and script payloads in every text field
// are stored exactly as sent and rendered escaped in every page.
func TestHostileTextStoredVerbatim(t *testing.T) {
	e := newEnv(t)
	admin := e.token("root@example.com")
	_, key := e.teamKey(e.org.ID)
	team, err := models.DefaultTeam(t.Context(), e.db, e.org.ID)
	if err != nil {
		t.Fatal(err)
	}
	sent := 0
	for i, p := range []string{sqlPayload, scriptPayload} {
		id := fmt.Sprintf("verbatim-%d", i)
		body := map[string]any{"id": id, "title": p, "machineName": p, "llmVersion": p, "email": p, "osName": p, "osVersion": p}
		e.call(http.MethodPost, "/api/v1/teams/"+team.ID.String()+"/agents/register", key, body).want(http.StatusOK)
		a := e.dbAgent(e.org.ID, id)
		if a.Title != p || a.MachineName != p || a.LLMVersion != p || a.Email != p || *a.OSName != p || *a.OSVersion != p {
			t.Errorf("agent not stored verbatim: %+v", a)
		}
		e.call(http.MethodPost, "/api/v1/organizations/"+e.org.ID.String()+"/teams", admin, map[string]any{"name": p + fmt.Sprint(i), "onboarding": p}).want(http.StatusCreated)
		e.call(http.MethodPost, "/api/v1/settings/api-keys", admin, map[string]any{"name": p, "orgId": e.org.ID.String()}).want(http.StatusCreated)
		e.call(http.MethodPost, "/api/v1/organizations/"+e.org.ID.String()+"/columns", admin, map[string]any{"name": p}).want(http.StatusCreated)
		sent += 4
	}
	var n int
	if err := e.db.NewRaw("SELECT count(*) FROM teams WHERE onboarding = ? OR onboarding = ?", sqlPayload, scriptPayload).Scan(t.Context(), &n); err != nil || n != 2 {
		t.Errorf("onboarding not stored verbatim: %d %v", n, err)
	}
	if err := e.db.NewRaw("SELECT count(*) FROM api_keys WHERE name = ? OR name = ?", sqlPayload, scriptPayload).Scan(t.Context(), &n); err != nil || n != 2 {
		t.Errorf("key names not stored verbatim: %d %v", n, err)
	}
	// Every page that shows them escapes them.
	c := e.signIn("root@example.com")
	for _, page := range []string{"/agents", "/agents/verbatim-0", "/agents/verbatim-1", "/settings/teams", "/settings/api-keys", "/settings/columns"} {
		status, body := e.get(c, page)
		if status != http.StatusOK {
			t.Errorf("%s: %d", page, status)
			continue
		}
		for _, raw := range []string{"<script>alert(1)", "<img src=x"} {
			if strings.Contains(body, raw) {
				t.Errorf("%s renders %q unescaped", page, raw)
			}
		}
		if page == "/agents" && !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s: escaped payload missing", page)
		}
	}
	summary(t, "hostile_sent", sent, "hostile_5xx", 0)
}
