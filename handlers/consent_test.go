package handlers

import (
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/models/testdb"
)

// addEmail adds email to org through the JSON API as the bearer tok and
// returns the decoded answer; it must be 202.
func (e *env) addEmail(tok, org, email, role string) map[string]any {
	e.t.Helper()
	var out map[string]any
	e.call(http.MethodPost, "/api/v1/organizations/"+org+"/members", tok, map[string]string{"email": email, "role": role}).
		want(http.StatusAccepted).decode(&out)
	return out
}

// TestAddingAnotherOrgsUserCannotTakeItOver: an admin of org B adds the email
// of org A's user who has not set a password yet. B gets no link, A's link
// keeps working, B cannot re-issue one, and the user is not B's member.
func TestAddingAnotherOrgsUserCannotTakeItOver(t *testing.T) {
	e := newEnv(t)
	root := e.token("root@example.com")
	a := e.addEmail(root, e.org.ID.String(), "victim@example.com", "admin")
	linkA, _ := a["setPasswordUrl"].(string)
	if !strings.HasPrefix(linkA, e.srv.URL+"/set-password/") {
		t.Fatalf("org A's new user got no link: %v", a)
	}
	victim := e.userID("victim@example.com")

	orgB := e.otherOrg("Org B", "mallory@example.com")
	mallory := e.token("mallory@example.com")
	b := e.addEmail(mallory, orgB.ID.String(), "victim@example.com", "admin")
	if b["setPasswordUrl"] != nil || b["status"] != "invited" {
		t.Fatalf("org B's answer for another org's user: %v", b)
	}
	// A's link still works: nothing was superseded.
	if status, _ := e.get(e.browser(), strings.TrimPrefix(linkA, e.srv.URL)); status != http.StatusOK {
		t.Fatalf("org A's link after org B's add: %d, want 200", status)
	}
	// B may not re-issue a link of a user it did not create (nor through A).
	e.call(http.MethodPost, "/api/v1/organizations/"+orgB.ID.String()+"/members/"+victim.String()+"/password-link", mallory, nil).
		wantError(http.StatusNotFound, "not_found")
	if r := e.call(http.MethodPost, "/api/v1/organizations/"+e.org.ID.String()+"/members/"+victim.String()+"/password-link", mallory, nil); r.Status != http.StatusNotFound && r.Status != http.StatusForbidden {
		t.Fatalf("re-send through org A by B's admin: %d", r.Status)
	}
	if role := e.memberRole(orgB.ID, victim); role != "" {
		t.Fatalf("the user became org B's %s without accepting", role)
	}
	if n := e.auditCount("member.invited"); n != 1 {
		t.Fatalf("member.invited events: %d, want 1", n)
	}

	// Org A's admin may re-send it: the old link stops, the new one works.
	var re struct{ Email, SetPasswordURL string }
	e.call(http.MethodPost, "/api/v1/organizations/"+e.org.ID.String()+"/members/"+victim.String()+"/password-link", root, nil).
		want(http.StatusOK).decode(&re)
	if re.Email != "victim@example.com" || re.SetPasswordURL == linkA {
		t.Fatalf("re-sent link: %+v", re)
	}
	if status, _ := e.get(e.browser(), strings.TrimPrefix(linkA, e.srv.URL)); status != http.StatusGone {
		t.Fatalf("the superseded link: %d, want 410", status)
	}

	// A user the platform admin made platform admin: nobody but a platform
	// admin issues their link, not even the org that created them.
	e.addEmail(root, e.org.ID.String(), "future-sa@example.com", "viewer")
	futureSA := e.userID("future-sa@example.com")
	e.call(http.MethodPatch, "/api/v1/users/"+futureSA.String(), root, map[string]bool{"isSa": true}).want(http.StatusOK)
	e.user("orgadmin@example.com", models.RoleAdmin)
	orgAdmin := e.token("orgadmin@example.com")
	e.call(http.MethodPost, "/api/v1/organizations/"+e.org.ID.String()+"/members/"+futureSA.String()+"/password-link", orgAdmin, nil).
		wantError(http.StatusForbidden, "password_set")
	if b := e.addEmail(mallory, orgB.ID.String(), "future-sa@example.com", "viewer"); b["setPasswordUrl"] != nil {
		t.Fatalf("org B got a platform admin's link: %v", b)
	}
	// A member with a password: refused too.
	e.user("haspw@example.com", models.RoleViewer)
	e.call(http.MethodPost, "/api/v1/organizations/"+e.org.ID.String()+"/members/"+e.userID("haspw@example.com").String()+"/password-link", root, nil).
		wantError(http.StatusNotFound, "not_found")

	// The platform admin's explicit reset issues one, audited; others may not.
	before := e.auditCount("user.password_link_issued")
	var reset struct{ Email, SetPasswordURL string }
	e.call(http.MethodPost, "/api/v1/users/"+futureSA.String()+"/reset-password", root, nil).want(http.StatusOK).decode(&reset)
	if reset.Email != "future-sa@example.com" || !strings.HasPrefix(reset.SetPasswordURL, e.srv.URL+"/set-password/") {
		t.Fatalf("reset: %+v", reset)
	}
	if e.auditCount("user.password_link_issued") != before+1 {
		t.Fatal("reset not audited")
	}
	e.call(http.MethodPost, "/api/v1/users/"+futureSA.String()+"/reset-password", mallory, nil).wantError(http.StatusForbidden, "forbidden")
}

// TestAddAnswerRevealsNothing: adding an existing user's email answers the
// same keys and status as a new one, with none of the user's metadata, and
// makes them a member only once they accept.
func TestAddAnswerRevealsNothing(t *testing.T) {
	e := newEnv(t)
	orgB := e.otherOrg("Org B", "bob@example.com")
	bob := e.token("bob@example.com")
	e.user("known@example.com", models.RoleAdmin)
	e.token("known@example.com") // a login: lastLoginAt is set

	existing := e.addEmail(bob, orgB.ID.String(), "known@example.com", "viewer")
	fresh := e.addEmail(bob, orgB.ID.String(), "unknown@example.com", "viewer")
	keys := func(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }
	if !slices.Equal(keys(existing), keys(fresh)) {
		t.Fatalf("answers differ in shape: %v vs %v", keys(existing), keys(fresh))
	}
	for _, k := range []string{"lastLoginAt", "hasPassword", "isSa", "state", "disabledAt", "userId"} {
		if _, ok := existing[k]; ok {
			t.Errorf("the answer reveals %s: %v", k, existing)
		}
	}
	if existing["status"] != fresh["status"] || existing["role"] != "viewer" {
		t.Fatalf("answers: %v vs %v", existing, fresh)
	}
	// The org's lists show the invitee as pending, without metadata.
	var pending []map[string]any
	e.call(http.MethodGet, "/api/v1/organizations/"+orgB.ID.String()+"/members/pending", bob, nil).want(http.StatusOK).decode(&pending)
	if len(pending) != 1 || pending[0]["email"] != "known@example.com" || pending[0]["lastLoginAt"] != nil {
		t.Fatalf("pending: %v", pending)
	}
	var members []map[string]any
	e.call(http.MethodGet, "/api/v1/organizations/"+orgB.ID.String()+"/members", bob, nil).want(http.StatusOK).decode(&members)
	for _, m := range members {
		if m["email"] == "known@example.com" {
			t.Fatalf("the invitee is listed as a member before accepting: %v", m)
		}
	}
	bc := e.signIn("bob@example.com")
	_, body := e.get(bc, "/settings/members")
	if parseHTML(t, body).text(`[data-testid="pending-member-row"][data-email="known@example.com"] [data-testid="status-pill"]`) != "invited (pending acceptance)" {
		t.Fatal("the members page does not show the pending invitee")
	}

	// The invitee sees nothing of org B until they accept: a banner on every
	// page, the invitation on the Account page.
	kc := e.signIn("known@example.com")
	ktok := e.token("known@example.com")
	var orgs []struct{ ID string }
	e.call(http.MethodGet, "/api/v1/organizations", ktok, nil).want(http.StatusOK).decode(&orgs)
	for _, o := range orgs {
		if o.ID == orgB.ID.String() {
			t.Fatal("org B is listed before the invitation is accepted")
		}
	}
	e.call(http.MethodGet, "/api/v1/organizations/"+orgB.ID.String()+"/members", ktok, nil).wantError(http.StatusNotFound, "not_found")
	if _, body := e.get(kc, "/agents"); !parseHTML(t, body).has(`[data-testid="invitation-banner"]`) {
		t.Fatal("no invitation banner after sign-in")
	}
	_, body = e.get(kc, "/account")
	if !parseHTML(t, body).has(`[data-testid="invitation-row"][data-org="` + orgB.ID.String() + `"]`) {
		t.Fatal("the Account page does not list the invitation")
	}
	invs, _ := models.ListInvitations(t.Context(), e.db, e.userID("known@example.com"))
	if status, h, _ := e.post(kc, "/account/invitations/"+invs[0].ID.String()+"/accept", nil); status != http.StatusSeeOther || h.Get("Location") != "/account?done=accepted" {
		t.Fatalf("accept: %d %s", status, h.Get("Location"))
	}
	if e.memberRole(orgB.ID, e.userID("known@example.com")) != models.RoleViewer {
		t.Fatal("accepting did not make a viewer")
	}
	if _, body := e.get(kc, "/agents"); parseHTML(t, body).has(`[data-testid="invitation-banner"]`) {
		t.Fatal("the banner stays after the decision")
	}

	// Declining: no membership, the banner is gone too.
	e.addEmail(bob, orgB.ID.String(), "declines@example.com", "admin") // a new user: a member at once
	e.user("decliner@example.com", "")
	e.addEmail(bob, orgB.ID.String(), "decliner@example.com", "admin")
	dtok := e.token("decliner@example.com")
	var dinv []struct{ ID string }
	e.call(http.MethodGet, "/api/v1/account/invitations", dtok, nil).want(http.StatusOK).decode(&dinv)
	e.call(http.MethodPost, "/api/v1/account/invitations/"+dinv[0].ID+"/accept", ktok, nil).wantError(http.StatusNotFound, "not_found")
	e.call(http.MethodPost, "/api/v1/account/invitations/"+dinv[0].ID+"/decline", dtok, nil).want(http.StatusOK)
	if e.memberRole(orgB.ID, e.userID("decliner@example.com")) != "" || e.auditCount("member.invitation_declined") != 1 {
		t.Fatal("declining made a member or was not audited")
	}
	// A user in no org yet still reaches the Account page to decide.
	dc := e.signIn("decliner@example.com")
	if status, _ := e.get(dc, "/account"); status != http.StatusOK {
		t.Fatalf("account page of a user in no org: %d", status)
	}
	if status, h, _ := e.post(dc, "/account/password", url.Values{"currentPassword": {testPassword}, "password": {"another good password"}}); status != http.StatusSeeOther || h.Get("Location") != "/account?saved=1" {
		t.Fatalf("password change of a user in no org: %d", status)
	}
}

// TestRemovalEndsOnlyThatOrg: adding then removing a user of another org
// leaves their sessions working in their own org; a session working in the
// removed org falls back to another.
func TestRemovalEndsOnlyThatOrg(t *testing.T) {
	e := newEnv(t)
	u := e.user("alice@example.com", models.RoleAdmin) // of the env's org
	orgB := e.otherOrg("Org B", "bob@example.com")
	bob := e.token("bob@example.com")
	e.addEmail(bob, orgB.ID.String(), "alice@example.com", "viewer")
	invs, _ := models.ListInvitations(t.Context(), e.db, u.ID)
	e.call(http.MethodPost, "/api/v1/account/invitations/"+invs[0].ID.String()+"/accept", e.token("alice@example.com"), nil).want(http.StatusOK)

	never := e.signIn("alice@example.com") // never switched org
	inB := e.signIn("alice@example.com")
	if status, _, _ := e.post(inB, "/orgs/switch", url.Values{"orgId": {orgB.ID.String()}}); status != http.StatusSeeOther {
		t.Fatalf("switch: %d", status)
	}
	if _, body := e.get(inB, "/agents"); !parseHTML(t, body).hasText("Org B") {
		t.Fatal("the session does not work in org B")
	}
	e.call(http.MethodDelete, "/api/v1/organizations/"+orgB.ID.String()+"/members/"+u.ID.String(), bob, nil).want(http.StatusOK)

	for name, c := range map[string]*http.Client{"never switched": never, "working in B": inB} {
		status, body := e.get(c, "/agents")
		if status != http.StatusOK || !parseHTML(t, body).hasText(e.org.Title) || strings.Contains(body, "Org B") {
			t.Errorf("%s session after removal from B: %d (want 200 in %q, nothing of B)", name, status, e.org.Title)
		}
	}
	if n, _ := e.db.NewSelect().Model((*models.Session)(nil)).Where("user_id = ?", u.ID).Count(t.Context()); n != 2 {
		t.Fatalf("sessions after removal: %d, want 2", n)
	}
}

// waitClosed fails unless the stream ends before a generous deadline.
func waitClosed(t *testing.T, names <-chan string, what string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-names:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatalf("%s: the event stream is still open 5 s later", what)
		}
	}
}

// waitStreams waits until the broker holds n streams.
func waitStreams(t *testing.T, e *env, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for e.h.broker.Streams() != n {
		if time.Now().After(deadline) {
			t.Fatalf("streams: %d, want %d", e.h.broker.Streams(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStreamsCloseWhenAccessEnds: removal (that org's streams only),
// disabling, a password change and a sign-out (that session's streams only)
// close the user's open event streams.
func TestStreamsCloseWhenAccessEnds(t *testing.T) {
	e := newEnv(t)
	<-e.h.broker.Ready()
	root := e.token("root@example.com")
	orgB := e.otherOrg("Org B", "bob@example.com")
	bob := e.token("bob@example.com")
	u := e.user("sam@example.com", models.RoleViewer)
	models.AddMember(t.Context(), e.db, orgB.ID, u.ID, models.RoleViewer, e.actor)

	// Removal from B closes the stream working in B, not the one in A.
	inA := e.signIn("sam@example.com")
	inB := e.signIn("sam@example.com")
	e.post(inB, "/orgs/switch", url.Values{"orgId": {orgB.ID.String()}})
	streamA, streamB := openStream(t, e, inA), openStream(t, e, inB)
	waitStreams(t, e, 2)
	e.call(http.MethodDelete, "/api/v1/organizations/"+orgB.ID.String()+"/members/"+u.ID.String(), bob, nil).want(http.StatusOK)
	waitClosed(t, streamB, "removal")
	models.Publish(t.Context(), e.db, models.Event{Org: e.org.ID, Kind: "agent", ID: "still-here"})
	expectEvent(t, streamA, "agent-still-here")

	// Sign-out closes that session's stream only.
	other := e.signIn("sam@example.com")
	streamOther := openStream(t, e, other)
	waitStreams(t, e, 2)
	if status, _, _ := e.post(inA, "/logout", nil); status != http.StatusSeeOther {
		t.Fatalf("logout: %d", status)
	}
	waitClosed(t, streamA, "sign-out")
	models.Publish(t.Context(), e.db, models.Event{Org: e.org.ID, Kind: "agent", ID: "other-session"})
	expectEvent(t, streamOther, "agent-other-session")

	// A password change closes the user's streams (cookie and bearer alike).
	stok := e.token("sam@example.com")
	e.call(http.MethodPost, "/api/v1/account/password", stok, map[string]string{"currentPassword": testPassword, "password": "a brand new password"}).want(http.StatusOK)
	waitClosed(t, streamOther, "password change")

	// Disabling closes them too.
	e.user("dora@example.com", models.RoleViewer)
	streamDora := openStream(t, e, e.signIn("dora@example.com"))
	waitStreams(t, e, 1)
	e.call(http.MethodPatch, "/api/v1/users/"+e.userID("dora@example.com").String(), root, map[string]bool{"disabled": true}).want(http.StatusOK)
	waitClosed(t, streamDora, "disable")
	waitStreams(t, e, 0)
}

// TestStreamClosesOnEveryReplica: two server processes share one database; a
// removal made through one closes the member's stream held on the other.
func TestStreamClosesOnEveryReplica(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts two server processes")
	}
	dbURL := testdb.Empty(t)
	a := startReplica(t, dbURL)
	b := startReplica(t, dbURL)

	var login struct{ Token string }
	callJSON(t, http.MethodPost, a.URL, "/api/v1/auth/login", "", map[string]string{"email": "root@example.com", "password": testPassword}).
		want(http.StatusOK).decode(&login)
	var orgs []struct{ ID string }
	callJSON(t, http.MethodGet, a.URL, "/api/v1/organizations", login.Token, nil).want(http.StatusOK).decode(&orgs)
	var added struct{ SetPasswordURL string }
	callJSON(t, http.MethodPost, a.URL, "/api/v1/organizations/"+orgs[0].ID+"/members", login.Token, map[string]string{"email": "far@example.com", "role": "viewer"}).
		want(http.StatusAccepted).decode(&added)
	client := (&env{}).browser()
	resp, err := client.Do(formRequest(a.URL, strings.TrimPrefix(added.SetPasswordURL, a.URL), url.Values{"password": {testPassword}}))
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("set password: %v %v", resp, err)
	}
	resp.Body.Close()
	var member struct{ UserID string }
	var members []struct{ UserID, Email string }
	callJSON(t, http.MethodGet, a.URL, "/api/v1/organizations/"+orgs[0].ID+"/members", login.Token, nil).want(http.StatusOK).decode(&members)
	for _, m := range members {
		if m.Email == "far@example.com" {
			member.UserID = m.UserID
		}
	}

	// The member's browser holds a stream on B.
	if resp, err := client.Do(formRequest(b.URL, "/login", url.Values{"email": {"far@example.com"}, "password": {testPassword}})); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in on B: %v %v", resp, err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, b.URL+"/events", nil)
	resp, err = client.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("stream on B: %v %v", resp, err)
	}
	defer resp.Body.Close()
	ended := make(chan struct{})
	go func() {
		buf := make([]byte, 512)
		for {
			if _, err := resp.Body.Read(buf); err != nil {
				close(ended)
				return
			}
		}
	}()
	// B answered the stream's headers once it subscribed: remove the member
	// through A.
	callJSON(t, http.MethodDelete, a.URL, "/api/v1/organizations/"+orgs[0].ID+"/members/"+member.UserID, login.Token, nil).want(http.StatusOK)
	start := time.Now()
	select {
	case <-ended:
		t.Logf("stream on B closed %v after the removal on A", time.Since(start).Round(time.Millisecond))
	case <-time.After(5 * time.Second):
		t.Fatal("the stream on B is still open 5 s after the removal on A")
	}
}

// TestLinkButtons: the members page offers "Re-send link" only for a member
// the org created who has no password, and /platform a reset for every user;
// each answers the new link once.
func TestLinkButtons(t *testing.T) {
	e := newEnv(t)
	root := e.token("root@example.com")
	e.addEmail(root, e.org.ID.String(), "pending@example.com", "viewer")
	e.user("settled@example.com", models.RoleViewer)
	c := e.signIn("root@example.com")
	_, body := e.get(c, "/settings/members")
	pending, settled := e.userID("pending@example.com").String(), e.userID("settled@example.com").String()
	if doc := parseHTML(t, body); !doc.has(`form[action="/settings/members/`+pending+`/password-link"] [data-testid="member-resend-link"]`) || doc.has(`form[action="/settings/members/`+settled+`/password-link"]`) {
		t.Fatal("re-send button missing for the created member, or shown for one with a password")
	}
	status, _, body := e.post(c, "/settings/members/"+pending+"/password-link", nil)
	if doc := parseHTML(t, body); status != http.StatusOK || !doc.has(`[data-testid="set-password-url"]`) || !doc.hasText("New set-password link for pending@example.com") {
		t.Fatalf("re-send through the page: %d", status)
	}
	if status, _, _ := e.post(c, "/settings/members/"+settled+"/password-link", nil); status != http.StatusNotFound {
		t.Fatalf("re-send for a member with a password: %d, want 404", status)
	}
	_, body = e.get(c, "/platform")
	if !parseHTML(t, body).has(`form[action="/platform/users/` + settled + `/reset-password"] [data-testid="user-reset-password"]`) {
		t.Fatal("no reset button on /platform")
	}
	status, _, body = e.post(c, "/platform/users/"+settled+"/reset-password", nil)
	if status != http.StatusOK || !parseHTML(t, body).has(`[data-testid="set-password-url"]`) {
		t.Fatalf("reset through /platform: %d", status)
	}
	// A viewer of the org gets neither.
	vc := e.signIn("settled@example.com")
	if status, _, _ := e.post(vc, "/settings/members/"+pending+"/password-link", nil); status != http.StatusForbidden {
		t.Fatalf("re-send by a viewer: %d, want 403", status)
	}
	if status, _, _ := e.post(vc, "/platform/users/"+pending+"/reset-password", nil); status != http.StatusForbidden {
		t.Fatalf("reset by a non platform admin: %d, want 403", status)
	}
}

// TestWithdrawInvitation: an admin withdraws a pending invitation; the
// invitee can no longer accept it.
func TestWithdrawInvitation(t *testing.T) {
	e := newEnv(t)
	root := e.token("root@example.com")
	u := e.user("maybe@example.com", "")
	e.addEmail(root, e.org.ID.String(), "maybe@example.com", "viewer")
	invs, _ := models.ListInvitations(t.Context(), e.db, u.ID)
	c := e.signIn("root@example.com")
	_, body := e.get(c, "/settings/members")
	if !parseHTML(t, body).has(`form[action="/settings/members/invitations/` + invs[0].ID.String() + `/withdraw"] [data-testid="invitation-withdraw"]`) {
		t.Fatal("no withdraw button on the pending row")
	}
	if status, h, _ := e.post(c, "/settings/members/invitations/"+invs[0].ID.String()+"/withdraw", nil); status != http.StatusSeeOther || h.Get("Location") != "/settings/members?done=withdrawn" {
		t.Fatalf("withdraw: %d", status)
	}
	e.call(http.MethodPost, "/api/v1/account/invitations/"+invs[0].ID.String()+"/accept", e.token("maybe@example.com"), nil).wantError(http.StatusNotFound, "not_found")
	if e.memberRole(e.org.ID, u.ID) != "" {
		t.Fatal("a withdrawn invitation made a member")
	}
	e.call(http.MethodDelete, "/api/v1/organizations/"+e.org.ID.String()+"/members/pending/"+invs[0].ID.String(), root, nil).wantError(http.StatusNotFound, "not_found")
	// Invited again, withdrawn through the API.
	e.addEmail(root, e.org.ID.String(), "maybe@example.com", "viewer")
	invs, _ = models.ListInvitations(t.Context(), e.db, u.ID)
	e.call(http.MethodDelete, "/api/v1/organizations/"+e.org.ID.String()+"/members/pending/"+invs[0].ID.String(), root, nil).want(http.StatusOK)
	if n, _ := models.CountInvitations(t.Context(), e.db, u.ID); n != 0 {
		t.Fatalf("pending after withdrawal: %d", n)
	}
}

// TestStreamsEndWhenTheListenerReconnects: an access_ended sent while the
// listener was down is lost, so a reconnect ends every open stream; browsers
// reconnect and are authorized again.
func TestStreamsEndWhenTheListenerReconnects(t *testing.T) {
	e := newEnv(t)
	<-e.h.broker.Ready()
	stream := openStream(t, e, e.signIn("root@example.com"))
	waitStreams(t, e, 1)
	if _, err := e.db.ExecContext(t.Context(),
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid()"); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, stream, "listener reconnect")
}
