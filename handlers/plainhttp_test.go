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

// TestHSTSOnlyOverHTTPS: Strict-Transport-Security on every response when
// PUBLIC_URL is https, on none otherwise.
func TestHSTSOnlyOverHTTPS(t *testing.T) {
	e := newEnv(t)
	paths := []string{"/login", "/api/v1/organizations", "/static/css/app.css", "/no-such-page", "/healthz"}
	for _, path := range paths {
		if v := e.call(http.MethodGet, path, "", nil).Header.Get("Strict-Transport-Security"); v != "" {
			t.Errorf("%s over http: Strict-Transport-Security %q", path, v)
		}
	}
	h, _ := startHandler(t, Deps{DB: e.db, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Secret: []byte("0123456789abcdef0123456789abcdef-test"), Config: Config{PublicURL: "https://roster.example.com"}}, "")
	defer h.Close()
	srv := httptest.NewServer(h.Routes())
	defer srv.Close()
	for _, path := range paths {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if v := resp.Header.Get("Strict-Transport-Security"); v != "max-age=63072000; includeSubDomains" {
			t.Errorf("%s with an https PUBLIC_URL: Strict-Transport-Security %q", path, v)
		}
		if v := resp.Header.Get("Referrer-Policy"); v != "same-origin" {
			t.Errorf("%s: Referrer-Policy %q", path, v)
		}
	}
}

// TestCrossOriginOverPlainHTTP: on http:// at a host that is not localhost
// browsers send no Sec-Fetch-Site, only Origin. A post whose Origin names the
// request's host is same-origin and goes through; Origin: null (what
// Referrer-Policy: no-referrer made Chromium send) and other origins stay
// refused; PUBLIC_URL's origin is trusted for proxies that rewrite Host.
func TestCrossOriginOverPlainHTTP(t *testing.T) {
	e := newEnv(t)
	port := strings.TrimPrefix(e.srv.URL, "http://127.0.0.1")
	login := url.Values{"email": {"root@example.com"}, "password": {testPassword}}
	post := func(host, origin string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/login", strings.NewReader(login.Encode()))
		req.Host = host
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := e.browser().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		host, origin string
		want         int
	}{
		{"roster.test" + port, "http://roster.test" + port, http.StatusSeeOther},
		{"10.1.2.3:8080", "http://10.1.2.3:8080", http.StatusSeeOther},
		{"roster.test" + port, "", http.StatusSeeOther},   // no Origin: not a browser form post
		{"internal:8080", e.srv.URL, http.StatusSeeOther}, // PUBLIC_URL's origin, behind a proxy
		{"roster.test" + port, "null", http.StatusForbidden},
		{"roster.test" + port, "http://evil.test" + port, http.StatusForbidden},
		{"roster.test" + port, "http://roster.test:1", http.StatusForbidden},
	} {
		if got := post(tc.host, tc.origin); got != tc.want {
			t.Errorf("Host %s, Origin %q: %d, want %d", tc.host, tc.origin, got, tc.want)
		}
	}
}
