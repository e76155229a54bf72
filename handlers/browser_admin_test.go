package handlers

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/agentroster/agentroster/models"
)

// TestBrowserAdminScreens drives the members, audit, notifications, account
// and platform screens in Chromium and saves their screenshots.
func TestBrowserAdminScreens(t *testing.T) {
	e := newEnv(t)
	e.user("viewer@example.com", models.RoleViewer)
	ctx := newBrowser(t)
	signInBrowser(t, ctx, e.srv.URL, "root@example.com")
	do(t, ctx, "add a member",
		chromedp.Navigate(e.srv.URL+"/settings/members"),
		chromedp.SendKeys(chromedp.CSS("#member-email"), "new.person@example.com"),
		chromedp.Click(chromedp.CSS(`[data-testid="add-member-form"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="set-password-url"]`)),
	)
	if link := value(t, ctx, chromedp.Value(chromedp.CSS(`[data-testid="set-password-url"]`))); !strings.Contains(link, "/set-password/") {
		t.Fatalf("set-password link %q", link)
	}
	shoot(t, ctx, "settings-members")
	do(t, ctx, "add a webhook",
		chromedp.Navigate(e.srv.URL+"/settings/notifications"),
		chromedp.SendKeys(chromedp.CSS("#webhook-url"), "https://chat.example.com/hooks/abc"),
		chromedp.Click(chromedp.CSS(`[data-testid="new-webhook-form"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="webhook-secret"]`)),
	)
	shoot(t, ctx, "settings-notifications")
	do(t, ctx, "audit with details expanded",
		chromedp.Navigate(e.srv.URL+"/audit"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="audit-table"]`)),
		chromedp.Click(chromedp.CSS(`[data-testid="audit-details"] summary`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="audit-details"] pre`)),
	)
	shoot(t, ctx, "audit")
	do(t, ctx, "account", chromedp.Navigate(e.srv.URL+"/account"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="password-form"]`)))
	shoot(t, ctx, "account")
	do(t, ctx, "platform", chromedp.Navigate(e.srv.URL+"/platform"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="users-table"]`)))
	shoot(t, ctx, "platform")
}
