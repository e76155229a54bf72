package handlers

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

func TestBrowserLogin(t *testing.T) {
	e := newEnv(t)
	ctx := newBrowser(t)
	do(t, ctx, "wrong password shows the error",
		chromedp.Navigate(e.srv.URL+"/login"),
		chromedp.SendKeys(chromedp.CSS("#email"), "root@example.com"),
		chromedp.SendKeys(chromedp.CSS("#password"), "not the password"),
		chromedp.Click(chromedp.CSS(`[data-testid="login-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="login-error"]`)),
	)
	if msg := value(t, ctx, chromedp.Text(chromedp.CSS(`[data-testid="login-error"]`))); !strings.Contains(msg, "Invalid email or password") {
		t.Fatalf("error text %q", msg)
	}
	shoot(t, ctx, "login-error")
	signInBrowser(t, ctx, e.srv.URL, "root@example.com")
	do(t, ctx, "open the first screen",
		chromedp.Navigate(e.srv.URL+"/settings/teams"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="teams-table"]`)),
	)
	if h := value(t, ctx, chromedp.Text(chromedp.CSS("h1"))); h != "Teams" {
		t.Fatalf("heading %q", h)
	}
	shoot(t, ctx, "settings-teams")
	t.Logf("screenshots in %s", screenshotDir(t))
}
