package handlers

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/agentroster/agentroster/models"
)

// FuzzDecodeJSON: any body gets a 2xx or a 4xx with an error code, never a panic or 5xx.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"email":"a@b.c","password":"x"}`, `{"email":5}`, `[`, `{"a":` + strings.Repeat("[", 20000), "\xff\xfe", `{"email":"\u0000"}`, `{} {}`, ``} {
		f.Add(s, "application/json")
	}
	f.Add(`{}`, "text/plain")
	h := &Handler{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	gin.SetMode(gin.ReleaseMode)
	f.Fuzz(func(t *testing.T, body, contentType string) {
		w := httptest.NewRecorder()
		c, _ := gin.CreateTestContext(w)
		c.Request = httptest.NewRequest(http.MethodPost, "/api/v1/auth/login", strings.NewReader(body))
		c.Request.Header.Set("Content-Type", contentType)
		c.Request.Body = http.MaxBytesReader(w, c.Request.Body, maxJSONBody)
		var req loginRequest
		if err := decodeJSON(c, &req); err != nil {
			status, code, _, _ := classify(err)
			if status < 400 || status >= 500 || code == "" {
				t.Fatalf("body %q: status %d code %q", body, status, code)
			}
			h.fail(c, err)
			if w.Code >= 500 {
				t.Fatalf("body %q answered %d", body, w.Code)
			}
		}
	})
}

// FuzzBearerHeader: any Authorization header is refused cleanly unless it is a real token.
func FuzzBearerHeader(f *testing.F) {
	for _, s := range []string{"Bearer ag_bt_x", "Bearer", "bearer  ag_bt_", "ApiKey ag_ak_x", "Basic dXNlcjpwYXNz", "Bearer ag_bt_" + strings.Repeat("A", 4000)} {
		f.Add(s)
	}
	h, _ := startHandler(f, Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Secret: []byte("0123456789abcdef0123456789abcdef-fuzz")}, "")
	defer h.Close()
	gin.SetMode(gin.ReleaseMode)
	f.Fuzz(func(t *testing.T, header string) {
		c, _ := gin.CreateTestContext(httptest.NewRecorder())
		c.Request = httptest.NewRequest(http.MethodGet, "/api/v1/organizations", nil)
		c.Request.Header.Set("Authorization", header)
		if c.Request.Header.Get("Authorization") == "" {
			return // not a header value net/http would deliver
		}
		if p, err := h.authenticate(c); err == nil || p != nil {
			t.Fatalf("header %q authenticated", header)
		}
	})
}

// fuzzServer is one real server and database for a fuzz target; it returns
// the env, an admin bearer token, a team key and the default team's id.
func fuzzServer(f *testing.F) (*env, string, string, string) {
	e := newEnv(f)
	_, key := e.teamKey(e.org.ID)
	team, err := models.DefaultTeam(f.Context(), e.db, e.org.ID)
	if err != nil {
		f.Fatal(err)
	}
	e.agentIn(e.org.ID, "target", models.StatusApproved)
	return e, e.token("root@example.com"), key, team.ID.String()
}

// checkAnswer fails on a 5xx, no answer, or an API error without a code.
func checkAnswer(t *testing.T, what string, status int, body []byte) {
	if status == 0 || status >= 500 {
		t.Fatalf("%s: answered %d %.300s", what, status, body)
	}
	if status >= 400 && status != http.StatusRequestHeaderFieldsTooLarge {
		var eb errorBody
		if json.Unmarshal(body, &eb) != nil || eb.Error.Code == "" {
			t.Fatalf("%s: %d without an error code: %.300s", what, status, body)
		}
	}
}

var fuzzClient = &http.Client{Timeout: 30 * time.Second}

// FuzzRegisterBody: any register body through the real handler and database
// is a 200 (a pending agent) or a 4xx with an error code; never a 5xx.
func FuzzRegisterBody(f *testing.F) {
	for _, s := range []string{
		`{"id":"claude-1","title":"Claude","machineIp":"10.0.0.1","machineName":"m","llmVersion":"v","email":"a@b.c","osName":"Linux","osVersion":"6","ramBytes":17179869184,"storageBytes":1,"storageType":"ssd"}`,
		`{}`, `{"id":"a"}`, `{"id":"A"}`, `{"id":"invites"}`, `{"id":"x","ramBytes":-1}`, `{"id":"x","ramBytes":1e300}`,
		`{"id":"x","title":"a\u0000b"}`, `{"id":"x","machineIp":"::1"}`, `{"id":"x","adapterType":"mcp"}`, `{"id":5}`, `[`, "\xff",
	} {
		f.Add(s)
	}
	e, _, key, team := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body string) {
		status, b := e.doWith(fuzzClient, http.MethodPost, "/api/v1/teams/"+team+"/agents/register", key, body)
		checkAnswer(t, "register "+body, status, b)
		if status == http.StatusOK {
			var out struct{ ID, Status string }
			if json.Unmarshal(b, &out) != nil || out.Status != models.StatusPending || !models.ValidAgentID(out.ID) {
				t.Fatalf("register %q answered %s", body, b)
			}
		}
	})
}

// jsonRoutes are the API routes that take a JSON body, from the route table:
// routes added later (invite creation, join, claim) are fuzzed too.
func jsonRoutes(e *env) []gin.RouteInfo {
	var out []gin.RouteInfo
	for _, r := range e.h.Routes().(*gin.Engine).Routes() {
		if strings.HasPrefix(r.Path, "/api/") && r.Method != http.MethodGet && r.Method != http.MethodHead {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Method+out[i].Path < out[j].Method+out[j].Path })
	return out
}

// FuzzAPIBody: any body to any JSON route of the table (route chosen by the
// first argument) is never a 5xx and every refusal has an error code.
func FuzzAPIBody(f *testing.F) {
	e, admin, key, team := fuzzServer(f)
	target, _ := e.teamKey(e.org.ID)
	routes := jsonRoutes(e)
	for i := range routes {
		for _, s := range []string{`{}`, `{"name":"n","title":"t","id":"fz","orgId":"` + e.org.ID.String() + `"}`, `{"isActive":false,"enabled":true}`, `{"columns":[{"columnId":"col_backlog","canRead":true}],"transitions":["col_backlog->col_done"]}`, `{"adapterType":"http","claimSecret":"x","maxUses":2,"ttl":"1h","names":["a","b"]}`, `null`, `{"a":` + strings.Repeat("[", 100)} {
			f.Add(uint8(i), s)
		}
	}
	values := pathValues(e, admin, "target", target.ID.String(), team)
	f.Fuzz(func(t *testing.T, which uint8, body string) {
		r := routes[int(which)%len(routes)]
		path := r.Path
		for _, seg := range strings.Split(r.Path, "/") {
			if len(seg) > 1 && seg[0] == ':' {
				v, ok := paramValue(values, r.Path, seg[1:])
				if !ok {
					v = "00000000-0000-0000-0000-000000000000"
				}
				path = strings.Replace(path, seg, v, 1)
			}
		}
		auth := ""
		switch credential(r.Method, r.Path) {
		case "key":
			auth = key
		case "bearer":
			auth = admin
		}
		status, b := e.doWith(fuzzClient, r.Method, path, auth, body)
		checkAnswer(t, r.Method+" "+r.Path+" "+body, status, b)
	})
}

// FuzzAPIKeyHeader: the Authorization parser of runtime routes returns a key
// only for the ApiKey scheme (or Bearer with the key prefix), trimmed.
func FuzzAPIKeyHeader(f *testing.F) {
	for _, s := range []string{"ApiKey ag_ak_x", "apikey  ag_ak_y ", "Bearer ag_ak_z", "Bearer ag_bt_x", "ApiKey", "Basic x", " ApiKey ag_ak_", "ApiKey\tag_ak_x"} {
		f.Add(s)
	}
	gin.SetMode(gin.ReleaseMode)
	f.Fuzz(func(t *testing.T, header string) {
		c, _ := gin.CreateTestContext(httptest.NewRecorder())
		c.Request = httptest.NewRequest(http.MethodGet, "/api/v1/agent/orgs", nil)
		c.Request.Header.Set("Authorization", header)
		key, ok := apiKeyFrom(c)
		if !ok {
			if key != "" {
				t.Fatalf("%q: no key but %q", header, key)
			}
			return
		}
		scheme, _, _ := strings.Cut(strings.TrimSpace(c.GetHeader("Authorization")), " ")
		if key != strings.TrimSpace(key) || !strings.EqualFold(scheme, "ApiKey") && !(strings.EqualFold(scheme, "Bearer") && strings.HasPrefix(key, models.APIKeyPrefix)) {
			t.Fatalf("%q: key %q", header, key)
		}
	})
}

// FuzzSessionCookie: no forged session cookie authenticates.
func FuzzSessionCookie(f *testing.F) {
	for _, s := range []string{"x", "MTcwMDAwMDAwMHxkR1Z6ZEE9PXw=", strings.Repeat("A", 4000), "a|b|c", ""} {
		f.Add(s)
	}
	h, _ := startHandler(f, Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Secret: []byte("0123456789abcdef0123456789abcdef-fuzz")}, "")
	defer h.Close()
	gin.SetMode(gin.ReleaseMode)
	f.Fuzz(func(t *testing.T, value string) {
		c, _ := gin.CreateTestContext(httptest.NewRecorder())
		c.Request = httptest.NewRequest(http.MethodGet, "/agents", nil)
		c.Request.AddCookie(&http.Cookie{Name: sessionCookie, Value: value})
		if p, err := h.authenticate(c); err == nil || p != nil {
			t.Fatalf("cookie %q authenticated", value)
		}
	})
}
