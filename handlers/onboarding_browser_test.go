package handlers

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/agentroster/agentroster/models"
)

// TestBrowserOnboardingEditor: an admin opens a team, sees the default
// document rendered, types a new one and sees the preview follow; a script,
// an event handler and a javascript: link in it render inert; saving stores
// the document as typed.
func TestBrowserOnboardingEditor(t *testing.T) {
	e := newEnv(t)
	team, err := models.DefaultTeam(t.Context(), e.db, e.org.ID)
	if err != nil {
		t.Fatal(err)
	}
	ctx := newBrowser(t)
	watchCSP(t, ctx)
	signInBrowser(t, ctx, e.srv.URL, "root@example.com")
	page := e.srv.URL + "/settings/teams/" + team.ID.String()
	do(t, ctx, "open the team", chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS(`[data-testid="onboarding-preview"] h1`)))
	if h := value(t, ctx, chromedp.Text(chromedp.CSS(`[data-testid="onboarding-preview"] h1`))); !strings.Contains(h, "Joining") {
		t.Fatalf("default document heading %q", h)
	}
	if !value(t, ctx, chromedp.Evaluate[bool](`document.querySelector('#team-onboarding').value.includes(`+jsString(e.srv.URL+"/mcp")+`)`)) {
		t.Fatal("the editor does not hold the default document")
	}
	shoot(t, ctx, "team-onboarding-default")

	doc := "# Fresh heading\n\nRun **byob join** first.\n\n<script>window.__pwned = 1</script>\n\n<img src=x onerror=\"window.__pwned = 2\">\n\n[click](javascript:window.__pwned=3)\n"
	// The user drags the editor taller (the browser sets its style), then types:
	// the live preview must not copy that style attribute (an inline style).
	value(t, ctx, chromedp.Evaluate[bool](`(document.querySelector('#team-onboarding').style.height = "420px") !== ""`))
	do(t, ctx, "type a new document",
		chromedp.Clear(chromedp.CSS("#team-onboarding")),
		chromedp.SendKeys(chromedp.CSS("#team-onboarding"), doc),
	)
	value(t, ctx, chromedp.Poll[bool](`document.querySelector('[data-testid="onboarding-preview"] h1')?.textContent === "Fresh heading"`))
	if s := value(t, ctx, chromedp.Text(chromedp.CSS(`[data-testid="onboarding-preview"] strong`))); s != "byob join" {
		t.Fatalf("bold text %q", s)
	}
	inert := `document.querySelectorAll('[data-testid="onboarding-preview"] script, [data-testid="onboarding-preview"] [onerror], [data-testid="onboarding-preview"] a[href^="javascript"]').length === 0 && window.__pwned === undefined`
	if !value(t, ctx, chromedp.Evaluate[bool](inert)) {
		t.Fatal("the preview kept something that runs")
	}
	shoot(t, ctx, "team-onboarding-preview")

	do(t, ctx, "save",
		chromedp.Click(chromedp.CSS(`[data-testid="team-edit-form"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="flash"]`)),
	)
	value(t, ctx, chromedp.Poll[bool](`document.querySelector('[data-testid="onboarding-preview"] h1')?.textContent === "Fresh heading"`))
	if !value(t, ctx, chromedp.Evaluate[bool](inert)) {
		t.Fatal("the saved document's preview kept something that runs")
	}
	stored, err := models.GetTeam(t.Context(), e.db, e.org.ID, team.ID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ReplaceAll(stored.Onboarding, "\r\n", "\n") != doc {
		t.Fatalf("stored document %q", stored.Onboarding)
	}
	// An htmx swap of the form (as a live refresh does) with the editor still
	// resized: settling must not copy its style attribute.
	value(t, ctx, chromedp.Evaluate[bool](`(document.querySelector('#team-onboarding').style.height = "420px") !== ""`))
	value(t, ctx, chromedp.Evaluate[bool](`(htmx.ajax("GET", location.pathname, {target: '[data-testid="team-edit-form"]', select: '[data-testid="team-edit-form"]', swap: "outerHTML"}), true)`))
	value(t, ctx, chromedp.Poll[bool](`!document.querySelector('#team-onboarding').style.height`))
	if v := cspViolations(t, ctx); len(v) > 0 {
		t.Fatalf("CSP violations: %q", v)
	}
}
