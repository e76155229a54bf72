package handlers

import (
	"bufio"
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/agentroster/agentroster/handlers/webhooks"
	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/models/testdb"
)

// --- Agents, keys and orgs ---

// teamKey creates a team key of org (its default team) and returns it with its plaintext.
func (e *env) teamKey(org uuid.UUID) (*models.APIKey, string) {
	e.t.Helper()
	team, err := models.DefaultTeam(e.t.Context(), e.db, org)
	if err != nil {
		e.t.Fatal(err)
	}
	k, raw, err := models.CreateTeamKey(e.t.Context(), e.db, org, models.KeyInput{Name: "test key", Team: team.ID}, e.actor)
	if err != nil {
		e.t.Fatal(err)
	}
	return k, raw
}

// boundKey inserts a key bound to agent (as an invite would issue it).
func (e *env) boundKey(org uuid.UUID, agent string) (*models.APIKey, string) {
	e.t.Helper()
	a, err := models.GetAgent(e.t.Context(), e.db, org, agent)
	if err != nil {
		e.t.Fatal(err)
	}
	raw := models.NewAPIKey()
	k := &models.APIKey{OrgID: org, TeamID: a.TeamID, AgentID: &agent, Name: "bound", Prefix: raw[:12], KeyHash: models.Hash(raw), IsActive: true}
	if _, err := e.db.NewInsert().Model(k).Returning("*").Exec(e.t.Context()); err != nil {
		e.t.Fatal(err)
	}
	return k, raw
}

// agentIn registers agent id in org's default team and brings it to status.
func (e *env) agentIn(org uuid.UUID, id, status string) *models.Agent {
	e.t.Helper()
	ctx := e.t.Context()
	team, err := models.DefaultTeam(ctx, e.db, org)
	if err != nil {
		e.t.Fatal(err)
	}
	a, err := models.RegisterAgent(ctx, e.db, org, team.ID, models.RegisterInput{ID: id, Title: "Agent " + id}, e.actor)
	if err != nil {
		e.t.Fatal(err)
	}
	steps := map[string][]string{models.StatusApproved: {"approve"}, models.StatusStopped: {"approve", "stop"}}[status]
	for _, s := range steps {
		if a, err = models.TransitionAgent(ctx, e.db, org, id, s, e.actor); err != nil {
			e.t.Fatal(err)
		}
	}
	return a
}

// dbAgent reads an agent straight from the database (nil when it is gone).
func (e *env) dbAgent(org uuid.UUID, id string) *models.Agent {
	e.t.Helper()
	a, err := models.GetAgent(e.t.Context(), e.db, org, id)
	if err != nil {
		return nil
	}
	return a
}

// otherOrg creates a second org with its own admin and returns the org and the admin's email.
func (e *env) otherOrg(title, adminEmail string) *models.Organization {
	e.t.Helper()
	u, err := models.CreateUser(e.t.Context(), e.db, adminEmail, testPassword, false, e.actor)
	if err != nil {
		e.t.Fatal(err)
	}
	org, err := models.CreateOrg(e.t.Context(), e.db, title, "", &u.ID, e.actor)
	if err != nil {
		e.t.Fatal(err)
	}
	return org
}

// seedAgents inserts n agents into org's default team with one INSERT … SELECT:
// a third each pending, approved (half of those online) and stopped, one
// second apart, titles "Agent <i>".
func seedAgents(tb testing.TB, db *bun.DB, org uuid.UUID, n int) {
	tb.Helper()
	team, err := models.DefaultTeam(tb.Context(), db, org)
	if err != nil {
		tb.Fatal(err)
	}
	_, err = db.ExecContext(tb.Context(), `INSERT INTO agents (org_id, id, team_id, title, status, pickup_enabled, is_online, last_seen_at,
			machine_name, llm_version, adapter_type, joined_via, created_at)
		SELECT ?, 'agent-' || g, ?, 'Agent ' || g, s.status, s.status = 'approved', s.status = 'approved' AND g % 2 = 0,
			CASE WHEN g % 4 = 0 THEN now() END, 'host-' || (g % 50), 'claude-opus-4-7', 'mcp', 'register',
			now() - make_interval(secs => g)
		FROM generate_series(1, ?) AS g
		CROSS JOIN LATERAL (SELECT (ARRAY['pending', 'approved', 'stopped'])[g % 3 + 1] AS status) AS s`, org, team.ID, n)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := db.ExecContext(tb.Context(), "ANALYZE agents"); err != nil {
		tb.Fatal(err)
	}
}

func defaultTeamID(t *testing.T, e *env) string {
	t.Helper()
	var teams []struct{ ID string }
	e.call(http.MethodGet, "/api/v1/organizations/"+e.org.ID.String()+"/teams", e.token("root@example.com"), nil).want(http.StatusOK).decode(&teams)
	return teams[0].ID
}

// --- Members and audit ---

func (e *env) auditCount(action string) int {
	e.t.Helper()
	n, err := e.db.NewSelect().Table("audit_events").Where("action = ?", action).Count(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	return int(n)
}

func (e *env) memberRole(org, user uuid.UUID) string {
	e.t.Helper()
	role, err := models.UserRole(e.t.Context(), e.db, user, org)
	if err != nil {
		e.t.Fatal(err)
	}
	return role
}

// userID returns the id of the user with email.
func (e *env) userID(email string) uuid.UUID {
	e.t.Helper()
	var id uuid.UUID
	if err := e.db.NewRaw("SELECT id FROM users WHERE email = ?", email).Scan(e.t.Context(), &id); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// --- Requests and answers ---

// htmx posts a same-origin form as htmx does and returns status, headers and body.
func (e *env) htmx(c *http.Client, path string, v url.Values) (int, http.Header, string) {
	e.t.Helper()
	return e.post(c, path, v, "HX-Request", "true")
}

// post posts a same-origin form with extra headers and returns status, headers and body.
func (e *env) post(c *http.Client, path string, v url.Values, headers ...string) (int, http.Header, string) {
	e.t.Helper()
	resp, err := c.Do(formRequest(e.srv.URL, path, v, headers...))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func isRFC3339UTCSeconds(t *testing.T, s string) {
	t.Helper()
	ts, err := time.Parse(time.RFC3339, s)
	if err != nil || !strings.HasSuffix(s, "Z") || strings.Contains(s, ".") || ts.Location() != time.UTC {
		t.Fatalf("time %q is not RFC 3339 UTC with second precision", s)
	}
}

func sessionCookieValue(e *env, c *http.Client) string {
	u, _ := url.Parse(e.srv.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == sessionCookie {
			return ck.Value
		}
	}
	return ""
}

func match(t *testing.T, re *regexp.Regexp, body string) string {
	t.Helper()
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("%s not found in %s", re, body)
	}
	return html.UnescapeString(m[1])
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// --- Invites, joins and claims ---

// inviteOut is the create answer of POST /internal/invites.
type inviteOut struct {
	ID, OrgID, TeamID, AgentName, AdapterType, State, Token, URL string
	MaxUses, Uses, UsesLeft                                      int
}

// joinOut is the answer of POST /invites/{token}/join.
type joinOut struct {
	JoinRequestID, Status, ClaimSecret, ClaimURL, AgentName string
}

// claimOut is the 200 answer of a claim.
type claimOut struct {
	APIKey, AgentID, OrgID, TeamID string
}

// relaxInviteLimits lets one test client (one IP) make many invite and claim
// calls; the limits themselves are tested in TestInviteRateLimits.
func (e *env) relaxInviteLimits() {
	e.h.inviteIP = newLimiter(1, 1_000_000)
	e.h.claimIP = newLimiter(1, 1_000_000)
}

// invite creates an invite through the JSON API as the bearer tok.
func (e *env) invite(tok string, body map[string]any) inviteOut {
	e.t.Helper()
	if _, ok := body["orgId"]; !ok {
		body["orgId"] = e.org.ID.String()
	}
	var out inviteOut
	e.call(http.MethodPost, "/api/v1/internal/invites", tok, body).want(http.StatusCreated).decode(&out)
	return out
}

// newInvite creates an invite for an http agent through the management API
// and returns its id and link.
func (e *env) newInvite(tok, agent string) (id, link string) {
	e.t.Helper()
	inv := e.invite(tok, map[string]any{"agentName": agent, "adapterType": "http"})
	if inv.URL == "" {
		e.t.Fatal("invite without a link")
	}
	return inv.ID, inv.URL
}

func (e *env) joinInvite(token string, body any, headers ...string) *result {
	e.t.Helper()
	return e.call(http.MethodPost, "/api/v1/invites/"+token+"/join", "", body, headers...)
}

// joinNew creates an invite for agent name and joins it once: a pending request.
func (e *env) joinNew(tok, name string) (inviteOut, joinOut) {
	e.t.Helper()
	inv := e.invite(tok, map[string]any{"agentName": name})
	var j joinOut
	e.joinInvite(inv.Token, map[string]any{}).want(http.StatusCreated).decode(&j)
	return inv, j
}

func (e *env) claim(id, secret string) *result {
	e.t.Helper()
	return e.call(http.MethodPost, "/api/v1/join-requests/"+id+"/claim", "", map[string]string{"claimSecret": secret})
}

// count returns the rows of table matching where (a literal SQL condition).
func (e *env) count(table, where string, args ...any) int {
	e.t.Helper()
	n, err := e.db.NewSelect().Table(table).Where(where, args...).Count(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	return int(n)
}

// joinAnswerOut is the whole join answer, claimSecret present or not.
type joinAnswerOut struct {
	JoinRequestID, Status, AgentName, ClaimURL string
	ClaimSecret                                *string
	ClientSecret                               bool
}

// --- Webhooks ---

// received is one request a test receiver got.
type received struct {
	Header http.Header
	Body   []byte
}

// receiver is a local webhook endpoint answering with respond(n) for its n-th
// request (from 1).
type receiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	got     []received
	respond func(n int) int
}

func newReceiver(t *testing.T, respond func(n int) int) *receiver {
	r := &receiver{respond: respond}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, received{Header: req.Header.Clone(), Body: b})
		n := len(r.got)
		r.mu.Unlock()
		w.WriteHeader(r.respond(n))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// webhook adds an endpoint through the API and returns its id and secret.
func (e *env) webhook(tok, target string, events ...string) (uuid.UUID, string) {
	e.t.Helper()
	var w struct {
		ID     uuid.UUID `json:"id"`
		Secret string    `json:"secret"`
	}
	e.call(http.MethodPost, "/api/v1/organizations/"+e.org.ID.String()+"/webhooks", tok,
		map[string]any{"url": target, "events": events}).want(http.StatusCreated).decode(&w)
	if !strings.HasPrefix(w.Secret, models.WebhookSecretPrefix) {
		e.t.Fatalf("secret %q", w.Secret)
	}
	return w.ID, w.Secret
}

func (e *env) pendingDeliveries() int {
	e.t.Helper()
	n, err := e.db.NewSelect().Table("notification_outbox").Where("status = 'pending'").Count(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	return int(n)
}

// drain runs n until nothing is pending (retries included), at most 200 rounds.
func (e *env) drain(n *webhooks.Notifier) {
	e.t.Helper()
	for range 200 {
		if e.pendingDeliveries() == 0 {
			return
		}
		if _, err := n.RunOnce(e.t.Context()); err != nil {
			e.t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.t.Fatalf("%d deliveries still pending", e.pendingDeliveries())
}

func (e *env) register(key, id string) *result {
	e.t.Helper()
	team, err := models.DefaultTeam(e.t.Context(), e.db, e.org.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.call(http.MethodPost, "/api/v1/teams/"+team.ID.String()+"/agents/register", key, map[string]string{"id": id, "title": "Agent " + id})
}

// --- Live events ---

// openStream connects to /events and returns a channel of the event names received.
func openStream(t *testing.T, e *env, c *http.Client) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+"/events", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	names := make(chan string, 16)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if name, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				names <- name
			}
		}
		close(names)
	}()
	return names
}

func expectEvent(t *testing.T, names <-chan string, want string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case got, ok := <-names:
			if !ok {
				t.Fatalf("stream ended before %q", want)
			}
			if got == want {
				return
			}
			if strings.HasPrefix(got, "never") {
				t.Fatalf("received %q, which must not be delivered", got)
			}
		case <-deadline:
			t.Fatalf("no %q event within 5s", want)
		}
	}
}

// --- Metrics ---

type sample struct {
	name   string
	labels map[string]string
	value  float64
}

var (
	sampleRE = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$`)
	labelRE  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)
)

// scrape reads /metrics with token (with a token it sets as METRICS_TOKEN
// when ""; /metrics needs one) and parses the text format.
func (e *env) scrape(token string) []sample {
	e.t.Helper()
	if token == "" {
		token = "scrape-secret-default"
		e.h.cfg.MetricsToken = token
	}
	res := e.call(http.MethodGet, "/metrics", token, nil).want(http.StatusOK)
	var out []sample
	sc := bufio.NewScanner(strings.NewReader(string(res.Body)))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := sampleRE.FindStringSubmatch(line)
		if m == nil {
			e.t.Fatalf("unparsable metrics line %q", line)
		}
		v, _ := strconv.ParseFloat(m[3], 64)
		s := sample{name: m[1], labels: map[string]string{}, value: v}
		for _, l := range labelRE.FindAllStringSubmatch(m[2], -1) {
			s.labels[l[1]] = l[2]
		}
		out = append(out, s)
	}
	return out
}

// metricValue sums the samples of name whose labels include want.
func metricValue(samples []sample, name string, want map[string]string) float64 {
	total := 0.0
	for _, s := range samples {
		if s.name != name {
			continue
		}
		ok := true
		for k, v := range want {
			if s.labels[k] != v {
				ok = false
			}
		}
		if ok {
			total += s.value
		}
	}
	return total
}

// --- Every route: the route table, its path values and credentials ---

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

// pathValues creates one object of each kind a route parameter can name (in
// the env's org) and returns the values by parameter name; paramValue picks
// the one a route means.
func pathValues(e *env, admin, agent, keyID, team string) map[string]string {
	e.relaxInviteLimits()
	inv := e.invite(admin, map[string]any{"agentName": "fixture-invite", "maxUses": 5})
	var j joinOut
	e.joinInvite(inv.Token, map[string]any{"adapterType": "http"}).want(http.StatusCreated).decode(&j)
	hook, _ := e.webhook(admin, e.srv.URL+"/hook", "join_request.created")
	member := e.user("member@example.com", "viewer")
	return map[string]string{
		"agentId": agent, "teamId": team, "orgId": e.org.ID.String(), "id": keyID, "columnId": "col_backlog",
		"path": "css/app.css", "inviteId": inv.ID, "token": inv.Token, "joinRequestId": j.JoinRequestID,
		"endpointId": hook.String(), "userId": member.ID.String(), "setPasswordToken": models.RandomBase62(32),
	}
}

// paramValue returns the value of parameter name in route: ":id" names a key,
// an invite or a join request, ":token" an invite or a set-password link.
func paramValue(values map[string]string, route, name string) (string, bool) {
	switch {
	case name == "id" && strings.Contains(route, "/invites/:id"):
		name = "inviteId"
	case name == "id" && strings.Contains(route, "/join-requests/:id"):
		name = "joinRequestId"
	case name == "token" && strings.HasPrefix(route, "/set-password/"):
		name = "setPasswordToken"
	}
	v, ok := values[name]
	return v, ok
}

// authorize sets on req the credential its route takes (see credential):
// the API key, the operator's bearer token, or none (the cookie jar sends the
// session), and a same-origin Origin for the cross-origin check.
func (e *env) authorize(req *http.Request, route gin.RouteInfo, key, bearer string) {
	switch credential(route.Method, route.Path) {
	case "key":
		req.Header.Set("Authorization", "ApiKey "+key)
	case "bearer":
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	req.Header.Set("Origin", e.srv.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
}

// approvedTwice joins a two-use invite for name twice and approves both
// requests: the second re-registers the agent and supersedes the first.
func (e *env) approvedTwice(tok, name string) (first, second joinOut) {
	e.t.Helper()
	inv := e.invite(tok, map[string]any{"agentName": name, "maxUses": 2})
	for _, j := range []*joinOut{&first, &second} {
		e.joinInvite(inv.Token, map[string]any{}).want(http.StatusCreated).decode(j)
		e.call(http.MethodPost, "/api/v1/internal/join-requests/"+j.JoinRequestID+"/approve", tok, struct{}{}).want(http.StatusOK)
	}
	return first, second
}

// credential picks how a route authenticates: "key" (runtime), "bearer"
// (management API), "cookie" (pages) or "" (public).
func credential(method, path string) string {
	switch {
	case path == "/api/v1/auth/login" || !strings.HasPrefix(path, "/api/") && (path == "/login" || path == "/healthz" || path == "/readyz" || strings.HasPrefix(path, "/static/") || path == "/favicon.ico" || path == "/" || path == "/logout"):
		return ""
	case strings.HasPrefix(path, "/api/v1/invites/") || strings.HasPrefix(path, "/api/v1/join-requests/") || strings.HasPrefix(path, "/invite/") ||
		strings.HasPrefix(path, "/join-requests/"):
		return ""
	case strings.HasSuffix(path, "/agents/register") || strings.HasPrefix(path, "/api/v1/agent/") || strings.HasSuffix(path, "/mcp/list") || path == mcpPath,
		strings.HasSuffix(path, "/onboarding") && method == http.MethodGet,
		strings.HasPrefix(path, "/api/v1/agents/") && method != http.MethodPatch && method != http.MethodDelete && method != http.MethodPut && !strings.HasSuffix(path, "/pickup"):
		return "key"
	case strings.HasPrefix(path, "/api/"):
		return "bearer"
	}
	return "cookie"
}

// tableRows counts the rows of every table the server writes, as one text.
func tableRows(t testing.TB, e *env) string {
	t.Helper()
	var out string
	err := e.db.NewRaw(`SELECT concat_ws(',',
		(SELECT count(*) FROM organizations), (SELECT count(*) FROM teams), (SELECT count(*) FROM users),
		(SELECT count(*) FROM memberships), (SELECT count(*) FROM agents), (SELECT count(*) FROM api_keys),
		(SELECT count(*) FROM invites), (SELECT count(*) FROM join_requests), (SELECT count(*) FROM board_columns),
		(SELECT count(*) FROM agent_column_grants), (SELECT count(*) FROM agent_transition_grants),
		(SELECT count(*) FROM audit_events), (SELECT md5(string_agg(status || is_online::text || pickup_enabled::text || title, ',' ORDER BY id)) FROM agents),
		(SELECT md5(string_agg(is_active::text || coalesce(revoked_at::text, ''), ',' ORDER BY id)) FROM api_keys))`).Scan(context.Background(), &out)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// --- Invariants and concurrent rounds ---

// checkInvariants reports every broken invariant as a test error and returns
// how many rows broke one.
func checkInvariants(t testing.TB, db bun.IDB) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	broken, err := testdb.CheckInvariants(ctx, db)
	if err != nil {
		t.Errorf("invariants: %v", err)
		return 1
	}
	for _, b := range broken {
		t.Errorf("invariant broken: %s", b)
	}
	return len(broken)
}

// summary logs one `SUMMARY key=value …` line; cmd/reliability adds them up.
func summary(t testing.TB, kv ...any) {
	t.Helper()
	var b strings.Builder
	b.WriteString("SUMMARY")
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, " %v=%v", kv[i], kv[i+1])
	}
	t.Log(b.String())
}

// rounds is how many times each race runs: RELIABILITY_ROUNDS, else def.
func rounds(def int) int {
	if n, err := strconv.Atoi(os.Getenv("RELIABILITY_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return def
}

// raceClient is shared by the concurrent requests of the reliability tests.
var raceClient = &http.Client{Timeout: 20 * time.Second}

// do sends one request from any goroutine (it never calls t.Fatal) and
// returns status and body; transport errors are status 0.
func (e *env) do(method, path, auth string, body any, headers ...string) (int, []byte) {
	return e.doWith(raceClient, method, path, auth, body, headers...)
}

// doWith is do with a given client.
func (e *env) doWith(client *http.Client, method, path, auth string, body any, headers ...string) (int, []byte) {
	req, err := jsonRequest(method, e.srv.URL, path, auth, body, headers...)
	if err != nil {
		return 0, nil
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// targetEvents counts audit events of action on target in the env's org.
func (e *env) targetEvents(action, targetID string) int {
	e.t.Helper()
	n, err := e.db.NewSelect().Table("audit_events").
		Where("org_id = ? AND action = ? AND target_id = ?", e.org.ID, action, targetID).Count(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	return int(n)
}
