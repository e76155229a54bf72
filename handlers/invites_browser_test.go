package handlers

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/agentroster/agentroster/models"
)

// TestBrowserInviteFlow drives the Invites and Join requests tabs and the
// public invite page in Chromium, including a live update of the list and the
// nav badge when a runtime joins.
func TestBrowserInviteFlow(t *testing.T) {
	e := newEnv(t)
	e.relaxInviteLimits()
	ctx := newBrowser(t)
	do(t, ctx, "sign in",
		chromedp.Navigate(e.srv.URL+"/login"),
		chromedp.SendKeys(chromedp.CSS("#email"), "root@example.com"),
		chromedp.SendKeys(chromedp.CSS("#password"), testPassword),
		chromedp.Click(chromedp.CSS(`[data-testid="login-submit"]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`[data-testid="login-form"]`)),
		chromedp.Navigate(e.srv.URL+"/agents/invites"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="empty-state"]`)),
	)
	shoot(t, ctx, "invites-empty")

	do(t, ctx, "a refused name shows its message in the dialog",
		chromedp.Click(chromedp.CSS(`[data-testid="new-invite"]`)),
		chromedp.WaitVisible(chromedp.CSS("#inv-name")),
		chromedp.SendKeys(chromedp.CSS("#inv-name"), "invites"),
		chromedp.Click(chromedp.CSS(`[data-testid="new-invite-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#new-invite [data-testid="error-agentName"]`)),
	)
	shoot(t, ctx, "invite-new-error")
	do(t, ctx, "create an invite",
		chromedp.Clear(chromedp.CSS("#inv-name")),
		chromedp.SendKeys(chromedp.CSS("#inv-name"), "web-1"),
		chromedp.Click(chromedp.CSS(`[data-testid="new-invite-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#new-invite [data-testid="invite-created"]`)),
		chromedp.Click(chromedp.CSS(`#new-invite [data-testid="copy-button"]`)),
		// Copied (check → done icons), or the link selected where no clipboard is allowed.
		chromedp.WaitVisible(chromedp.CSS(`#new-invite [data-copy-state="copied"], #new-invite [data-copy-state="done"], #new-invite [data-copy-state="select"]`)),
	)
	shoot(t, ctx, "invite-created")
	link := value(t, ctx, chromedp.Value(chromedp.CSS("#created-invite-link")))
	token := strings.TrimPrefix(link, e.srv.URL+"/invite/")
	if !models.IsBase62(token, 32) {
		t.Fatalf("link %q", link)
	}
	do(t, ctx, "the list shows the invite",
		chromedp.Click(chromedp.CSS(`#new-invite button.btn-primary[data-dialog-close]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="invite-row"][data-state="Active"]`)),
	)
	shoot(t, ctx, "invites")

	do(t, ctx, "open the join requests tab",
		chromedp.Navigate(e.srv.URL+"/agents/join-requests"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="empty-state"]`)),
	)
	// A runtime joins: the row and the nav badge arrive without a reload.
	e.joinInvite(token, map[string]any{"adapterType": "mcp", "title": "Web one", "machineName": "build-7", "ramBytes": 17179869184},
		"User-Agent", "runtime/1.0").want(http.StatusCreated)
	do(t, ctx, "live update",
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="join-request-row"][data-status="PENDING"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#pending-badge[data-count="1"]`)),
		chromedp.Click(chromedp.CSS(`[data-testid="join-request-details"] summary`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="field-User agent"]`)),
	)
	shoot(t, ctx, "join-requests")
	do(t, ctx, "approve inline",
		chromedp.Click(chromedp.CSS(`[data-testid="jr-approve"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#pending-badge[data-count="0"]`)),
	)
	if a := e.dbAgent(e.org.ID, "web-1"); a == nil || a.Status != models.StatusApproved {
		t.Fatalf("agent after approve: %+v", a)
	}

	tok := e.token("root@example.com")
	inv := e.invite(tok, map[string]any{"agentName": "landing-1", "adapterType": "webhook"})
	do(t, ctx, "the invite page",
		chromedp.Navigate(inv.URL),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="join-form"]`)),
	)
	shoot(t, ctx, "invite-landing")
	do(t, ctx, "join from the invite page",
		chromedp.Click(chromedp.CSS(`[data-testid="join-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="claim-secret"]`)),
	)
	shoot(t, ctx, "invite-joined")
	secret := value(t, ctx, chromedp.Value(chromedp.CSS("#claim-secret")))
	if !strings.HasPrefix(secret, models.ClaimSecretPrefix) {
		t.Fatalf("claim secret %q", secret)
	}
}
