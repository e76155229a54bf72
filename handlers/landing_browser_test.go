package handlers

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/agentroster/agentroster/models"
)

// TestBrowserInviteLandingFinishesTheJob: a runtime owner asks to join from
// the invite page, which waits live for the decision and, once approved,
// claims and shows the key once; a rejection shows without reload too.
func TestBrowserInviteLandingFinishesTheJob(t *testing.T) {
	e := newEnv(t)
	e.relaxInviteLimits()
	ctx := newBrowser(t)
	watchCSP(t, ctx)
	tok := e.token("root@example.com")
	inv := e.invite(tok, map[string]any{"agentName": "landing-ok", "adapterType": "mcp"})

	do(t, ctx, "the invite page offers byob first",
		chromedp.Navigate(inv.URL),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="join-form"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="code-byob"]`)),
	)
	if cmd := value(t, ctx, chromedp.Text(chromedp.CSS(`[data-testid="code-byob"]`))); cmd != "byob join "+inv.URL {
		t.Fatalf("byob command %q", cmd)
	}
	// Commands wrap: no code block is wider than its box.
	if wide := value(t, ctx, chromedp.Evaluate[int](`[...document.querySelectorAll("pre")].filter(p => p.scrollWidth > p.clientWidth + 1).length`)); wide != 0 {
		t.Fatalf("%d code blocks scroll sideways", wide)
	}
	shoot(t, ctx, "invite-landing")
	do(t, ctx, "ask to join",
		chromedp.Click(chromedp.CSS(`[data-testid="join-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="join-wait"][data-state="pending"]`)),
	)
	if exp := value(t, ctx, chromedp.Text(chromedp.CSS(`[data-testid="field-Expires"]`))); !strings.Contains(exp, "UTC") {
		t.Fatalf("the spent invite's expiry reads %q", exp)
	}
	if ad := value(t, ctx, chromedp.Text(chromedp.CSS(`[data-testid="field-Suggested adapter"]`))); !strings.Contains(ad, "mcp") {
		t.Fatalf("suggested adapter %q, want the invite's", ad)
	}
	shoot(t, ctx, "invite-landing-waiting")
	value(t, ctx, chromedp.Evaluate[bool](`window.__noReload = true`))
	id := strings.TrimSuffix(strings.TrimPrefix(attr(t, ctx, "#join-wait", "hx-post"), "/join-requests/"), "/status")
	secret := value(t, ctx, chromedp.Value(chromedp.CSS("#claim-secret")))

	// The request id alone tells nothing and claims nothing.
	st, _, body := e.post(e.browser(), "/join-requests/"+id+"/status", nil)
	if st != http.StatusOK || !parseHTML(t, body).has(`[data-state="closed"]`) || strings.Contains(body, "landing-ok") {
		t.Fatalf("status without the secret: %d %s", st, body)
	}

	e.call(http.MethodPost, "/api/v1/internal/join-requests/"+id+"/approve", tok, struct{}{}).want(http.StatusOK)
	do(t, ctx, "approved: the key shows without reload",
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="join-wait"][data-state="approved"] [data-testid="api-key"]`)),
	)
	key := value(t, ctx, chromedp.Value(chromedp.CSS(`[data-testid="api-key"]`)))
	if !strings.HasPrefix(key, "ag_ak_") || !value(t, ctx, chromedp.Evaluate[bool](`window.__noReload === true`)) {
		t.Fatalf("key %q (or the page reloaded)", key)
	}
	if next := value(t, ctx, chromedp.Text(chromedp.CSS(`[data-testid="next-byob"]`))); !strings.Contains(next, key) || !strings.Contains(next, "byob run") {
		t.Fatalf("next commands %q", next)
	}
	e.call(http.MethodGet, "/api/v1/agent/orgs", key, nil).want(http.StatusOK)
	if value(t, ctx, chromedp.Evaluate[bool](`!!document.querySelector('[data-testid="claim-elsewhere"]').offsetParent`)) {
		t.Fatal("the spent claim secret still shows after the key was claimed")
	}
	// Shown once: the claim is spent.
	e.claim(id, secret).wantError(http.StatusConflict, "already_claimed")
	shoot(t, ctx, "invite-landing-approved")

	inv2 := e.invite(tok, map[string]any{"agentName": "landing-no"})
	do(t, ctx, "a second request",
		chromedp.Navigate(inv2.URL),
		chromedp.Click(chromedp.CSS(`[data-testid="join-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="join-wait"][data-state="pending"]`)),
	)
	value(t, ctx, chromedp.Evaluate[bool](`window.__noReload = true`))
	id2 := strings.TrimSuffix(strings.TrimPrefix(attr(t, ctx, "#join-wait", "hx-post"), "/join-requests/"), "/status")
	e.call(http.MethodPost, "/api/v1/internal/join-requests/"+id2+"/reject", tok, struct{}{}).want(http.StatusOK)
	do(t, ctx, "rejected: the page says so without reload",
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="join-wait"][data-state="rejected"]`)),
	)
	if !value(t, ctx, chromedp.Evaluate[bool](`window.__noReload === true`)) {
		t.Fatal("the page reloaded")
	}
	if count(t, ctx, `#join-wait[hx-trigger]`) != 0 {
		t.Fatal("the page still polls after the decision")
	}
	shoot(t, ctx, "invite-landing-rejected")
	if v := cspViolations(t, ctx); len(v) > 0 {
		t.Fatalf("CSP violations: %q", v)
	}
	if a := e.dbAgent(e.org.ID, "landing-ok"); a == nil || a.Status != models.StatusApproved {
		t.Fatalf("agent %+v", a)
	}
}
