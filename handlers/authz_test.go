package handlers

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/agentroster/agentroster/models"
)

// caller is one kind of principal the route walk tries.
type caller struct {
	name    string
	browser *http.Client // HTML routes
	auth    string       // API routes: a bearer token or "ApiKey …"
	kind    string       // sa, admin, viewer, otherAdmin, otherViewer, orgKey, agentKey, otherKey, revokedKey, nobody
}

// outcome is how a route answered a caller.
type outcome string

const (
	allowed     outcome = "allowed"         // the handler ran (2xx, 3xx, 400, 409, …)
	unauthentic outcome = "unauthenticated" // 401, or a browser sent to /login
	forbidden   outcome = "forbidden"       // 403
	hidden      outcome = "hidden"          // 404
	refused     outcome = "403 or 404"      // either refusal
	signedIn    outcome = "not 401"         // any answer but unauthenticated
)

// expected is the outcome the route's declared access promises a caller.
func expected(a access, pattern string, who caller) outcome {
	keyCaller := strings.HasSuffix(who.kind, "Key")
	switch a.need {
	case needKey, needLiveKey, needKeyOrViewer:
		switch who.kind {
		case "orgKey", "agentKey":
			return allowed
		case "otherKey":
			if !strings.Contains(pattern, ":") {
				return allowed // names nothing: answers about the key's own org
			}
			return refused
		case "revokedKey", "nobody":
			return unauthentic
		}
		if a.need != needKeyOrViewer {
			return unauthentic // an operator's credential is not an API key
		}
	}
	if keyCaller || who.kind == "nobody" {
		return unauthentic
	}
	switch a.need {
	case needUser:
		if strings.Contains(pattern, ":") {
			return signedIn // the caller's own object (an invitation): others' are 404
		}
		return allowed
	case needPlatformAdmin:
		if who.kind == "sa" {
			return allowed
		}
		return forbidden
	}
	other := strings.HasPrefix(who.kind, "other")
	ownOrg := a.org == orgCurrent || a.org == orgBody // the caller's own org
	switch {
	case other && ownOrg && strings.Contains(pattern, ":"):
		return refused // an object of the walk's org, seen from the caller's own
	case other && !ownOrg:
		return hidden
	case a.need == needAdmin && (who.kind == "viewer" || who.kind == "otherViewer"):
		return forbidden
	}
	return allowed
}

func classifyAnswer(resp *http.Response) outcome {
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return unauthentic
	case http.StatusForbidden:
		return forbidden
	case http.StatusNotFound:
		return hidden
	case http.StatusSeeOther, http.StatusFound:
		if strings.HasPrefix(resp.Header.Get("Location"), "/login") {
			return unauthentic
		}
	}
	if resp.Header.Get("HX-Redirect") != "" && strings.HasPrefix(resp.Header.Get("HX-Redirect"), "/login") {
		return unauthentic
	}
	return allowed
}

func (o outcome) matches(want outcome) bool {
	return o == want || want == refused && (o == forbidden || o == hidden) || want == signedIn && o != unauthentic
}

// fixtures are fresh objects of the env's org for one call to pattern, so an
// allowed call that deletes or changes its object leaves the next call its
// own; shared supplies what the pattern does not name.
func (e *env) fixtures(saToken string, n int, pattern string, shared map[string]string) map[string]string {
	e.t.Helper()
	ctx := e.t.Context()
	p := map[string]string{}
	for k, v := range shared {
		p[k] = v
	}
	switch {
	case strings.Contains(pattern, ":agentId"):
		p["agentId"] = fmt.Sprintf("walk-%d", n)
		e.agentIn(e.org.ID, p["agentId"], models.StatusApproved)
	case strings.Contains(pattern, ":columnId"):
		// Column ids are names within an org: this one exists only in the walk's.
		p["columnId"] = fmt.Sprintf("col_walk_%d", n+100)
		if _, err := models.CreateColumn(ctx, e.db, e.org.ID, models.ColumnInput{ID: p["columnId"], Name: p["columnId"]}, e.actor); err != nil {
			e.t.Fatal(err)
		}
	case strings.Contains(pattern, "/api-keys/:id"):
		key, _ := e.teamKey(e.org.ID)
		p["keyId"] = key.ID.String()
	case strings.Contains(pattern, "/invitations/:id"), strings.Contains(pattern, "/members/pending/:id"):
		u, err := models.CreateUser(ctx, e.db, fmt.Sprintf("invitee-%d@example.com", n), testPassword, false, e.actor)
		if err != nil {
			e.t.Fatal(err)
		}
		if _, err := models.AddMemberByEmail(ctx, e.db, e.org.ID, u.Email, models.RoleViewer, e.actor); err != nil {
			e.t.Fatal(err)
		}
		pending, err := models.ListPendingMembers(ctx, e.db, e.org.ID)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, pm := range pending {
			if pm.Email == u.Email {
				p["invitationId"] = pm.ID.String()
			}
		}
	case strings.Contains(pattern, "/password-link"):
		// Links are re-sent only for users the org created who have no password.
		email := fmt.Sprintf("new-%d@example.com", n)
		if _, err := models.AddMemberByEmail(ctx, e.db, e.org.ID, email, models.RoleViewer, e.actor); err != nil {
			e.t.Fatal(err)
		}
		var id string
		if err := e.db.NewSelect().Table("users").Column("id").Where("email = ?", email).Scan(ctx, &id); err != nil {
			e.t.Fatal(err)
		}
		p["userId"] = id
	case strings.Contains(pattern, ":userId"):
		p["userId"] = e.user(fmt.Sprintf("member-%d@example.com", n), models.RoleViewer).ID.String()
	case strings.Contains(pattern, ":endpointId"):
		// An org holds at most 20 endpoints: start again from none.
		if _, err := e.db.NewDelete().Table("webhook_endpoints").Where("org_id = ?", e.org.ID).Exec(ctx); err != nil {
			e.t.Fatal(err)
		}
		ep, _, err := models.CreateWebhook(ctx, e.db, e.h.sealer, e.org.ID, models.WebhookInput{URL: "https://hooks.example.com/walk", Events: []string{models.NotifyAgentPending}}, e.actor)
		if err != nil {
			e.t.Fatal(err)
		}
		p["endpointId"] = ep.ID.String()
	case strings.Contains(pattern, "/invites/:id"), strings.Contains(pattern, "/join-requests/:id"):
		inv, j := e.joinNew(saToken, fmt.Sprintf("invited-%d", n))
		p["inviteId"], p["joinRequestId"] = inv.ID, j.JoinRequestID
	}
	return p
}

// sharedFixtures is one object of each kind, for calls that change nothing.
func (e *env) sharedFixtures(saToken string) map[string]string {
	e.t.Helper()
	p := map[string]string{"orgId": e.org.ID.String(), "token": models.RandomBase62(32), "path": "js/app.js", "agentId": "runtime-agent"}
	team, err := models.DefaultTeam(e.t.Context(), e.db, e.org.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	p["teamId"] = team.ID.String()
	for i, pattern := range []string{":userId", "/api-keys/:id", ":endpointId", "/invites/:id", ":columnId", "/members/pending/:id"} {
		for k, v := range e.fixtures(saToken, -1-i, pattern, nil) {
			p[k] = v
		}
	}
	return p
}

// fill puts the fixture values into a gin pattern; :id is the invite, join
// request or key of the route's resource.
func fill(pattern string, p map[string]string) string {
	parts := strings.Split(pattern, "/")
	for i, s := range parts {
		if s == "" || (s[0] != ':' && s[0] != '*') {
			continue
		}
		name := s[1:]
		if name == "id" {
			switch {
			case strings.Contains(pattern, "/invitations/"), strings.Contains(pattern, "/members/pending/"):
				name = "invitationId"
			case strings.Contains(pattern, "/invites/"):
				name = "inviteId"
			case strings.Contains(pattern, "/join-requests/"):
				name = "joinRequestId"
			default:
				name = "keyId"
			}
		}
		parts[i] = url.PathEscape(p[name])
	}
	return strings.Join(parts, "/")
}

// TestEveryRouteEnforcesItsDeclaredAccess walks gin's route table: every route
// has a declared access, and each kind of caller (platform admin, admin and
// viewer of the org, admin and viewer of another org, a team key and an
// agent-bound key of the org, another org's key, a revoked key, nobody) gets
// the outcome that access promises.
func TestEveryRouteEnforcesItsDeclaredAccess(t *testing.T) {
	e := newEnv(t)
	e.relaxInviteLimits()
	e.h.badKeyIP = newLimiter(1, 1_000_000)
	e.h.loginIP = newLimiter(1, 1_000_000)
	saToken := e.token("root@example.com")

	// Runtime routes act on a stable agent whose bound key is a caller.
	e.agentIn(e.org.ID, "runtime-agent", models.StatusApproved)
	_, teamKey := e.teamKey(e.org.ID)
	_, agentKey := e.boundKey(e.org.ID, "runtime-agent")
	revoked, revokedKey := e.teamKey(e.org.ID)
	if _, err := models.RevokeAPIKey(t.Context(), e.db, e.org.ID, revoked.ID, e.actor); err != nil {
		t.Fatal(err)
	}
	other := e.otherOrg("Zeta Other", "other-admin@example.com")
	e.agentIn(other.ID, "other-agent", models.StatusApproved)
	_, otherKey := e.boundKey(other.ID, "other-agent")
	otherViewer, err := models.CreateUser(t.Context(), e.db, "other-viewer@example.com", testPassword, false, e.actor)
	if err != nil {
		t.Fatal(err)
	}
	if err := models.AddMember(t.Context(), e.db, other.ID, otherViewer.ID, models.RoleViewer, e.actor); err != nil {
		t.Fatal(err)
	}
	e.user("admin@example.com", models.RoleAdmin)
	e.user("viewer@example.com", models.RoleViewer)
	operators := []caller{{name: "platform admin", kind: "sa"}, {name: "admin", kind: "admin"}, {name: "viewer", kind: "viewer"},
		{name: "admin of another org", kind: "otherAdmin"}, {name: "viewer of another org", kind: "otherViewer"}}
	emails := map[string]string{"sa": "root@example.com", "admin": "admin@example.com", "viewer": "viewer@example.com",
		"otherAdmin": "other-admin@example.com", "otherViewer": "other-viewer@example.com"}
	for i := range operators {
		operators[i].browser = e.signIn(emails[operators[i].kind])
		operators[i].auth = e.token(emails[operators[i].kind])
	}
	callers := append(operators,
		caller{name: "team key", kind: "orgKey", auth: "ApiKey " + teamKey},
		caller{name: "agent-bound key", kind: "agentKey", auth: "ApiKey " + agentKey},
		caller{name: "another org's key", kind: "otherKey", auth: "ApiKey " + otherKey},
		caller{name: "revoked key", kind: "revokedKey", auth: "ApiKey " + revokedKey},
		caller{name: "nobody", kind: "nobody"})

	eng := e.h.Routes().(*gin.Engine)
	shared := e.sharedFixtures(saToken)
	n, checked := 0, 0
	for _, ri := range eng.Routes() {
		a, ok := e.h.policy(ri.Method, ri.Path)
		if !ok {
			t.Errorf("%s %s declares no access", ri.Method, ri.Path)
			continue
		}
		if a.need == needNone || ri.Method == http.MethodHead {
			continue
		}
		runtime := a.need == needKey || a.need == needLiveKey || a.need == needKeyOrViewer
		for _, who := range callers {
			want := expected(a, ri.Path, who)
			params := shared
			if want == allowed && !runtime {
				n++
				params = e.fixtures(saToken, n, ri.Path, shared)
			}
			audits := e.count("audit_events", "true")
			got := e.callAs(ri.Method, fill(ri.Path, params), who)
			if !got.matches(want) {
				t.Errorf("%s %s (%s) as %s: %s, want %s", ri.Method, ri.Path, a, who.name, got, want)
			}
			if want != allowed && e.count("audit_events", "true") != audits {
				t.Errorf("%s %s as %s: refused, yet wrote an audit event", ri.Method, ri.Path, who.name)
			}
			checked++
		}
	}
	if checked < 1000 {
		t.Fatalf("only %d calls checked", checked)
	}
	t.Logf("%d routes × %d callers: %d calls checked", len(eng.Routes()), len(callers), checked)
}

// callAs sends one request the way the caller would: a browser with its
// cookies for pages, its Authorization for the JSON API.
func (e *env) callAs(method, path string, who caller) outcome {
	e.t.Helper()
	api := strings.HasPrefix(path, "/api/")
	// A body good enough to reach the object lookup, so the answer is about
	// the object and not about a missing field.
	body, ctype := strings.NewReader("role=viewer&name=Walk"), "application/x-www-form-urlencoded"
	if api {
		body, ctype = strings.NewReader(`{"id":"runtime-agent"}`), "application/json"
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, body)
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Origin", e.srv.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	client := e.browser()
	switch {
	case strings.HasSuffix(who.kind, "Key"):
		req.Header.Set("Authorization", who.auth)
	case who.kind == "nobody":
	case api:
		req.Header.Set("Authorization", "Bearer "+who.auth)
	default:
		client = who.browser
	}
	resp, err := client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	stream := strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	var n int64
	if !stream {
		n, _ = io.Copy(io.Discard, resp.Body)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK && n == 0 && method == http.MethodGet && !stream {
		// A roster row of an agent not in the page's org is empty, so a live
		// update removes it: nothing is shown, as for a 404.
		return hidden
	}
	if resp.StatusCode >= 500 {
		e.t.Errorf("%s %s as %s: %d", method, path, who.name, resp.StatusCode)
	}
	return classifyAnswer(resp)
}

// TestManagementByAgentIDAcrossOrgs: a management call naming an agent by id
// alone acts on the one agent of that id among the orgs the caller may act
// in, whatever the orgs are called; several are 409 ambiguous_agent naming
// them, and ?orgId= picks one.
func TestManagementByAgentIDAcrossOrgs(t *testing.T) {
	e := newEnv(t)
	sa := e.token("root@example.com")
	// An org that sorts before the env's: the old lookup only searched the first.
	first := e.otherOrg("AAA First", "first-admin@example.com")
	e.agentIn(e.org.ID, "only-here", models.StatusPending)
	e.call(http.MethodPatch, "/api/v1/agents/only-here/approve", sa, map[string]any{}).want(http.StatusOK)
	if a := e.dbAgent(e.org.ID, "only-here"); a.Status != models.StatusApproved {
		t.Fatalf("agent status %s", a.Status)
	}

	e.agentIn(e.org.ID, "twin", models.StatusApproved)
	e.agentIn(first.ID, "twin", models.StatusApproved)
	res := e.call(http.MethodPatch, "/api/v1/agents/twin/stop", sa, map[string]any{}).wantError(http.StatusConflict, "ambiguous_agent")
	ids, _ := res.errorDetails()["orgIds"].([]any)
	if len(ids) != 2 {
		t.Fatalf("ambiguous_agent names %v", ids)
	}
	if a := e.dbAgent(first.ID, "twin"); a.Status != models.StatusApproved {
		t.Fatal("an ambiguous call changed an agent")
	}
	e.call(http.MethodPatch, "/api/v1/agents/twin/stop?orgId="+first.ID.String(), sa, map[string]any{}).want(http.StatusOK)
	if e.dbAgent(first.ID, "twin").Status != models.StatusStopped || e.dbAgent(e.org.ID, "twin").Status != models.StatusApproved {
		t.Fatal("?orgId= did not pick the org")
	}

	// The admin of the first org sees only their own twin: no ambiguity.
	firstAdmin := e.token("first-admin@example.com")
	e.call(http.MethodPatch, "/api/v1/agents/twin/resume", firstAdmin, map[string]any{}).want(http.StatusOK)
	e.call(http.MethodDelete, "/api/v1/agents/only-here", firstAdmin, nil).wantError(http.StatusNotFound, "not_found")
	// A viewer of the org holding the agent is refused, not told it is absent.
	e.user("viewer@example.com", models.RoleViewer)
	e.call(http.MethodPatch, "/api/v1/agents/only-here/stop", e.token("viewer@example.com"), map[string]any{}).wantError(http.StatusForbidden, "forbidden")
	e.call(http.MethodPatch, "/api/v1/agents/nobody-has-this/stop", sa, map[string]any{}).wantError(http.StatusNotFound, "not_found")
}

// TestAgentPageFollowsTheAgentsOrg: /agents/{id} (linked from webhook
// messages) opens an agent of another of the user's orgs and switches the
// session to that org.
func TestAgentPageFollowsTheAgentsOrg(t *testing.T) {
	e := newEnv(t)
	u := e.user("second-admin@example.com", "")
	other, err := models.CreateOrg(t.Context(), e.db, "Zeta Second", "", &u.ID, e.actor)
	if err != nil {
		t.Fatal(err)
	}
	if err := models.AddMember(t.Context(), e.db, e.org.ID, u.ID, models.RoleViewer, e.actor); err != nil {
		t.Fatal(err)
	}
	e.agentIn(other.ID, "in-second", models.StatusApproved)
	e.agentIn(e.org.ID, "in-first", models.StatusApproved)
	b := e.signIn("second-admin@example.com")
	roster := func() string {
		_, body := e.get(b, "/agents")
		doc := parseHTML(t, body)
		if doc.has(`[data-agent-id="in-first"]`) == doc.has(`[data-agent-id="in-second"]`) {
			t.Fatal("the roster shows both orgs or neither")
		}
		if doc.has(`[data-agent-id="in-first"]`) {
			return "first"
		}
		return "second"
	}
	// From another site (a chat message's link) the page opens in the
	// agent's org without changing the session's.
	start := roster()
	for _, id := range []string{"in-first", "in-second"} {
		status, body := e.get(b, "/agents/"+id, "Sec-Fetch-Site", "cross-site")
		if status != http.StatusOK || parseHTML(t, body).text(`[data-testid="field-ID"]`) != id {
			t.Fatalf("/agents/%s: %d", id, status)
		}
	}
	if roster() != start {
		t.Fatal("a cross-site link switched the session's org")
	}
	// The user's own navigation switches the session to the agent's org.
	for _, id := range []string{"in-first", "in-second", "in-first"} {
		if status, body := e.get(b, "/agents/"+id, "Sec-Fetch-Site", "same-origin"); status != http.StatusOK || parseHTML(t, body).text(`[data-testid="field-ID"]`) != id {
			t.Fatalf("/agents/%s: %d", id, status)
		}
	}
	if roster() != "first" {
		t.Fatal("the session did not switch to the agent's org")
	}
	if status, _ := e.get(e.signIn("root@example.com"), "/agents/in-nowhere"); status != http.StatusNotFound {
		t.Fatalf("unknown agent: %d", status)
	}
}

// TestViewersReadWhatAdminsRead: the JSON lists that back the pages a viewer
// sees answer a viewer too, without the secrets only admins get.
func TestViewersReadWhatAdminsRead(t *testing.T) {
	e := newEnv(t)
	e.relaxInviteLimits()
	sa := e.token("root@example.com")
	e.agentIn(e.org.ID, "seen", models.StatusApproved)
	e.joinNew(sa, "pending-one")
	e.user("viewer@example.com", models.RoleViewer)
	v := e.token("viewer@example.com")
	org := e.org.ID.String()
	for _, path := range []string{"/api/v1/organizations/" + org + "/agents", "/api/v1/organizations/" + org + "/teams",
		"/api/v1/organizations/" + org + "/members", "/api/v1/organizations/" + org + "/columns",
		"/api/v1/internal/join-requests", "/api/v1/settings/api-keys", "/api/v1/audit"} {
		e.call(http.MethodGet, path, v, nil).want(http.StatusOK)
	}
	var invs []map[string]any
	e.invite(sa, map[string]any{"agentName": "waiting-one"})
	e.call(http.MethodGet, "/api/v1/internal/invites", v, nil).want(http.StatusOK).decode(&invs)
	if len(invs) != 2 {
		t.Fatalf("viewer's invites: %v", invs)
	}
	for _, inv := range invs {
		if inv["token"] != nil || inv["url"] != nil {
			t.Fatalf("a viewer got an invite link: %v", inv)
		}
	}
	e.call(http.MethodGet, "/api/v1/internal/invites", sa, nil).want(http.StatusOK).decode(&invs)
	links := 0
	for _, inv := range invs {
		if inv["url"] != nil {
			links++
		}
	}
	if links != 1 {
		t.Fatalf("an admin sees %d links for one active invite", links)
	}
}

// TestBodyOrgWhateverTheContentType: a body naming another org is read the
// same way by the authorization layer and by the handler, whatever its
// Content-Type, so a key or invite is never made in an org the body did not
// name.
func TestBodyOrgWhateverTheContentType(t *testing.T) {
	e := newEnv(t)
	other := e.otherOrg("AAA First", "first@example.com") // sorts first: the fallback org of a bearer token
	u, err := models.CreateUser(t.Context(), e.db, "both@example.com", testPassword, false, e.actor)
	if err != nil {
		t.Fatal(err)
	}
	for _, org := range []uuid.UUID{e.org.ID, other.ID} {
		if err := models.AddMember(t.Context(), e.db, org, u.ID, models.RoleAdmin, e.actor); err != nil {
			t.Fatal(err)
		}
	}
	tok := e.token("both@example.com")
	made := 0
	for _, ctype := range []string{"", "application/json", "application/merge-patch+json"} {
		for _, path := range []string{"/api/v1/settings/api-keys", "/api/v1/internal/invites"} {
			body := fmt.Sprintf(`{"orgId":%q,"name":"k","agentName":"named-%d"}`, e.org.ID, len(ctype))
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+tok)
			if ctype != "" {
				req.Header.Set("Content-Type", ctype)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var out struct{ OrgID string }
			json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if resp.StatusCode == http.StatusCreated {
				made++
				if out.OrgID != e.org.ID.String() {
					t.Fatalf("%s with Content-Type %q made it in org %s, not the body's", path, ctype, out.OrgID)
				}
			}
		}
	}
	if made < 4 {
		t.Fatalf("only %d of 6 creations answered 201", made)
	}
	if n := e.count("api_keys", "org_id = ?", other.ID) + e.count("invites", "org_id = ?", other.ID); n != 0 {
		t.Fatalf("%d keys or invites in an org no body named", n)
	}
}
