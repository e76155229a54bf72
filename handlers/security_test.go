package handlers

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/login", "/api/v1/organizations", "/static/css/app.css"} {
		res := e.call(http.MethodGet, path, "", nil)
		csp := res.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get("Referrer-Policy") != "same-origin" {
			t.Errorf("%s: headers %v", path, res.Header)
		}
	}
	// No inline script or style in a rendered page (the CSP would block it).
	_, body := e.get(e.signIn("root@example.com"), "/settings/teams")
	for _, bad := range []string{"<script>", "style=\"", " onclick=", "javascript:"} {
		if strings.Contains(body, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	if !strings.Contains(body, `"includeIndicatorStyles":false`) {
		t.Error("htmx is not told to skip its inline indicator styles")
	}
}

func TestSecureCookieBehindHTTPS(t *testing.T) {
	e := newEnv(t)
	h, _ := startHandler(t, Deps{DB: e.db, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Secret: []byte("0123456789abcdef0123456789abcdef-test"), Config: Config{PublicURL: "https://roster.example.com"}}, "")
	defer h.Close()
	srv := httptest.NewServer(h.Routes())
	defer srv.Close()
	c := e.browser()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/login", strings.NewReader(url.Values{"email": {"root@example.com"}, "password": {testPassword}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	set := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"Secure", "HttpOnly", "SameSite=Lax"} {
		if !strings.Contains(set, want) {
			t.Errorf("Set-Cookie %q lacks %s", set, want)
		}
	}
}

func TestStaticFiles(t *testing.T) {
	e := newEnv(t)
	res := e.call(http.MethodGet, "/static/js/htmx.min.js?v=1", "", nil).want(http.StatusOK)
	if !strings.Contains(res.Header.Get("Cache-Control"), "immutable") {
		t.Errorf("versioned asset Cache-Control %q", res.Header.Get("Cache-Control"))
	}
	for _, path := range []string{"/static/../go.mod", "/static/%2e%2e/static.go", "/static/static.go", "/static/css/input.css", "/static/js/", "/static/..%2f..%2fetc%2fpasswd"} {
		res := e.call(http.MethodGet, path, "", nil)
		if res.Status != http.StatusNotFound && res.Status != http.StatusBadRequest {
			t.Errorf("%s: status %d", path, res.Status)
		}
		if strings.Contains(string(res.Body), "package static") || strings.Contains(string(res.Body), "root:") {
			t.Errorf("%s leaked a file", path)
		}
	}
}
