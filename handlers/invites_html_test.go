package handlers

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/agentroster/agentroster/models"
)

var (
	createdLinkRE = regexp.MustCompile(`id="created-invite-link" readonly value="([^"]+)"`)
	claimSecretRE = regexp.MustCompile(`id="claim-secret" readonly value="([^"]+)"`)
	claimURLRE    = regexp.MustCompile(`id="claim-url" readonly value="([^"]+)"`)
)

func TestInviteFlowHTML(t *testing.T) {
	e := newEnv(t)
	e.relaxInviteLimits()
	admin := e.signIn("root@example.com")

	status, body := e.get(admin, "/agents/invites")
	if doc := parseHTML(t, body); status != http.StatusOK || !doc.has(`[data-testid="new-invite"]`) || !doc.has(`[data-testid="empty-state"]`) {
		t.Fatalf("invites page: %d", status)
	}

	// New Invite dialog: an error first, shown inline in the dialog.
	status, _, frag := e.htmx(admin, "/agents/invites", url.Values{"agentName": {"Bad Name"}, "maxUses": {"1"}, "ttl": {"86400"}})
	if status != http.StatusOK || !parseHTML(t, frag).has(`[data-testid="new-invite-form"] [data-testid="error-agentName"]`) || strings.Contains(frag, "<html") {
		t.Fatalf("invalid create: %d %s", status, frag)
	}
	status, _, frag = e.htmx(admin, "/agents/invites", url.Values{"agentName": {"web-1"}, "maxUses": {"0"}, "ttlMinutes": {"1"}})
	if doc := parseHTML(t, frag); !doc.has(`[data-testid="error-maxUses"]`) || !doc.has(`[data-testid="error-ttlSeconds"]`) {
		t.Fatalf("range errors: %d %s", status, frag)
	}
	if n := e.count("invites", "true"); n != 0 {
		t.Fatal("an invalid form wrote an invite")
	}
	status, hdr, frag := e.htmx(admin, "/agents/invites", url.Values{"agentName": {"web-1"}, "adapterType": {"webhook"}, "maxUses": {"1"}, "ttl": {"3600"}})
	doc := parseHTML(t, frag)
	if status != http.StatusOK || !strings.Contains(doc.text(`[data-testid="invite-created"]`), "bearer credential") ||
		!doc.has(`[data-testid="invite-created"] [data-testid="copy-button"]`) || !strings.Contains(hdr.Get("HX-Trigger"), "invitesChanged") {
		t.Fatalf("create: %d %s %s", status, hdr.Get("HX-Trigger"), frag)
	}
	link := match(t, createdLinkRE, frag)
	if !strings.HasPrefix(link, e.srv.URL+"/invite/") {
		t.Fatalf("link %s", link)
	}
	token := strings.TrimPrefix(link, e.srv.URL+"/invite/")

	status, body = e.get(admin, "/agents/invites")
	inviteRow := parseHTML(t, body).Find(`[data-testid="invite-row"][data-state="Active"][data-agent-name="web-1"]`)
	if inviteRow.Find(`[data-testid="invite-link"]`).AttrOr("value", "") != link || !inviteRow.Find(`[data-testid="copy-button"]`).Is(`[data-copy-target^="#invite-link-"]`) ||
		inviteRow.Find(`[data-testid="invite-delete"]`).Length() != 1 || inviteRow.Find(`[data-testid="invite-uses"]`).Text() != "0 / 1" {
		t.Fatalf("invites list: %d %s", status, body)
	}

	// The runtime opens the link: a page without cookies, and JSON on request.
	runtime := e.browser()
	req, _ := http.NewRequest(http.MethodGet, link, nil)
	resp, err := runtime.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Referrer-Policy") != "same-origin" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("landing headers: %d %v", resp.StatusCode, resp.Header)
	}
	status, body = e.get(runtime, "/invite/"+token)
	if doc := parseHTML(t, body); status != http.StatusOK || !strings.Contains(doc.text("h1"), "Join "+e.org.Title+" as web-1") ||
		!strings.Contains(doc.text(`[data-testid="curl-join"]`), "/api/v1/invites/"+token+"/join") {
		t.Fatalf("landing: %d %s", status, body)
	}
	status, body = e.get(runtime, "/invite/"+token, "Accept", "application/json")
	var info map[string]any
	json.Unmarshal([]byte(body), &info)
	if status != http.StatusOK || info["agentName"] != "web-1" || info["adapterType"] != "webhook" {
		t.Fatalf("landing JSON: %d %s", status, body)
	}

	// Adapter selection creates the join request and shows the claim secret once.
	status, _, body = e.post(runtime, "/invite/"+token, url.Values{"adapterType": {"mcp"}, "title": {"Web one"}}, "User-Agent", "landing-test")
	if status != http.StatusCreated || !parseHTML(t, body).has(`[data-testid="joined"]`) {
		t.Fatalf("join form: %d %s", status, body)
	}
	secret, claimURL := match(t, claimSecretRE, body), match(t, claimURLRE, body)
	if !strings.Contains(parseHTML(t, body).Text(), `{"claimSecret":"`+secret+`"}`) {
		t.Fatal("no claim curl with the secret")
	}
	e.get(runtime, "/invite/"+token) // spent now
	if status, body = e.get(runtime, "/invite/"+token); status != http.StatusGone {
		t.Fatalf("spent landing: %d", status)
	}

	// The operator sees it pending, with its context, and the nav badge counts it.
	status, body = e.get(admin, "/agents/join-requests")
	doc = parseHTML(t, body)
	jr := doc.Find(`[data-testid="join-request-row"][data-status="PENDING"][data-agent-name="web-1"]`)
	if status != http.StatusOK || !strings.Contains(jr.Text(), "landing-test") || !strings.Contains(jr.Text(), "Web one") || doc.attr(`[data-testid="pending-badge"]`, "data-count") != "1" {
		t.Fatalf("join requests: %d %s", status, body)
	}
	if _, body = e.get(admin, "/nav/pending-badge"); parseHTML(t, body).attr(`[data-testid="pending-badge"]`, "data-count") != "1" {
		t.Fatalf("badge %s", body)
	}
	id := strings.TrimSuffix(strings.TrimPrefix(claimURL, e.srv.URL+"/api/v1/join-requests/"), "/claim")
	status, hdr, row := e.htmx(admin, "/agents/join-requests/"+id+"/approve", nil)
	if doc := parseHTML(t, row); status != http.StatusOK || !strings.HasPrefix(strings.TrimSpace(row), "<tr") || !doc.has(`tr[data-status="APPROVED"]`) ||
		doc.has(`[data-testid="jr-approve"]`) || !strings.Contains(hdr.Get("HX-Trigger"), "Approved web-1") {
		t.Fatalf("htmx approve: %d %s", status, row)
	}
	// Approving again: the row as it is, with an error toast.
	status, hdr, row = e.htmx(admin, "/agents/join-requests/"+id+"/approve", nil)
	if status != http.StatusOK || !strings.Contains(hdr.Get("HX-Trigger"), "already approved") || !parseHTML(t, row).has(`tr[data-status="APPROVED"]`) {
		t.Fatalf("second approve: %d %s", status, hdr.Get("HX-Trigger"))
	}
	if _, body = e.get(admin, "/agents/join-requests"); !parseHTML(t, body).hasText("No pending join requests") || parseHTML(t, body).attr(`[data-testid="pending-badge"]`, "data-count") != "0" {
		t.Fatal("pending list or badge did not empty")
	}
	if _, body = e.get(admin, "/agents/join-requests?status=approved"); !strings.Contains(parseHTML(t, body).text(`[data-testid="join-request-row"][data-status="APPROVED"]`), "root@example.com") {
		t.Fatal("approved filter")
	}
	if a := e.dbAgent(e.org.ID, "web-1"); a == nil || a.Status != models.StatusApproved || a.AdapterType != "mcp" || a.Title != "Web one" {
		t.Fatalf("agent %+v", a)
	}

	var cl claimOut
	e.call(http.MethodPost, strings.TrimPrefix(claimURL, e.srv.URL), "", map[string]string{"claimSecret": secret}).want(http.StatusOK).decode(&cl)
	e.call(http.MethodGet, "/api/v1/agent/orgs", cl.APIKey, nil).want(http.StatusOK)
}

func TestInviteHTMLRejectAndDelete(t *testing.T) {
	e := newEnv(t)
	e.relaxInviteLimits()
	admin := e.signIn("root@example.com")
	tok := e.token("root@example.com")
	inv := e.invite(tok, map[string]any{"agentName": "nope", "maxUses": 3})
	var a, b joinOut
	e.joinInvite(inv.Token, map[string]any{}).want(http.StatusCreated).decode(&a)
	e.joinInvite(inv.Token, map[string]any{}).want(http.StatusCreated).decode(&b)

	_, _, row := e.htmx(admin, "/agents/join-requests/"+a.JoinRequestID+"/reject", nil)
	if !parseHTML(t, row).has(`tr[data-status="REJECTED"]`) {
		t.Fatalf("reject: %s", row)
	}
	_, _, row = e.htmx(admin, "/agents/join-requests/"+b.JoinRequestID+"/reject-revoke", nil)
	if !parseHTML(t, row).has(`tr[data-status="REJECTED"]`) {
		t.Fatalf("reject and revoke: %s", row)
	}
	e.call(http.MethodGet, "/api/v1/invites/"+inv.Token, "", nil).wantError(http.StatusGone, "invite_revoked")
	if e.dbAgent(e.org.ID, "nope") != nil {
		t.Fatal("rejection created an agent")
	}

	other := e.invite(tok, map[string]any{"agentName": "gone-soon"})
	_, _, row = e.htmx(admin, "/agents/invites/"+other.ID+"/delete", nil)
	if doc := parseHTML(t, row); !doc.has(`tr[data-state="Revoked"]`) || doc.has(`[data-testid="invite-delete"]`) || doc.has(`[data-testid="invite-link"]`) {
		t.Fatalf("delete: %s", row)
	}
	if resp := e.form(admin, "/agents/invites/"+other.ID+"/delete", nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/agents/invites" {
		t.Fatalf("plain delete: %d", resp.StatusCode)
	}
	if n := e.count("audit_events", "action = 'invite.deleted'"); n != 2 {
		t.Fatalf("%d invite.deleted events", n)
	}
}

func TestInviteBulkCSV(t *testing.T) {
	e := newEnv(t)
	admin := e.signIn("root@example.com")
	status, hdr, body := e.post(admin, "/agents/invites/bulk", url.Values{"names": {"bulk-1\r\n bulk-2\n\nbulk-3\n"}, "maxUses": {"2"}, "ttl": {"3600"}})
	if status != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") || !strings.Contains(hdr.Get("Content-Disposition"), "attachment") {
		t.Fatalf("bulk: %d %v %s", status, hdr, body)
	}
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil || len(recs) != 4 || recs[1][0] != "bulk-1" || recs[3][0] != "bulk-3" || recs[2][3] != "2" {
		t.Fatalf("csv %v %v", recs, err)
	}
	for _, r := range recs[1:] {
		token := strings.TrimPrefix(r[1], e.srv.URL+"/invite/")
		e.call(http.MethodGet, "/api/v1/invites/"+token, "", nil).want(http.StatusOK)
	}
	// One bad line: nothing is created, and the page names the line.
	status, _, body = e.post(admin, "/agents/invites/bulk", url.Values{"names": {"ok-1\nNot OK\nbulk-1\nok-1"}})
	if errs := parseHTML(t, body).text(`[data-testid="bulk-error"]`); status != http.StatusBadRequest || !strings.Contains(errs, "Line 2") || !strings.Contains(errs, "Line 4") {
		t.Fatalf("bad bulk: %d %s", status, body)
	}
	status, _, body = e.post(admin, "/agents/invites/bulk", url.Values{"names": {"ok-1\nbulk-2"}})
	if errs := parseHTML(t, body).text(`[data-testid="bulk-error"]`); status != http.StatusBadRequest || !strings.Contains(errs, "Line 2") || !strings.Contains(errs, "This name is taken") {
		t.Fatalf("taken bulk: %d %s", status, body)
	}
	status, _, body = e.post(admin, "/agents/invites/bulk", url.Values{"names": {"ok-1\nok-2"}, "maxUses": {"500"}})
	if status != http.StatusBadRequest || strings.Count(parseHTML(t, body).Text(), "must be between 1 and 100") != 1 {
		t.Fatalf("bulk max uses: %d %s", status, body)
	}
	status, _, _ = e.post(admin, "/agents/invites/bulk", url.Values{"names": {strings.Repeat("x\n", 101)}})
	if status != http.StatusBadRequest {
		t.Fatalf("101 names: %d", status)
	}
	if n := e.count("invites", "true"); n != 3 {
		t.Fatalf("%d invites", n)
	}
}

func TestInviteHTMLViewerAndUnknownToken(t *testing.T) {
	e := newEnv(t)
	e.user("viewer@example.com", models.RoleViewer)
	tok := e.token("root@example.com")
	inv, j := e.joinNew(tok, "seen")
	viewer := e.signIn("viewer@example.com")

	status, body := e.get(viewer, "/agents/invites?state=all")
	if doc := parseHTML(t, body); status != http.StatusOK || !doc.has(`[data-testid="invite-row"][data-agent-name="seen"]`) || strings.Contains(body, inv.Token) ||
		doc.has(`[data-testid="new-invite"]`) || doc.has(`[data-testid="invite-delete"]`) {
		t.Fatalf("viewer invites: %d", status)
	}
	status, body = e.get(viewer, "/agents/join-requests")
	if doc := parseHTML(t, body); status != http.StatusOK || !doc.has(`[data-testid="join-request-row"][data-agent-name="seen"]`) || doc.has(`[data-testid="jr-approve"]`) {
		t.Fatalf("viewer join requests: %d", status)
	}
	if status, _, _ := e.htmx(viewer, "/agents/join-requests/"+j.JoinRequestID+"/approve", nil); status != http.StatusForbidden {
		t.Fatalf("viewer approve: %d", status)
	}
	if status, _, _ := e.htmx(viewer, "/agents/invites", url.Values{"agentName": {"v-1"}}); status != http.StatusForbidden {
		t.Fatalf("viewer create: %d", status)
	}

	anon := e.browser()
	s1, b1 := e.get(anon, "/invite/"+models.RandomBase62(32))
	s2, b2 := e.get(anon, "/invite/not-a-token")
	if s1 != http.StatusNotFound || s2 != http.StatusNotFound || b1 != b2 {
		t.Fatalf("unknown tokens: %d %d", s1, s2)
	}
	s3, b3 := e.get(anon, "/invite/not-a-token", "Accept", "application/json")
	if s3 != http.StatusNotFound || !strings.Contains(b3, `"invite_not_found"`) {
		t.Fatalf("unknown token JSON: %d %s", s3, b3)
	}
}

// TestInvitePageDoubleSubmit: the landing page's form carries a fresh
// idempotency key, so submitting it twice creates one join request and uses
// the invite once.
func TestInvitePageDoubleSubmit(t *testing.T) {
	e := newEnv(t)
	e.relaxInviteLimits()
	inv := e.invite(e.token("root@example.com"), map[string]any{"agentName": "twice", "adapterType": "http", "maxUses": 3, "ttlSeconds": 3600})
	c := e.browser()
	status, page := e.get(c, "/invite/"+inv.Token)
	if status != http.StatusOK {
		t.Fatalf("landing page: %d", status)
	}
	m := regexp.MustCompile(`name="idempotencyKey" value="([0-9A-Za-z]{24})"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("landing form has no idempotency key")
	}
	form := url.Values{"adapterType": {"http"}, "idempotencyKey": {m[1]}}
	status, _, body := e.post(c, "/invite/"+inv.Token, form)
	if status != http.StatusCreated {
		t.Fatalf("join form: %d", status)
	}
	secret := match(t, claimSecretRE, body)
	// The second submit (a reload of the answer) names the request but shows
	// the secret no more: it exists once.
	status, _, body = e.post(c, "/invite/"+inv.Token, form)
	if status != http.StatusCreated {
		t.Fatalf("join form again: %d", status)
	}
	if claimSecretRE.MatchString(body) || strings.Contains(body, secret) || !parseHTML(t, body).has(`[data-testid="joined-replayed"]`) {
		t.Fatal("the replayed join shows the claim secret again")
	}
	if n := e.count("join_requests", "agent_name = 'twice'"); n != 1 {
		t.Fatalf("%d join requests after a double submit, want 1", n)
	}
	if n := e.count("invites", "agent_name = 'twice' AND uses = 1"); n != 1 {
		t.Fatal("the invite was used more than once")
	}
	if _, again := e.get(e.browser(), "/invite/"+inv.Token); strings.Contains(again, m[1]) {
		t.Fatal("a second visitor got the same idempotency key")
	}
}

// TestLandingPollEndsWhenSuperseded: the landing page's poll of a request
// that a later re-registration superseded ends with a message instead of
// polling (and toasting an error) every two seconds for ever.
func TestLandingPollEndsWhenSuperseded(t *testing.T) {
	e := newEnv(t)
	tok := e.token("root@example.com")
	first, second := e.approvedTwice(tok, "twice")
	e.claim(second.JoinRequestID, second.ClaimSecret).want(http.StatusOK)
	status, hd, body := e.htmx(e.browser(), "/join-requests/"+first.JoinRequestID+"/status", url.Values{"claimSecret": {first.ClaimSecret}})
	if status != http.StatusOK || !parseHTML(t, body).has(`[data-state="closed"]`) || strings.Contains(body, "every 2s") || hd.Get("HX-Reswap") == "none" {
		t.Fatalf("superseded poll: %d %q\n%s", status, hd.Get("HX-Reswap"), body)
	}
	if strings.Contains(body, first.ClaimSecret) {
		t.Fatal("a closed wait still carries the claim secret")
	}
}
