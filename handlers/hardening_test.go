package handlers

import (
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/agentroster/agentroster/models"
)

var (
	inlineScriptRE = regexp.MustCompile(`(?is)<script\b([^>]*)>(.*?)</script>`)
	styleAttrRE    = regexp.MustCompile(`(?i)<[^>]+\sstyle\s*=`)
	handlerAttrRE  = regexp.MustCompile(`(?i)<[^>]+\s(on[a-z]+|hx-on[^=\s]*)\s*=`)
	styleTagRE     = regexp.MustCompile(`(?i)<style\b`)
)

// TestAuthHardeningPagesFollowCSP renders every HTML page of the route table
// (as an admin, with real objects) and finds no inline script body, style
// attribute or element, or inline event handler: the CSP `default-src 'self'`
// would block them. Every page carries the security headers.
func TestAuthHardeningPagesFollowCSP(t *testing.T) {
	e := newEnv(t)
	target, _ := e.teamKey(e.org.ID)
	e.agentIn(e.org.ID, "target", models.StatusApproved)
	e.agentIn(e.org.ID, "waiting", models.StatusPending)
	team, err := models.DefaultTeam(t.Context(), e.db, e.org.ID)
	if err != nil {
		t.Fatal(err)
	}
	values := pathValues(e, e.token("root@example.com"), "target", target.ID.String(), team.ID.String())
	c := e.signIn("root@example.com")
	pages := 0
	for _, r := range e.h.Routes().(*gin.Engine).Routes() {
		if r.Method != http.MethodGet || strings.HasPrefix(r.Path, "/api/") || strings.HasPrefix(r.Path, "/static/") || r.Path == "/events" {
			continue
		}
		path := r.Path
		for _, seg := range strings.Split(r.Path, "/") {
			if len(seg) > 1 && seg[0] == ':' {
				v, ok := paramValue(values, r.Path, seg[1:])
				if !ok {
					t.Fatalf("%s: add a value for %q to pathValues", r.Path, seg)
				}
				path = strings.Replace(path, seg, v, 1)
			}
		}
		for _, hx := range []string{"", "true"} {
			req, _ := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
			if hx != "" {
				req.Header.Set("HX-Request", hx)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body := string(b)
			pages++
			for _, m := range inlineScriptRE.FindAllStringSubmatch(body, -1) {
				if !strings.Contains(m[1], "src=") || strings.TrimSpace(m[2]) != "" {
					t.Errorf("%s (htmx %q): inline script %.120q", path, hx, m[0])
				}
			}
			for _, re := range []*regexp.Regexp{styleAttrRE, handlerAttrRE, styleTagRE} {
				if m := re.FindString(body); m != "" {
					t.Errorf("%s (htmx %q): %.120q is blocked by the CSP", path, hx, m)
				}
			}
			if strings.Contains(body, "javascript:") {
				t.Errorf("%s: javascript: URL", path)
			}
			if resp.Header.Get("Content-Type") == "text/html; charset=utf-8" && hx == "" && strings.Contains(body, "htmx.min.js") &&
				!strings.Contains(body, `"includeIndicatorStyles":false`) {
				t.Errorf("%s: htmx is not told to skip its inline indicator styles", path)
			}
			csp := resp.Header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-") {
				t.Errorf("%s: CSP %q", path, csp)
			}
			if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Referrer-Policy") != "same-origin" {
				t.Errorf("%s: headers %v", path, resp.Header)
			}
		}
	}
	// The vendored scripts and the page script are files, never inline.
	for _, name := range []string{"/static/js/htmx.min.js", "/static/js/app.js"} {
		if s, _ := e.get(c, name); s != http.StatusOK {
			t.Errorf("%s: %d", name, s)
		}
	}
	if pages < 10 {
		t.Fatalf("only %d pages checked", pages)
	}
}

// TestAuthHardeningBearerExpiry: a bearer token stops working when its
// lifetime is over.
func TestAuthHardeningBearerExpiry(t *testing.T) {
	e := newEnv(t)
	h, _ := startHandler(t, Deps{DB: e.db, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Secret: []byte("0123456789abcdef0123456789abcdef-test"), Config: Config{PublicURL: e.srv.URL, TokenTTL: time.Second}}, "")
	defer h.Close()
	srv := httptest.NewServer(h.Routes())
	defer srv.Close()
	short := &env{t: t, db: e.db, h: h, srv: srv, sa: e.sa, org: e.org, actor: e.actor}
	tok := short.token("root@example.com")
	short.call(http.MethodGet, "/api/v1/organizations", tok, nil).want(http.StatusOK)
	time.Sleep(2100 * time.Millisecond) // securecookie timestamps have second precision
	short.call(http.MethodGet, "/api/v1/organizations", tok, nil).wantError(http.StatusUnauthorized, "invalid_credential")
}

// TestAuthHardeningPasswordChangeEndsSessions: bumping the auth epoch (what a
// password change or disabling does) ends every cookie session and bearer token.
func TestAuthHardeningPasswordChangeEndsSessions(t *testing.T) {
	e := newEnv(t)
	c := e.signIn("root@example.com")
	tok := e.token("root@example.com")
	if s, _ := e.get(c, "/agents"); s != http.StatusOK {
		t.Fatalf("signed in: %d", s)
	}
	if _, err := e.db.NewUpdate().Table("users").Set("auth_epoch = auth_epoch + 1").Where("id = ?", e.sa.ID).Exec(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s, _ := e.get(c, "/agents"); s != http.StatusSeeOther {
		t.Errorf("session after the epoch bump: %d, want a redirect to login", s)
	}
	e.call(http.MethodGet, "/api/v1/organizations", tok, nil).wantError(http.StatusUnauthorized, "invalid_credential")
}

// TestAuthHardeningSessionFixation: a session id planted before login (a
// forged value or someone else's session) is never the one in use after it.
func TestAuthHardeningSessionFixation(t *testing.T) {
	e := newEnv(t)
	attacker := e.signIn("root@example.com")
	planted := sessionCookieValue(e, attacker)
	victim := e.browser()
	u, _ := url.Parse(e.srv.URL)
	victim.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: planted}})
	if resp := e.form(victim, "/login", url.Values{"email": {"root@example.com"}, "password": {testPassword}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatal(resp.Status)
	}
	if got := sessionCookieValue(e, victim); got == planted || got == "" {
		t.Fatal("login kept the planted session id")
	}
	// The planted session ended with the login that replaced it.
	if s, _ := e.get(attacker, "/agents"); s != http.StatusSeeOther {
		t.Errorf("planted session after the victim's login: %d", s)
	}
}

// secretCompareRE finds == / != / bytes.Equal on values named like secrets.
var secretCompareRE = regexp.MustCompile(`(?i)(hash|secret|token|password|digest|mac|sig)\w*(\)|\])?\s*(==|!=)\s*\w|(==|!=)\s*\w*(hash|secret|token|password|digest)|bytes\.Equal\(`)

// TestConstantTimeComparisons: wherever product code compares a secret it
// uses crypto/subtle or hmac.Equal, never == or bytes.Equal (lookups by hash
// in SQL are not comparisons in Go and are fine).
func TestConstantTimeComparisons(t *testing.T) {
	root := ".."
	found := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || strings.HasSuffix(path, "_templ.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			code, _, _ := strings.Cut(line, "//")
			if strings.Contains(code, "subtle.") || strings.Contains(code, "hmac.Equal") {
				found++
				continue
			}
			if m := secretCompareRE.FindString(code); m != "" && !strings.Contains(code, `""`) && !strings.Contains(code, "nil") && !strings.Contains(code, "len(") {
				t.Errorf("%s:%d compares a secret without crypto/subtle: %s", path, i+1, strings.TrimSpace(code))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found == 0 {
		t.Fatal("no constant-time comparison found at all")
	}
}

// TestAuthHardeningInvitePage: the public invite page, which carries its token
// in the URL, sends no referrer, cannot be framed and is not cached.
func TestAuthHardeningInvitePage(t *testing.T) {
	e := newEnv(t)
	inv := e.invite(e.token("root@example.com"), map[string]any{"agentName": "page"})
	for _, accept := range []string{"text/html", "application/json"} {
		res := e.call(http.MethodGet, "/invite/"+inv.Token, "", nil, "Accept", accept)
		res.want(http.StatusOK)
		h := res.Header
		if h.Get("Referrer-Policy") != "same-origin" || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
			h.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(h.Get("Cache-Control"), "no-store") {
			t.Errorf("invite page (%s) headers: %v", accept, h)
		}
		if accept == "text/html" && (strings.Contains(string(res.Body), "<script>") || styleAttrRE.MatchString(string(res.Body))) {
			t.Error("invite page has an inline script or style")
		}
	}
}
