package handlers

import (
	"context"
	"net/http"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/agentroster/agentroster/models"
)

// TestBrowserErrorPages: the 403, 404 and 410 pages a user meets show a
// heading, a sentence and a link onward that works.
func TestBrowserErrorPages(t *testing.T) {
	e := newEnv(t)
	e.relaxInviteLimits()
	e.user("viewer@example.com", models.RoleViewer)
	tok := e.token("root@example.com")
	inv, _ := e.joinNew(tok, "used-up") // one use: spent now
	ctx := newBrowser(t)
	watchCSP(t, ctx)
	check := func(ctx context.Context, name, path string, status int, heading, next string) {
		t.Helper()
		do(t, ctx, name, chromedp.Navigate(e.srv.URL+path), chromedp.WaitVisible(chromedp.CSS(`[data-testid="error-page"]`)))
		if s := attr(t, ctx, `[data-testid="error-page"]`, "data-status"); s != itoa(status) {
			t.Fatalf("%s: status %s, want %d", name, s, status)
		}
		if h := value(t, ctx, chromedp.Text(chromedp.CSS("h1"))); h != heading {
			t.Fatalf("%s: heading %q, want %q", name, h, heading)
		}
		if s := value(t, ctx, chromedp.Text(chromedp.CSS(`[data-testid="error-sentence"]`))); len(s) < 20 {
			t.Fatalf("%s: sentence %q", name, s)
		}
		shoot(t, ctx, name)
		do(t, ctx, name+": the link leads on", chromedp.Click(chromedp.CSS(`[data-testid="error-link"]`)), chromedp.WaitVisible(chromedp.CSS(next)))
	}
	check(ctx, "error-404-public", "/invite/"+models.RandomBase62(32), http.StatusNotFound, "Page not found", `[data-testid="login-form"]`)
	check(ctx, "error-410-public", "/invite/"+inv.Token, http.StatusGone, "This link no longer works", `[data-testid="login-form"]`)
	signInBrowser(t, ctx, e.srv.URL, "viewer@example.com")
	check(ctx, "error-404", "/agents/no-such-agent", http.StatusNotFound, "Page not found", `[data-testid="agents-page"], main h1`)
	check(ctx, "error-403", "/platform", http.StatusForbidden, "You don't have access to this", `main h1`)
	if v := cspViolations(t, ctx); len(v) > 0 {
		t.Fatalf("CSP violations: %q", v)
	}
}
