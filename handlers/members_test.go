package handlers

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/agentroster/agentroster/models"
)

func TestMembersAddChangeRemove(t *testing.T) {
	e := newEnv(t)
	admin := e.user("boss@example.com", models.RoleAdmin)
	tok := e.token("boss@example.com")
	base := "/api/v1/organizations/" + e.org.ID.String() + "/members"
	addedBefore := e.auditCount("member.added")

	var added struct {
		Email          string `json:"email"`
		Role           string `json:"role"`
		Status         string `json:"status"`
		SetPasswordURL string `json:"setPasswordUrl"`
	}
	e.call(http.MethodPost, base, tok, map[string]string{"email": " New@Example.com ", "role": "viewer"}).
		want(http.StatusAccepted).decode(&added)
	if added.Email != "new@example.com" || added.Role != "viewer" || added.Status != "invited" ||
		!strings.HasPrefix(added.SetPasswordURL, e.srv.URL+"/set-password/") {
		t.Fatalf("added member: %+v", added)
	}
	if e.auditCount("member.added") != addedBefore+1 || e.auditCount("user.created") < 1 || e.auditCount("user.password_link_issued") != 1 {
		t.Fatal("adding a member wrote no audit event")
	}
	newUser, err := models.GetMember(t.Context(), e.db, e.org.ID, e.userID("new@example.com"))
	if err != nil || newUser.State() != "invited" {
		t.Fatalf("new user is not an invited member: %+v %v", newUser, err)
	}
	// The link's token is stored only as a hash.
	raw := strings.TrimPrefix(added.SetPasswordURL, e.srv.URL+"/set-password/")
	var stored int
	e.db.NewRaw("SELECT count(*) FROM password_tokens WHERE token_hash = ?", models.Hash(raw)).Scan(t.Context(), &stored)
	if stored != 1 {
		t.Fatal("set-password token not stored by its hash")
	}

	// An existing user gets an invitation: no link, and they are not a member yet.
	e.user("existing@example.com", "")
	var existing map[string]any
	e.call(http.MethodPost, base, tok, map[string]string{"email": "existing@example.com", "role": "admin"}).want(http.StatusAccepted).decode(&existing)
	if v, ok := existing["setPasswordUrl"]; !ok || v != nil || existing["status"] != "invited" {
		t.Fatalf("existing user added with a link: %v", existing)
	}
	if e.memberRole(e.org.ID, e.userID("existing@example.com")) != "" {
		t.Fatal("an existing user became a member without accepting")
	}
	e.call(http.MethodPost, base, tok, map[string]string{"email": "existing@example.com", "role": "viewer"}).wantError(http.StatusConflict, "already_invited")
	// The invitee accepts: now a member with the invited role.
	etok := e.token("existing@example.com")
	var invs []struct{ ID, OrgID string }
	e.call(http.MethodGet, "/api/v1/account/invitations", etok, nil).want(http.StatusOK).decode(&invs)
	if len(invs) != 1 || invs[0].OrgID != e.org.ID.String() {
		t.Fatalf("invitations: %+v", invs)
	}
	e.call(http.MethodPost, "/api/v1/account/invitations/"+invs[0].ID+"/accept", etok, nil).want(http.StatusOK)
	if e.memberRole(e.org.ID, e.userID("existing@example.com")) != "admin" || e.auditCount("member.invitation_accepted") != 1 {
		t.Fatal("accepting the invitation did not make a member, or was not audited")
	}
	e.call(http.MethodPost, "/api/v1/account/invitations/"+invs[0].ID+"/accept", etok, nil).wantError(http.StatusNotFound, "not_found")

	// Bad input: a clear 4xx with a code, nothing changed.
	before, _ := models.ListMembers(t.Context(), e.db, e.org.ID)
	e.call(http.MethodPost, base, tok, map[string]string{"email": "not-an-email", "role": "viewer"}).wantError(http.StatusBadRequest, "invalid_input")
	d := e.call(http.MethodPost, base, tok, map[string]string{"email": "x@example.com", "role": "owner"}).wantError(http.StatusBadRequest, "invalid_input").errorDetails()
	if _, ok := d["fields"].(map[string]any)["role"]; !ok {
		t.Fatalf("unknown role: details %v", d)
	}
	e.call(http.MethodPost, base, tok, map[string]string{"email": "NEW@example.com", "role": "admin"}).wantError(http.StatusConflict, "already_member")
	e.call(http.MethodPatch, base+"/"+newUser.UserID.String(), tok, map[string]string{"role": "root"}).wantError(http.StatusBadRequest, "invalid_input")
	e.call(http.MethodPatch, base+"/"+uuid.NewString(), tok, map[string]string{"role": "admin"}).wantError(http.StatusNotFound, "not_found")
	after, _ := models.ListMembers(t.Context(), e.db, e.org.ID)
	if len(after) != len(before) {
		t.Fatalf("bad input changed the members: %d → %d", len(before), len(after))
	}
	if n, _ := e.db.NewSelect().Table("users").Where("email = 'x@example.com'").Count(t.Context()); n != 0 {
		t.Fatal("a refused add created a user")
	}

	// Change role.
	e.call(http.MethodPatch, base+"/"+newUser.UserID.String(), tok, map[string]string{"role": "admin"}).want(http.StatusOK)
	if e.memberRole(e.org.ID, newUser.UserID) != "admin" || e.auditCount("member.role_changed") != 1 {
		t.Fatal("role change not stored or not audited")
	}

	// List.
	var list []map[string]any
	e.call(http.MethodGet, base, tok, nil).want(http.StatusOK).decode(&list)
	if len(list) != 4 {
		t.Fatalf("members: %v", list)
	}

	// Remove: the member loses this org at once; their session lives on
	// (they are in no other org, so there is nothing to show), their bearer
	// token is refused here.
	viewer := e.user("leaver@example.com", models.RoleViewer)
	vc := e.signIn("leaver@example.com")
	vtok := e.token("leaver@example.com")
	if status, _ := e.get(vc, "/agents"); status != http.StatusOK {
		t.Fatalf("member before removal: %d", status)
	}
	e.call(http.MethodDelete, base+"/"+viewer.ID.String(), tok, nil).want(http.StatusOK)
	if status, body := e.get(vc, "/agents"); status != http.StatusNotFound || strings.Contains(body, e.org.Title) {
		t.Fatalf("removed member's session: %d, want 404 and nothing of the org", status)
	}
	if status, _ := e.get(vc, "/account"); status != http.StatusOK {
		t.Fatalf("removed member's account page: %d, want 200 (still signed in)", status)
	}
	e.call(http.MethodGet, base, vtok, nil).wantError(http.StatusNotFound, "not_found")
	if e.memberRole(e.org.ID, viewer.ID) != "" || e.auditCount("member.removed") != 1 {
		t.Fatal("removal not stored or not audited")
	}
	e.call(http.MethodDelete, base+"/"+viewer.ID.String(), tok, nil).wantError(http.StatusNotFound, "not_found")
	_ = admin
}

func TestLastAdminGuard(t *testing.T) {
	e := newEnv(t)
	org := e.otherOrg("Solo", "solo@example.com")
	tok := e.token("solo@example.com")
	solo, _ := models.ListMembers(t.Context(), e.db, org.ID)
	base := "/api/v1/organizations/" + org.ID.String() + "/members/" + solo[0].UserID.String()

	res := e.call(http.MethodPatch, base, tok, map[string]string{"role": "viewer"}).wantError(http.StatusConflict, "last_admin")
	if !strings.Contains(string(res.Body), "at least one admin") {
		t.Fatalf("last admin message: %s", res.Body)
	}
	e.call(http.MethodDelete, base, tok, nil).wantError(http.StatusConflict, "last_admin")
	if e.memberRole(org.ID, solo[0].UserID) != "admin" {
		t.Fatal("last admin changed")
	}
	// With a second admin, the first may step down.
	e.call(http.MethodPost, "/api/v1/organizations/"+org.ID.String()+"/members", tok,
		map[string]string{"email": "second@example.com", "role": "admin"}).want(http.StatusAccepted)
	e.call(http.MethodPatch, base, tok, map[string]string{"role": "viewer"}).want(http.StatusOK)
	// Now solo is a viewer: no more admin actions.
	e.call(http.MethodDelete, base, tok, nil).wantError(http.StatusForbidden, "forbidden")
}

// TestLastAdminConcurrent: two admins demoting each other at once leave one admin.
func TestLastAdminConcurrent(t *testing.T) {
	e := newEnv(t)
	org := e.otherOrg("Pair", "a@example.com")
	b, err := models.AddMemberByEmail(t.Context(), e.db, org.ID, "b@example.com", models.RoleAdmin, e.actor)
	if err != nil {
		t.Fatal(err)
	}
	ms, _ := models.ListMembers(t.Context(), e.db, org.ID)
	errs := make(chan error, 2)
	for _, m := range ms {
		go func() {
			_, err := models.ChangeMemberRole(t.Context(), e.db, org.ID, m.UserID, models.RoleViewer, e.actor)
			errs <- err
		}()
	}
	ok := 0
	for range 2 {
		if err := <-errs; err == nil {
			ok++
		}
	}
	admins := 0
	for _, m := range ms {
		if e.memberRole(org.ID, m.UserID) == models.RoleAdmin {
			admins++
		}
	}
	if ok != 1 || admins != 1 {
		t.Fatalf("concurrent demotions: %d succeeded, %d admins left (b=%s)", ok, admins, b.Email)
	}
}

func TestSetPasswordLinkUsedOnce(t *testing.T) {
	e := newEnv(t)
	tok := e.token("root@example.com")
	var added struct {
		SetPasswordURL string `json:"setPasswordUrl"`
	}
	e.call(http.MethodPost, "/api/v1/organizations/"+e.org.ID.String()+"/members", tok,
		map[string]string{"email": "fresh@example.com", "role": "viewer"}).want(http.StatusAccepted).decode(&added)
	path := strings.TrimPrefix(added.SetPasswordURL, e.srv.URL)

	c := e.browser()
	// A user without a password cannot sign in.
	if resp := e.form(c, "/login", url.Values{"email": {"fresh@example.com"}, "password": {testPassword}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("login before setting a password: %d", resp.StatusCode)
	}
	status, body := e.get(c, path)
	if doc := parseHTML(t, body); status != http.StatusOK || !doc.hasText("fresh@example.com") || !doc.has(`[data-testid="set-password-form"]`) {
		t.Fatalf("set-password page: %d", status)
	}
	if status, _, body := e.post(c, path, url.Values{"password": {"short"}}); status != http.StatusBadRequest || !parseHTML(t, body).hasText("at least 10") {
		t.Fatalf("short password: %d", status)
	}
	if status, h, _ := e.post(c, path, url.Values{"password": {testPassword}}); status != http.StatusSeeOther || h.Get("Location") != "/login" {
		t.Fatalf("set password: %d", status)
	}
	e.signIn("fresh@example.com")
	// Used once: refused afterwards, on GET and POST.
	if status, body := e.get(c, path); status != http.StatusGone || !parseHTML(t, body).hasText("already used or has expired") {
		t.Fatalf("used link: %d", status)
	}
	if status, _, _ := e.post(c, path, url.Values{"password": {"another password 1"}}); status != http.StatusGone {
		t.Fatalf("used link again: %d", status)
	}
	if status, _ := e.get(c, "/set-password/"+models.RandomBase62(43)); status != http.StatusNotFound {
		t.Fatalf("unknown link: %d", status)
	}
	if e.auditCount("user.password_set") != 1 {
		t.Fatal("setting a password not audited")
	}
	// An expired link is refused too.
	var added2 struct {
		SetPasswordURL string `json:"setPasswordUrl"`
	}
	e.call(http.MethodPost, "/api/v1/organizations/"+e.org.ID.String()+"/members", tok,
		map[string]string{"email": "late@example.com", "role": "viewer"}).want(http.StatusAccepted).decode(&added2)
	raw := added2.SetPasswordURL[strings.LastIndex(added2.SetPasswordURL, "/")+1:]
	e.db.NewRaw("UPDATE password_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = ?", models.Hash(raw)).Exec(t.Context())
	if status, _ := e.get(c, "/set-password/"+raw); status != http.StatusGone {
		t.Fatalf("expired link: %d", status)
	}
}

func TestChangePasswordEndsOtherSessions(t *testing.T) {
	e := newEnv(t)
	e.user("pat@example.com", models.RoleViewer)
	c1 := e.signIn("pat@example.com")
	c2 := e.signIn("pat@example.com")
	bearer := e.token("pat@example.com")

	if status, _, body := e.post(c1, "/account/password", url.Values{"currentPassword": {"wrong password"}, "password": {"brand new password"}}); status != http.StatusBadRequest || !parseHTML(t, body).hasText("not your current password") {
		t.Fatalf("wrong current password: %d", status)
	}
	if status, h, _ := e.post(c1, "/account/password", url.Values{"currentPassword": {testPassword}, "password": {"brand new password"}}); status != http.StatusSeeOther || h.Get("Location") != "/account?saved=1" {
		t.Fatalf("change password: %d", status)
	}
	if status, body := e.get(c1, "/account?saved=1"); status != http.StatusOK || !strings.Contains(parseHTML(t, body).text(`[data-testid="flash"]`), "Password changed") {
		t.Fatalf("own session after change: %d", status)
	}
	if status, _ := e.get(c2, "/agents"); status != http.StatusSeeOther {
		t.Fatalf("other session after change: %d, want 303 to /login", status)
	}
	e.call(http.MethodGet, "/api/v1/organizations", bearer, nil).wantError(http.StatusUnauthorized, "invalid_credential")
	if e.auditCount("user.password_changed") != 1 {
		t.Fatal("password change not audited")
	}

	// JSON: a bearer caller gets a fresh token; its old one stops working.
	var login struct{ Token string }
	e.call(http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": "pat@example.com", "password": "brand new password"}).want(http.StatusOK).decode(&login)
	e.call(http.MethodPost, "/api/v1/account/password", login.Token, map[string]string{"currentPassword": "nope", "password": "x"}).wantError(http.StatusBadRequest, "invalid_input")
	var out struct {
		Success bool
		Token   string
	}
	e.call(http.MethodPost, "/api/v1/account/password", login.Token, map[string]string{"currentPassword": "brand new password", "password": testPassword}).want(http.StatusOK).decode(&out)
	if !out.Success || out.Token == "" {
		t.Fatalf("password change answer: %+v", out)
	}
	e.call(http.MethodGet, "/api/v1/organizations", login.Token, nil).wantError(http.StatusUnauthorized, "invalid_credential")
	e.call(http.MethodGet, "/api/v1/organizations", out.Token, nil).want(http.StatusOK)
	if status, _ := e.get(c1, "/agents"); status != http.StatusSeeOther {
		t.Fatalf("cookie session after a bearer password change: %d", status)
	}
}

func TestDisabledUserRefusedAtOnce(t *testing.T) {
	e := newEnv(t)
	u := e.user("gone@example.com", models.RoleAdmin)
	c := e.signIn("gone@example.com")
	bearer := e.token("gone@example.com")
	sa := e.token("root@example.com")

	e.call(http.MethodPatch, "/api/v1/users/"+u.ID.String(), sa, map[string]bool{"disabled": true}).want(http.StatusOK)
	if status, _ := e.get(c, "/agents"); status != http.StatusSeeOther {
		t.Fatalf("disabled user's cookie: %d, want 303 to /login", status)
	}
	e.call(http.MethodGet, "/api/v1/organizations", bearer, nil).wantError(http.StatusUnauthorized, "invalid_credential")
	e.call(http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": "gone@example.com", "password": testPassword}).wantError(http.StatusUnauthorized, "invalid_credentials")
	if e.auditCount("user.disabled") != 1 {
		t.Fatal("disable not audited")
	}
	// Re-enabled, the user signs in again (old credentials stay dead).
	e.call(http.MethodPatch, "/api/v1/users/"+u.ID.String(), sa, map[string]bool{"disabled": false}).want(http.StatusOK)
	e.call(http.MethodGet, "/api/v1/organizations", bearer, nil).wantError(http.StatusUnauthorized, "invalid_credential")
	e.token("gone@example.com")

	// Guards: not yourself, not the last platform admin; only platform admins.
	e.call(http.MethodPatch, "/api/v1/users/"+e.sa.ID.String(), sa, map[string]bool{"disabled": true}).wantError(http.StatusConflict, "own_account")
	if _, err := models.SetUserDisabled(t.Context(), e.db, e.sa.ID, true, e.actor); err == nil {
		t.Fatal("disabled the last platform admin")
	}
	e.call(http.MethodPatch, "/api/v1/users/"+e.sa.ID.String(), e.token("gone@example.com"), map[string]bool{"disabled": true}).wantError(http.StatusForbidden, "forbidden")
	// Make SA, then the first SA may be demoted by the second.
	e.call(http.MethodPatch, "/api/v1/users/"+u.ID.String(), sa, map[string]bool{"isSa": true}).want(http.StatusOK)
	e.call(http.MethodPatch, "/api/v1/users/"+e.sa.ID.String(), e.token("gone@example.com"), map[string]bool{"isSa": false}).want(http.StatusOK)
}

func TestMembersAndPlatformPages(t *testing.T) {
	e := newEnv(t)
	e.user("viewer@example.com", models.RoleViewer)
	sa := e.signIn("root@example.com")

	status, body := e.get(sa, "/settings/members")
	if doc := parseHTML(t, body); status != http.StatusOK || !strings.Contains(doc.text(`[data-testid="members-table"]`), "viewer@example.com") || !doc.has(`[data-testid="add-member-form"]`) {
		t.Fatalf("members page: %d", status)
	}
	status, _, body = e.post(sa, "/settings/members", url.Values{"email": {"html@example.com"}, "role": {"viewer"}})
	if status != http.StatusOK || !strings.Contains(parseHTML(t, body).attr(`[data-testid="set-password-url"]`, "value"), "/set-password/") {
		t.Fatalf("add member form: %d", status)
	}
	status, _, body = e.post(sa, "/settings/members", url.Values{"email": {"bad email"}, "role": {"viewer"}})
	if status != http.StatusBadRequest || !parseHTML(t, body).has(`[data-testid="add-member-form"] [data-testid="error-email"]`) {
		t.Fatalf("bad email form: %d", status)
	}
	status, _, body = e.post(sa, "/settings/members", url.Values{"email": {"html@example.com"}, "role": {"viewer"}})
	if status != http.StatusConflict || !parseHTML(t, body).hasText("already a member") {
		t.Fatalf("duplicate member form: %d", status)
	}

	// Viewers see the list without buttons.
	v := e.signIn("viewer@example.com")
	status, body = e.get(v, "/settings/members")
	if status != http.StatusOK || parseHTML(t, body).has(`[data-testid="add-member-form"], [data-testid="members-table"] form`) {
		t.Fatalf("viewer members page: %d", status)
	}
	if status, _ := e.get(v, "/platform"); status != http.StatusForbidden {
		t.Fatalf("platform page for a non-SA: %d", status)
	}

	// Platform: create and rename an org.
	if status, _ := e.get(sa, "/platform"); status != http.StatusOK {
		t.Fatalf("platform page: %d", status)
	}
	if status, h, _ := e.post(sa, "/platform/orgs", url.Values{"title": {"Acme"}, "color": {"#22c55e"}}); status != http.StatusSeeOther || h.Get("Location") != "/platform?done=created" {
		t.Fatalf("create org: %d", status)
	}
	if status, _, body := e.post(sa, "/platform/orgs", url.Values{"title": {""}, "color": {"red"}}); status != http.StatusBadRequest || !parseHTML(t, body).has(`[data-testid="new-org-form"] [data-testid="error-color"]`) {
		t.Fatalf("bad org: %d", status)
	}
	if status, _, _ := e.post(sa, "/platform/orgs/"+e.org.ID.String(), url.Values{"title": {"Renamed"}, "color": {"#ABCDEF"}}); status != http.StatusSeeOther {
		t.Fatalf("rename org: %d", status)
	}
	org, _ := models.GetOrg(t.Context(), e.db, e.org.ID)
	if org.Title != "Renamed" || org.Color != "#abcdef" || e.auditCount("org.updated") != 1 {
		t.Fatalf("org after rename: %+v", org)
	}
	status, body = e.get(sa, "/account")
	if doc := parseHTML(t, body); status != http.StatusOK || !doc.has(`[data-testid="password-form"]`) || !doc.has(`[data-testid="menu-platform"]`) {
		t.Fatalf("account page: %d", status)
	}
}
