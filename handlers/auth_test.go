package handlers

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/agentroster/agentroster/models"
)

func TestLoginPageAndBadPassword(t *testing.T) {
	e := newEnv(t)
	c := e.browser()
	status, body := e.get(c, "/login")
	if status != http.StatusOK || !parseHTML(t, body).has(`form input[name="password"][type="password"]`) {
		t.Fatalf("login page: %d", status)
	}
	for _, email := range []string{"root@example.com", "nobody@example.com"} {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/login", strings.NewReader(url.Values{"email": {email}, "password": {"wrong password!"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1<<16)
		n, _ := resp.Body.Read(buf)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(buf[:n]), "Invalid email or password.") {
			t.Errorf("%s: status %d, want 401 with the generic message", email, resp.StatusCode)
		}
	}
	// Pages need a session.
	if status, _ := e.get(c, "/settings/teams"); status != http.StatusSeeOther {
		t.Fatalf("signed-out page: %d, want 303 to /login", status)
	}
}

func TestSessionRotationAndLogout(t *testing.T) {
	e := newEnv(t)
	c := e.signIn("root@example.com")
	first := sessionCookieValue(e, c)
	if status, body := e.get(c, "/settings/teams"); status != http.StatusOK || !strings.Contains(parseHTML(t, body).text("main"), "default") {
		t.Fatalf("teams page after login: %d", status)
	}
	// Signing in again issues a new session and ends the old one (no fixation).
	if resp := e.form(c, "/login", url.Values{"email": {"root@example.com"}, "password": {testPassword}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatal(resp.Status)
	}
	second := sessionCookieValue(e, c)
	if second == "" || second == first {
		t.Fatal("session cookie not rotated at login")
	}
	stale := e.browser()
	u, _ := url.Parse(e.srv.URL)
	stale.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: first}})
	if status, _ := e.get(stale, "/settings/teams"); status != http.StatusSeeOther {
		t.Fatalf("old session after re-login: %d, want redirect to login", status)
	}
	// Logout ends the session on the server: a copied cookie stops working.
	copied := e.browser()
	copied.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: second}})
	if resp := e.form(c, "/logout", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatal(resp.Status)
	}
	if status, _ := e.get(copied, "/settings/teams"); status != http.StatusSeeOther {
		t.Fatalf("session after logout: %d, want redirect to login", status)
	}
	if res := e.call(http.MethodGet, "/api/v1/organizations", "", nil, "Cookie", sessionCookie+"="+second); res.Status != http.StatusUnauthorized {
		t.Fatalf("API with logged-out cookie: %d", res.Status)
	}
}

func TestBearerTokenLogin(t *testing.T) {
	e := newEnv(t)
	e.call(http.MethodGet, "/api/v1/organizations", "", nil).wantError(http.StatusUnauthorized, "unauthorized")
	e.call(http.MethodGet, "/api/v1/organizations", "ag_bt_forged", nil).wantError(http.StatusUnauthorized, "invalid_credential")
	e.call(http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": "root@example.com", "password": "nope nope nope"}).
		wantError(http.StatusUnauthorized, "invalid_credentials")
	e.call(http.MethodPost, "/api/v1/auth/login", "", `{"email": 5}`).wantError(http.StatusBadRequest, "invalid_input")
	e.call(http.MethodPost, "/api/v1/auth/login", "", `{"email":`).wantError(http.StatusBadRequest, "malformed_json")

	res := e.call(http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": "root@example.com", "password": testPassword}).want(http.StatusOK).json()
	tok, _ := res["token"].(string)
	if !strings.HasPrefix(tok, bearerPrefix) || res["expiresAt"] == nil || res["user"].(map[string]any)["email"] != "root@example.com" {
		t.Fatalf("login answer: %v", res)
	}
	if _, leaked := res["user"].(map[string]any)["passwordHash"]; leaked {
		t.Fatal("password hash in login answer")
	}
	var orgs []models.Organization
	e.call(http.MethodGet, "/api/v1/organizations", tok, nil).want(http.StatusOK).decode(&orgs)
	if len(orgs) != 1 || orgs[0].ID != e.org.ID {
		t.Fatalf("orgs: %+v", orgs)
	}
	// A password change (auth epoch bump) ends every token issued before it.
	if _, err := e.db.NewUpdate().Table("users").Set("auth_epoch = auth_epoch + 1").Where("id = ?", e.sa.ID).Exec(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.call(http.MethodGet, "/api/v1/organizations", tok, nil).wantError(http.StatusUnauthorized, "invalid_credential")
}

// proxiedEnv is an env that believes X-Forwarded-For from the loopback, so a
// test can send requests from several client addresses.
func proxiedEnv(t *testing.T) *env {
	e := newEnv(t)
	e.h.cfg.TrustedProxies = []string{"127.0.0.1/32", "::1/128"}
	e.srv.Config.Handler = withGinContext(validateAPI(t, e.h.Routes()))
	return e
}

// loginFrom signs in through the JSON API from the client address ip.
func (e *env) loginFrom(ip, email, password string) *result {
	return e.call(http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": email, "password": password}, "X-Forwarded-For", ip)
}

// TestLoginThrottleCannotLockOut: wrong passwords slow the address that sends
// them, never the right password from another address.
func TestLoginThrottleCannotLockOut(t *testing.T) {
	e := proxiedEnv(t)
	const attacker = "203.0.113.7"
	var last *result
	for i := 0; i < 20; i++ {
		last = e.loginFrom(attacker, "root@example.com", "wrong password "+itoa(i))
		if last.Status == http.StatusTooManyRequests {
			break
		}
		last.wantError(http.StatusUnauthorized, "invalid_credentials")
	}
	last.wantError(http.StatusTooManyRequests, "rate_limited")
	if last.Header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	// The failing address stays slowed, even with the right password.
	e.loginFrom(attacker, "root@example.com", testPassword).wantError(http.StatusTooManyRequests, "rate_limited")
	// The platform admin signs in from elsewhere: API and form alike.
	e.loginFrom("198.51.100.1", "root@example.com", testPassword).want(http.StatusOK)
	resp, err := e.browser().Do(formRequest(e.srv.URL, "/login",
		url.Values{"email": {"root@example.com"}, "password": {testPassword}}, "X-Forwarded-For", "198.51.100.2"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("form sign-in from another address after the attack: %d, want 303", resp.StatusCode)
	}
	// The attacker's form post is refused with Retry-After too.
	resp, err = e.browser().Do(formRequest(e.srv.URL, "/login",
		url.Values{"email": {"root@example.com"}, "password": {testPassword}}, "X-Forwarded-For", attacker))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("attacker's form post: %d (Retry-After %q), want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	// A success refills the budget of its address and email: a user who
	// mistyped nine times, signed in, and mistypes nine more is not slowed.
	const typo = "198.51.100.3"
	for round := 0; round < 2; round++ {
		for i := 0; i < 9; i++ {
			e.loginFrom(typo, "root@example.com", "typo "+itoa(i)).wantError(http.StatusUnauthorized, "invalid_credentials")
		}
		e.loginFrom(typo, "root@example.com", testPassword).want(http.StatusOK)
	}

	// Spraying one password over many emails from one address meets the
	// per-address budget; the emails' owners still sign in elsewhere.
	const sprayer = "203.0.113.8"
	for i := 0; ; i++ {
		if i > 40 {
			t.Fatal("no per-address limit on spraying")
		}
		res := e.loginFrom(sprayer, "user"+itoa(i)+"@example.com", "Winter2026!")
		if res.Status == http.StatusTooManyRequests {
			break
		}
		res.wantError(http.StatusUnauthorized, "invalid_credentials")
	}
	e.loginFrom(sprayer, "root@example.com", testPassword).wantError(http.StatusTooManyRequests, "rate_limited")
	e.loginFrom("198.51.100.4", "root@example.com", testPassword).want(http.StatusOK)

	// Correct passwords do not spend the address's budget: an office behind
	// one NAT signs in as often as it needs to.
	const office = "198.51.100.9"
	for i := 0; i < 40; i++ {
		e.loginFrom(office, "root@example.com", testPassword).want(http.StatusOK)
	}
}

// TestPasswordChangeThrottle: wrong current passwords are limited per user
// and address, apart from sign-ins.
func TestPasswordChangeThrottle(t *testing.T) {
	e := proxiedEnv(t)
	e.user("someone@example.com", models.RoleViewer)
	tok := e.token("someone@example.com")
	change := func(ip, current string) *result {
		return e.call(http.MethodPost, "/api/v1/account/password", tok,
			map[string]string{"currentPassword": current, "password": "a brand new password"}, "X-Forwarded-For", ip)
	}
	const thief = "203.0.113.9"
	var last *result
	for i := 0; i < 20; i++ {
		last = change(thief, "guess "+itoa(i))
		if last.Status == http.StatusTooManyRequests {
			break
		}
		last.wantError(http.StatusBadRequest, "invalid_input")
	}
	last.wantError(http.StatusTooManyRequests, "rate_limited")
	if last.Header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	// Sign-ins do not share that budget, not even from the same address.
	e.loginFrom(thief, "someone@example.com", testPassword).want(http.StatusOK)
	// The user changes the password from their own address.
	change("198.51.100.5", testPassword).want(http.StatusOK)
}

func TestCrossSiteFormPostRefused(t *testing.T) {
	e := newEnv(t)
	c := e.signIn("root@example.com")
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/settings/teams", strings.NewReader("name=evil"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Origin", "https://evil.example")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site post: %d, want 403", resp.StatusCode)
	}
	teams, _ := models.ListTeams(t.Context(), e.db, e.org.ID)
	for _, tm := range teams {
		if tm.Name == "evil" {
			t.Fatal("cross-site post created a team")
		}
	}
}

func TestRoles(t *testing.T) {
	e := newEnv(t)
	e.user("admin@example.com", models.RoleAdmin)
	e.user("viewer@example.com", models.RoleViewer)
	e.user("outsider@example.com", "")
	admin, viewer, outsider := e.token("admin@example.com"), e.token("viewer@example.com"), e.token("outsider@example.com")
	teams := "/api/v1/organizations/" + e.org.ID.String() + "/teams"

	e.call(http.MethodGet, teams, viewer, nil).want(http.StatusOK)
	e.call(http.MethodPost, teams, viewer, map[string]string{"name": "ops"}).wantError(http.StatusForbidden, "forbidden")
	e.call(http.MethodGet, teams, outsider, nil).wantError(http.StatusNotFound, "not_found")
	e.call(http.MethodPost, teams, outsider, map[string]string{"name": "ops"}).wantError(http.StatusNotFound, "not_found")
	e.call(http.MethodPost, teams, admin, map[string]string{"name": "ops"}).want(http.StatusCreated)

	// Only platform admins create organizations.
	e.call(http.MethodPost, "/api/v1/organizations", admin, map[string]string{"title": "Side project"}).wantError(http.StatusForbidden, "forbidden")
	var list []models.Organization
	e.call(http.MethodGet, "/api/v1/organizations", outsider, nil).want(http.StatusOK).decode(&list)
	if len(list) != 0 {
		t.Fatalf("outsider sees orgs: %v", list)
	}

	// The viewer sees the teams page without the create form, and cannot post it.
	vc := e.signIn("viewer@example.com")
	if status, body := e.get(vc, "/settings/teams"); status != http.StatusOK || parseHTML(t, body).has(`[data-testid="new-team-form"]`) {
		t.Fatalf("viewer teams page: %d, form shown", status)
	}
	if resp := e.form(vc, "/settings/teams", url.Values{"name": {"sneaky"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("viewer form post: %d", resp.StatusCode)
	}
}

func TestOrganizationsAndTeams(t *testing.T) {
	e := newEnv(t)
	sa := e.token("root@example.com")
	var org models.Organization
	e.call(http.MethodPost, "/api/v1/organizations", sa, map[string]string{"title": "Acme Robotics", "color": "#22C55E"}).
		want(http.StatusCreated).decode(&org)
	if org.Title != "Acme Robotics" || org.Color != "#22c55e" {
		t.Fatalf("org: %+v", org)
	}
	e.call(http.MethodPost, "/api/v1/organizations", sa, map[string]string{"title": "", "color": "green"}).
		wantError(http.StatusBadRequest, "invalid_input")

	teamsURL := "/api/v1/organizations/" + org.ID.String() + "/teams"
	var teams []models.Team
	e.call(http.MethodGet, teamsURL, sa, nil).want(http.StatusOK).decode(&teams)
	if len(teams) != 1 || teams[0].Name != "default" {
		t.Fatalf("new org teams: %+v", teams)
	}
	cols, _ := models.ListColumns(t.Context(), e.db, org.ID)
	var ids []string
	for _, c := range cols {
		ids = append(ids, c.ID)
	}
	if strings.Join(ids, ",") != "col_backlog,col_in_progress,col_in_review,col_done" {
		t.Fatalf("default columns: %v", ids)
	}

	var team models.Team
	e.call(http.MethodPost, teamsURL, sa, map[string]string{"name": "build"}).want(http.StatusCreated).decode(&team)
	e.call(http.MethodPost, teamsURL, sa, map[string]string{"name": "build"}).wantError(http.StatusConflict, "team_exists")
	e.call(http.MethodPost, teamsURL, sa, map[string]string{"name": strings.Repeat("x", 101)}).wantError(http.StatusBadRequest, "invalid_input")
	doc := "# Build team\n\nRun `make test` before pushing. <script>alert(1)</script>"
	e.call(http.MethodPatch, teamsURL+"/"+team.ID.String(), sa, map[string]string{"onboarding": doc}).want(http.StatusOK).decode(&team)
	if team.Onboarding != doc || team.Name != "build" {
		t.Fatalf("updated team: %+v", team)
	}
	e.call(http.MethodPatch, teamsURL+"/not-a-uuid", sa, map[string]string{"name": "x"}).wantError(http.StatusNotFound, "not_found")

	// The onboarding editor shows the document escaped.
	c := e.signIn("root@example.com")
	status, body := e.get(c, "/settings/teams/"+team.ID.String()+"?orgId="+org.ID.String())
	if doc := parseHTML(t, body); status != http.StatusOK || strings.Contains(body, "<script>alert(1)") || doc.has("script:not([src])") || !strings.Contains(doc.Find("textarea").Text(), "<script>alert(1)") {
		t.Fatalf("team page: %d, not escaped", status)
	}

	// Every change was audited with its actor.
	n, err := e.db.NewSelect().Table("audit_events").Where("org_id = ? AND action IN ('org.created','team.created','team.updated') AND actor_id = ?", org.ID, e.sa.ID.String()).Count(t.Context())
	if err != nil || n != 3 {
		t.Fatalf("audit events: %d %v", n, err)
	}
}

func TestHealth(t *testing.T) {
	e := newEnv(t)
	e.call(http.MethodGet, "/healthz", "", nil).want(http.StatusOK)
	e.call(http.MethodGet, "/readyz", "", nil).want(http.StatusOK)
	e.db.Close()
	e.call(http.MethodGet, "/readyz", "", nil).want(http.StatusServiceUnavailable)
}

// TestLoginSprayingAtOnce: wrong passwords sent all at once from one address
// cannot outrun its budget: attempts in flight count against it, so at most
// its burst (20) are checked and the rest are refused before any hash.
func TestLoginSprayingAtOnce(t *testing.T) {
	e := proxiedEnv(t)
	var mu sync.Mutex
	answers := map[int]int{}
	var wg sync.WaitGroup
	for i := range 80 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := e.loginFrom("203.0.113.9", "user"+itoa(i)+"@example.com", "Winter2026!")
			mu.Lock()
			answers[res.Status]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if answers[http.StatusUnauthorized] > 20 || answers[http.StatusUnauthorized]+answers[http.StatusTooManyRequests] != 80 {
		t.Fatalf("80 guesses at once: %v, want at most 20 checked and the rest 429", answers)
	}
	e.loginFrom("198.51.100.20", "root@example.com", testPassword).want(http.StatusOK)
}
