package handlers

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentroster/agentroster/models"
)

// orgLink has orgAdmin (a bearer token of an admin of org) add email as a
// brand-new account and returns the set-password path it was given.
func (e *env) orgLink(org, orgAdmin, email string) string {
	e.t.Helper()
	var added struct {
		SetPasswordURL string `json:"setPasswordUrl"`
	}
	e.call(http.MethodPost, "/api/v1/organizations/"+org+"/members", orgAdmin,
		map[string]string{"email": email, "role": "viewer"}).want(http.StatusAccepted).decode(&added)
	if added.SetPasswordURL == "" {
		e.t.Fatalf("no set-password link for %s", email)
	}
	return strings.TrimPrefix(added.SetPasswordURL, e.srv.URL)
}

// TestOrgLinkDiesWhenItsUserIsPromotedOrDisabled: a set-password link an org
// admin holds stops working once a platform admin promotes or disables its
// user before it is used (it would otherwise hand the org admin a platform
// admin account), and stays dead after the user is demoted or re-enabled.
func TestOrgLinkDiesWhenItsUserIsPromotedOrDisabled(t *testing.T) {
	e := newEnv(t)
	sa := e.token("root@example.com")
	orgA := e.otherOrg("Org A", "a-admin@example.com")
	aAdmin := e.token("a-admin@example.com")
	c := e.browser()
	for _, tc := range []struct{ email, field string }{{"newops@example.com", "isSa"}, {"parked@example.com", "disabled"}} {
		path := e.orgLink(orgA.ID.String(), aAdmin, tc.email)
		id := e.userID(tc.email)
		e.call(http.MethodPatch, "/api/v1/users/"+id.String(), sa, map[string]bool{tc.field: true}).want(http.StatusOK)
		if status, _ := e.get(c, path); status != http.StatusGone {
			t.Fatalf("%s: link after %s=true: GET %d, want 410", tc.email, tc.field, status)
		}
		e.call(http.MethodPatch, "/api/v1/users/"+id.String(), sa, map[string]bool{tc.field: false}).want(http.StatusOK)
		if status, _, body := e.post(c, path, url.Values{"password": {testPassword}}); status != http.StatusGone || !parseHTML(t, body).hasText("already used or has expired") {
			t.Fatalf("%s: link after %s=true then false: POST %d, want 410", tc.email, tc.field, status)
		}
		e.call(http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": tc.email, "password": testPassword}).
			wantError(http.StatusUnauthorized, "invalid_credentials")
	}
	// The org may issue a fresh link for its (again ordinary) user, and it works.
	id := e.userID("parked@example.com")
	var fresh passwordLinkJSON
	e.call(http.MethodPost, "/api/v1/organizations/"+orgA.ID.String()+"/members/"+id.String()+"/password-link", aAdmin, nil).
		want(http.StatusOK).decode(&fresh)
	if status, _, _ := e.post(c, strings.TrimPrefix(fresh.SetPasswordURL, e.srv.URL), url.Values{"password": {testPassword}}); status != http.StatusSeeOther {
		t.Fatalf("fresh link: %d", status)
	}
	e.token("parked@example.com")
}

// TestOrgLinkUsableOnlyForAnOrdinaryMemberWithoutPassword: whatever happened
// to the user behind the token's back (state written straight to the
// database, as an older server could leave it), an org-issued link sets no
// password for a platform admin, a disabled user, a user who already has a
// password or one no longer a member of the org that issued it; a platform
// admin's reset link keeps working for a platform admin.
func TestOrgLinkUsableOnlyForAnOrdinaryMemberWithoutPassword(t *testing.T) {
	e := newEnv(t)
	sa := e.token("root@example.com")
	orgA := e.otherOrg("Org A", "a-admin@example.com")
	aAdmin := e.token("a-admin@example.com")
	c := e.browser()
	cases := []struct{ email, change string }{
		{"promoted@example.com", "UPDATE users SET is_sa = true WHERE id = ?"},
		{"disabled@example.com", "UPDATE users SET disabled_at = now() WHERE id = ?"},
		{"haspw@example.com", "UPDATE users SET password_hash = (SELECT password_hash FROM users WHERE email = 'root@example.com') WHERE id = ?"},
		{"removed@example.com", "DELETE FROM memberships WHERE user_id = ?"},
	}
	for _, tc := range cases {
		path := e.orgLink(orgA.ID.String(), aAdmin, tc.email)
		id := e.userID(tc.email)
		if _, err := e.db.NewRaw(tc.change, id).Exec(t.Context()); err != nil {
			t.Fatal(err)
		}
		if status, _, _ := e.post(c, path, url.Values{"password": {"taken over password"}}); status != http.StatusGone {
			t.Fatalf("%s: org link used: %d, want 410", tc.email, status)
		}
		if status, _ := e.get(c, path); status != http.StatusGone {
			t.Fatalf("%s: org link page: %d, want 410", tc.email, status)
		}
		e.call(http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": tc.email, "password": "taken over password"}).
			wantError(http.StatusUnauthorized, "invalid_credentials")
	}
	if n := e.auditCount("user.password_set"); n != 0 {
		t.Fatalf("%d passwords set through refused links", n)
	}
	// A platform admin's own reset link is not bound to an org: it works for
	// a platform admin.
	id := e.userID("promoted@example.com")
	var reset passwordLinkJSON
	e.call(http.MethodPost, "/api/v1/users/"+id.String()+"/reset-password", sa, nil).want(http.StatusOK).decode(&reset)
	if status, _, _ := e.post(c, strings.TrimPrefix(reset.SetPasswordURL, e.srv.URL), url.Values{"password": {testPassword}}); status != http.StatusSeeOther {
		t.Fatalf("platform reset link of a platform admin: %d", status)
	}
	e.token("promoted@example.com")
}

// TestConcurrentPasswordChangesOneWins: two changes of the same password sent
// together, both with the right current password: exactly one takes effect,
// the other is refused, and only the winner's new password signs in. The
// test holds the user's row so both requests reach the database write before
// either can finish.
func TestConcurrentPasswordChangesOneWins(t *testing.T) {
	e := newEnv(t)
	u := e.user("pat@example.com", models.RoleViewer)
	bearer := e.token("pat@example.com")
	ctx := t.Context()

	hold, err := e.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback()
	if _, err := hold.ExecContext(ctx, "SELECT 1 FROM users WHERE id = ? FOR UPDATE", u.ID); err != nil {
		t.Fatal(err)
	}
	passwords := []string{"first new password", "second new password"}
	results := make([]*result, len(passwords))
	var wg sync.WaitGroup
	var answered atomic.Int32
	for i, pw := range passwords {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = callJSON(t, http.MethodPost, e.srv.URL, "/api/v1/account/password", bearer,
				map[string]string{"currentPassword": testPassword, "password": pw})
			answered.Add(1)
		}()
	}
	// Both requests wait on the held row (or have already been answered).
	for {
		var waiting int
		err := e.db.NewRaw(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND wait_event_type = 'Lock' AND query ILIKE '%users%'`).Scan(ctx, &waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting >= len(passwords) || ctx.Err() != nil {
			break
		}
		if int(answered.Load()) == len(passwords) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := hold.Rollback(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	won := -1
	for i, r := range results {
		if r == nil {
			t.Fatal("a request failed")
		}
		if r.Status == http.StatusOK {
			if won >= 0 {
				t.Fatalf("both concurrent password changes succeeded")
			}
			won = i
			continue
		}
		if r.Status == http.StatusConflict {
			r.wantError(http.StatusConflict, "password_changed")
		} else {
			r.wantError(http.StatusUnauthorized, "invalid_credential")
		}
	}
	if won < 0 {
		t.Fatal("no concurrent password change succeeded")
	}
	e.call(http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": "pat@example.com", "password": passwords[won]}).want(http.StatusOK)
	e.call(http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": "pat@example.com", "password": passwords[1-won]}).
		wantError(http.StatusUnauthorized, "invalid_credentials")
	if n := e.auditCount("user.password_changed"); n != 1 {
		t.Fatalf("%d password changes audited, want 1", n)
	}
}

// TestOrgTitlesUniqueEverywhere: no route gives two organizations the same
// title (trimmed, any case): the platform form, and renames through the JSON
// API and the platform page. Renaming an org to its own title in another case
// is fine.
func TestOrgTitlesUniqueEverywhere(t *testing.T) {
	e := newEnv(t)
	sa := e.token("root@example.com")
	c := e.signIn("root@example.com")
	before := e.count("organizations", "true")

	status, _, body := e.post(c, "/platform/orgs", url.Values{"title": {" " + strings.ToUpper(e.org.Title) + " "}, "color": {"#22c55e"}})
	if status != http.StatusConflict || !parseHTML(t, body).hasText("already the title of another organization") {
		t.Fatalf("platform form with a taken title: %d", status)
	}
	if n := e.count("organizations", "true"); n != before {
		t.Fatalf("%d organizations after a refused create, want %d", n, before)
	}
	var other models.Organization
	e.call(http.MethodPost, "/api/v1/organizations", sa, map[string]any{"title": "Bravo Works"}).want(http.StatusCreated).decode(&other)

	path := "/api/v1/organizations/" + other.ID.String()
	e.call(http.MethodPatch, path, sa, map[string]any{"title": strings.ToLower(e.org.Title)}).wantError(http.StatusConflict, "org_exists")
	e.call(http.MethodPatch, path, sa, map[string]any{"title": "BRAVO works"}).want(http.StatusOK)
	if status, _, _ := e.post(c, "/platform/orgs/"+other.ID.String(), url.Values{"title": {e.org.Title}, "color": {"#22c55e"}}); status != http.StatusConflict {
		t.Fatalf("platform rename to a taken title: %d", status)
	}
	if _, err := models.UpdateOrg(t.Context(), e.db, e.org.ID, "bravo WORKS", "#22c55e", e.actor); err == nil {
		t.Fatal("models.UpdateOrg gave two orgs one title")
	}
	got, err := models.GetOrg(t.Context(), e.db, other.ID)
	if err != nil || got.Title != "BRAVO works" {
		t.Fatalf("title after refused renames: %q %v", got.Title, err)
	}
}

// TestConcurrentOrgCreatesOneWins: the same new title sent by several
// requests at once creates exactly one organization.
func TestConcurrentOrgCreatesOneWins(t *testing.T) {
	e := newEnv(t)
	sa := e.token("root@example.com")
	before := e.count("organizations", "true")
	const n = 4
	statuses := make([]*result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			title := "Race Org"
			if i%2 == 1 {
				title = " race ORG "
			}
			statuses[i] = callJSON(t, http.MethodPost, e.srv.URL, "/api/v1/organizations", sa, map[string]any{"title": title})
		}()
	}
	wg.Wait()
	created := 0
	for _, r := range statuses {
		if r.Status == http.StatusCreated {
			created++
			continue
		}
		r.wantError(http.StatusConflict, "org_exists")
	}
	if created != 1 {
		t.Fatalf("%d concurrent creates of one title succeeded, want 1", created)
	}
	if got := e.count("organizations", "true"); got != before+1 {
		t.Fatalf("%d organizations, want %d", got, before+1)
	}
}
