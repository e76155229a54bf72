package handlers

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/agentroster/agentroster/models"
)

// TestBrowserPlainHTTPOtherHost signs in and submits the invite landing form
// at http://roster.test:<port> (mapped to 127.0.0.1): a host that is not
// localhost over plain HTTP, where Chromium sends no Sec-Fetch-Site and the
// cross-origin check relies on a real Origin header.
func TestBrowserPlainHTTPOtherHost(t *testing.T) {
	e := newEnv(t)
	e.relaxInviteLimits()
	base := strings.Replace(e.srv.URL, "127.0.0.1", "roster.test", 1)
	ctx := newBrowser(t, chromedp.Flag("host-resolver-rules", "MAP roster.test 127.0.0.1"))

	signInBrowser(t, ctx, base, "root@example.com")
	do(t, ctx, "the roster after sign-in", chromedp.WaitVisible(chromedp.CSS(`[data-testid="roster-filters"]`)))
	if loc := value(t, ctx, chromedp.Location()); loc != base+"/agents" {
		t.Fatalf("after sign-in at %s: %s, want %s/agents", base, loc, base)
	}

	inv := e.invite(e.token("root@example.com"), map[string]any{"agentName": "plain-1", "adapterType": "webhook"})
	link := strings.Replace(inv.URL, e.srv.URL, base, 1)
	if !strings.HasPrefix(link, base+"/invite/") {
		t.Fatalf("invite link %q", inv.URL)
	}
	do(t, ctx, "join from the invite page",
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="join-form"]`)),
		chromedp.Click(chromedp.CSS(`[data-testid="join-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="claim-secret"]`)),
	)
	if secret := value(t, ctx, chromedp.Value(chromedp.CSS("#claim-secret"))); !strings.HasPrefix(secret, models.ClaimSecretPrefix) {
		t.Fatalf("claim secret %q", secret)
	}
	if n := e.count("join_requests", "agent_name = 'plain-1'"); n != 1 {
		t.Fatalf("join requests for plain-1: %d", n)
	}
}
