package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/uptrace/bun"

	"github.com/agentroster/agentroster/handlers/live"
	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/models/cache"
	"github.com/agentroster/agentroster/models/presence"
	"github.com/agentroster/agentroster/models/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

const testPassword = "correct horse battery"

// env is a real server on a fresh database with a platform admin and an org.
type env struct {
	t     testing.TB
	db    *bun.DB
	h     *Handler
	srv   *httptest.Server
	sa    *models.User
	org   *models.Organization
	actor models.Actor
	// stop stops the handler and its background pieces as the server does
	// on shutdown (also when the test ends).
	stop func()
}

func newEnv(t testing.TB) *env {
	t.Helper()
	_, dbURL := testdb.Fresh(t)
	return newEnvOn(t, dbURL)
}

// testWebhookAllow lets the tests' webhooks reach their receivers on this
// machine (httptest servers listen on 127.0.0.1).
var testWebhookAllow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// newEnvOn is newEnv on the migrated, empty database at dbURL.
func newEnvOn(t testing.TB, dbURL string) *env {
	t.Helper()
	return newEnvWith(t, dbURL, nil)
}

// newEnvWith is newEnvOn with the handler's dependencies (config, logger)
// changed by edit first (when not nil).
func newEnvWith(t testing.TB, dbURL string, edit func(*Deps)) *env {
	t.Helper()
	db, err := models.Open(dbURL, 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := t.Context()
	sa, _, err := models.EnsureBootstrapSA(ctx, db, "root@example.com", testPassword)
	if err != nil {
		t.Fatal(err)
	}
	orgs, err := models.ListUserOrgs(ctx, db, sa.ID)
	if err != nil || len(orgs) != 1 {
		t.Fatalf("bootstrap org: %v %v", orgs, err)
	}
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	deps := Deps{
		DB: db, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Secret: []byte("0123456789abcdef0123456789abcdef-test"),
		Config: Config{PublicURL: srv.URL, WebhookAllowCIDRs: testWebhookAllow},
	}
	if edit != nil {
		edit(&deps)
	}
	h, stop := startHandler(t, deps, dbURL)
	// withGinContext: queryCounter finds the request of each query.
	srv.Config.Handler = withGinContext(validateAPI(t, h.Routes()))
	t.Cleanup(func() { srv.Close(); h.Close() })
	return &env{t: t, db: db, h: h, srv: srv, sa: sa, org: &orgs[0], actor: models.System, stop: stop}
}

// startHandler builds a handler on d (its DB, Log, Secret and Config) as
// cmd/server does: with the runtime cache, the live-update listener on
// listenURL ("": none), the presence writer and the announcer, running with
// its housekeeping until stop is called or the test ends, then stopped in the
// server's order.
func startHandler(t testing.TB, d Deps, listenURL string) (h *Handler, stop func()) {
	t.Helper()
	d.Cache = cache.New(cache.TTL, models.RandomBase62(12), cache.MaxEntries)
	d.Broker = live.NewBroker(d.Log, listenURL, d.Cache)
	d.Writer = presence.New(d.DB, d.Cache)
	d.Announcer = live.NewAnnouncer(d.DB)
	h, err := New(d)
	if err != nil {
		t.Fatal(err)
	}
	listening, stopListening := context.WithCancel(context.Background())
	writing, stopWriting := context.WithCancel(context.Background())
	var background sync.WaitGroup
	background.Go(func() { d.Broker.Run(listening) })
	background.Go(func() { h.Housekeeping(listening) })
	background.Go(func() { d.Writer.Run(writing) })
	background.Go(func() { d.Announcer.Run(writing) })
	stop = sync.OnceFunc(func() {
		stopListening()
		h.Close()
		stopWriting()
		background.Wait()
	})
	t.Cleanup(stop)
	return h, stop
}

// user creates a user with a membership in the env's org (role "" = none).
func (e *env) user(email, role string) *models.User {
	e.t.Helper()
	u, err := models.CreateUser(e.t.Context(), e.db, email, testPassword, false, e.actor)
	if err != nil {
		e.t.Fatal(err)
	}
	if role != "" {
		if err := models.AddMember(e.t.Context(), e.db, e.org.ID, u.ID, role, e.actor); err != nil {
			e.t.Fatal(err)
		}
	}
	return u
}

// browser returns a client with a cookie jar that does not follow redirects.
func (e *env) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// signIn posts the login form and returns the signed-in client.
func (e *env) signIn(email string) *http.Client {
	e.t.Helper()
	c := e.browser()
	resp := e.form(c, "/login", url.Values{"email": {email}, "password": {testPassword}})
	if resp.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("sign in %s: status %d", email, resp.StatusCode)
	}
	return c
}

// form posts a same-origin form.
func (e *env) form(c *http.Client, path string, v url.Values) *http.Response {
	e.t.Helper()
	resp, err := c.Do(formRequest(e.srv.URL, path, v))
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// get fetches a page with client c and returns status and body.
func (e *env) get(c *http.Client, path string, headers ...string) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// token logs in through the JSON API and returns the bearer token.
func (e *env) token(email string) string {
	e.t.Helper()
	var out struct{ Token string }
	res := e.call(http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": email, "password": testPassword})
	res.want(http.StatusOK).decode(&out)
	return out.Token
}

type result struct {
	t      testing.TB
	Status int
	Header http.Header
	Body   []byte
}

// jsonRequest builds a request to base+path with a JSON body (a string or
// []byte is sent as is, nil sends none) and an Authorization value: an API key
// goes as "ApiKey …", a bare token as "Bearer …", "Scheme value" as given.
func jsonRequest(method, base, path, auth string, body any, headers ...string) (*http.Request, error) {
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, base+path, r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case auth == "":
	case strings.HasPrefix(auth, models.APIKeyPrefix):
		req.Header.Set("Authorization", "ApiKey "+auth)
	case strings.Contains(auth, " "):
		req.Header.Set("Authorization", auth)
	default:
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return req, nil
}

// formRequest builds a same-origin form post to base+path.
func formRequest(base, path string, v url.Values, headers ...string) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return req
}

// call sends a JSON request with an Authorization header value (may be "").
func (e *env) call(method, path, auth string, body any, headers ...string) *result {
	e.t.Helper()
	return callJSON(e.t, method, e.srv.URL, path, auth, body, headers...)
}

// callJSON sends a JSON request to the server at base.
func callJSON(t testing.TB, method, base, path, auth string, body any, headers ...string) *result {
	t.Helper()
	req, err := jsonRequest(method, base, path, auth, body, headers...)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return &result{t: t, Status: resp.StatusCode, Header: resp.Header, Body: b}
}

func (r *result) want(status int) *result {
	r.t.Helper()
	if r.Status != status {
		r.t.Fatalf("status %d, want %d; body: %s", r.Status, status, r.Body)
	}
	return r
}

// wantError checks status and the error code of the SPEC error body.
func (r *result) wantError(status int, code string) *result {
	r.t.Helper()
	r.want(status)
	var body errorBody
	if err := json.Unmarshal(r.Body, &body); err != nil {
		r.t.Fatalf("error body is not JSON: %s", r.Body)
	}
	if body.Error.Code != code || body.Error.Message == "" {
		r.t.Fatalf("error code %q (message %q), want %q; body %s", body.Error.Code, body.Error.Message, code, r.Body)
	}
	return r
}

// errorBody decodes the SPEC error body.
type errorBody struct {
	Error struct {
		Code    string         `json:"code"`
		Message string         `json:"message"`
		Details map[string]any `json:"details"`
	} `json:"error"`
}

func (r *result) errorDetails() map[string]any {
	r.t.Helper()
	var b errorBody
	r.decode(&b)
	return b.Error.Details
}

func (r *result) decode(v any) *result {
	r.t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		r.t.Fatalf("decode %s: %v", r.Body, err)
	}
	return r
}

func (r *result) json() map[string]any {
	r.t.Helper()
	var m map[string]any
	r.decode(&m)
	return m
}
