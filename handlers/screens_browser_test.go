package handlers

import (
	"bytes"
	"image/png"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/agentroster/agentroster/models"
)

// screen is a page to visit and what shows it is ready.
type screen struct{ name, path, ready string }

// everyScreen prepares one of each thing and lists every screen of the app.
func everyScreen(t *testing.T, e *env) []screen {
	t.Helper()
	e.relaxInviteLimits()
	tok := e.token("root@example.com")
	_, key := e.teamKey(e.org.ID)
	e.register(key, "mobile-1").want(http.StatusOK)
	e.agentIn(e.org.ID, "builder-with-a-rather-long-name-7", models.StatusApproved)
	e.joinNew(tok, "joiner-1")
	hook, _ := e.webhook(tok, "https://example.com/hooks", models.NotifyJoinRequestCreated)
	inv := e.invite(tok, map[string]any{"agentName": "landing-m"})
	return []screen{
		{"agents", "/agents", `[data-testid="agents-table"]`},
		{"agent-detail", "/agents/mobile-1", `[data-testid="agent-fields"]`},
		{"invites", "/agents/invites", `[data-testid="invites-table"]`},
		{"join-requests", "/agents/join-requests", `[data-testid="join-requests-table"]`},
		{"settings-teams", "/settings/teams", `[data-testid="teams-table"]`},
		{"settings-team", "/settings/teams/" + defaultTeamID(t, e), `[data-testid="team-edit-form"]`},
		{"settings-api-keys", "/settings/api-keys", `[data-testid="keys-table"]`},
		{"settings-columns", "/settings/columns", `[data-testid="columns-table"]`},
		{"settings-members", "/settings/members", `main h1`},
		{"settings-notifications", "/settings/notifications", `main h1`},
		{"webhook-deliveries", "/settings/notifications/" + hook.String(), `[data-testid="empty-state"]`},
		{"audit", "/audit", `[data-testid="audit-table"]`},
		{"account", "/account", `main h1`},
		{"platform", "/platform", `main h1`},
		{"api-docs", "/docs/api", `h1`},
		{"error-404", "/agents/nobody-here", `[data-testid="error-page"]`},
		{"invite-landing-m", inv.URL[len(e.srv.URL):], `[data-testid="join-form"]`},
	}
}

// TestBrowserMobileEveryScreen: at 390 px every screen fits the width (no
// sideways scrolling) under a header of at most 64 px whose menu opens; at
// 1280 px the header keeps its row of links.
func TestBrowserMobileEveryScreen(t *testing.T) {
	e := newEnv(t)
	screens := everyScreen(t, e)
	ctx := newBrowser(t)
	watchCSP(t, ctx)
	signInBrowser(t, ctx, e.srv.URL, "root@example.com")
	do(t, ctx, "390 px", chromedp.EmulateViewport(390, 844))
	for _, s := range screens {
		do(t, ctx, s.name, chromedp.Navigate(e.srv.URL+s.path), chromedp.WaitVisible(chromedp.CSS(s.ready)))
		if over := value(t, ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth - window.innerWidth`)); over > 0 {
			wide := value(t, ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("body *")].filter(el => el.getBoundingClientRect().right > window.innerWidth + 1).slice(0, 3).map(el => el.tagName + "." + el.className).join(" | ")`))
			t.Errorf("%s at 390 px scrolls sideways by %d px: %s", s.name, over, wide)
		}
		if count(t, ctx, "header") > 0 {
			if h := value(t, ctx, chromedp.Evaluate[float64](`document.querySelector("header").getBoundingClientRect().height`)); h > 64 {
				t.Errorf("%s: header %.0f px high at 390 px, want at most 64", s.name, h)
			}
		}
	}
	do(t, ctx, "the menu opens", chromedp.Navigate(e.srv.URL+"/agents"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="nav-menu"]`)),
		chromedp.Click(chromedp.CSS(`[data-testid="nav-menu"]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid="nav-invites"]`)))
	// 44-px tap targets: buttons and the menu.
	small := value(t, ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("main .btn, [data-testid=nav-menu]")].filter(b => b.offsetParent && b.getBoundingClientRect().height < 43.5).map(b => b.textContent.trim()).join(", ")`))
	if small != "" {
		t.Errorf("tap targets under 44 px at 390 px: %s", small)
	}
	shoot(t, ctx, "mobile-menu-open")
	do(t, ctx, "1280 px", chromedp.EmulateViewport(1280, 900), chromedp.Navigate(e.srv.URL+"/agents"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="nav-invites"]`)))
	if count(t, ctx, `[data-testid="nav-menu"]:not([hidden])`) > 0 && value(t, ctx, chromedp.Evaluate[bool](`!!document.querySelector("[data-testid=nav-menu]").offsetParent`)) {
		t.Error("the menu button shows at 1280 px")
	}
	if v := cspViolations(t, ctx); len(v) > 0 {
		t.Fatalf("CSP violations: %q", v)
	}
}

// TestBrowserDarkMode: the pages follow the system's dark preference, the
// toggle overrides it and the choice survives a reload; computed colours
// are the dark palette's. Screenshots of every screen in both themes.
func TestBrowserDarkMode(t *testing.T) {
	e := newEnv(t)
	screens := everyScreen(t, e)
	ctx := newBrowser(t)
	watchCSP(t, ctx)
	signInBrowser(t, ctx, e.srv.URL, "root@example.com")
	emulateScheme := func(scheme string) {
		t.Helper()
		if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}}); err != nil {
			t.Fatal(err)
		}
	}
	colours := func() (body, card, text string) {
		body = value(t, ctx, chromedp.Evaluate[string](`getComputedStyle(document.body).backgroundColor`))
		card = value(t, ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector(".card")).backgroundColor`))
		text = value(t, ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("main h1")).color`))
		return
	}
	const (
		darkBody, darkCard, darkText    = "rgb(3, 7, 18)", "rgb(17, 24, 39)", "rgb(243, 244, 246)"
		lightBody, lightCard, lightText = "rgb(249, 250, 251)", "rgb(255, 255, 255)", "rgb(17, 24, 39)"
	)
	check := func(what, wantBody, wantCard, wantText string) {
		t.Helper()
		if b, c, x := colours(); b != wantBody || c != wantCard || x != wantText {
			t.Fatalf("%s: body %s, card %s, heading %s; want %s, %s, %s", what, b, c, x, wantBody, wantCard, wantText)
		}
	}
	emulateScheme("dark")
	do(t, ctx, "the roster", chromedp.Navigate(e.srv.URL+"/agents"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="agents-table"]`)))
	check("system dark", darkBody, darkCard, darkText)
	do(t, ctx, "toggle to light", chromedp.Click(chromedp.CSS(`[data-testid="theme-toggle"]`)))
	check("toggled light", lightBody, lightCard, lightText)
	do(t, ctx, "reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`[data-testid="agents-table"]`)))
	check("light kept after reload", lightBody, lightCard, lightText)
	if p := attr(t, ctx, `[data-testid="theme-toggle"]`, "aria-pressed"); p != "false" {
		t.Fatalf("toggle aria-pressed %q in light", p)
	}
	do(t, ctx, "toggle to dark", chromedp.Click(chromedp.CSS(`[data-testid="theme-toggle"]`)))
	emulateScheme("light")
	check("toggled dark on a light system", darkBody, darkCard, darkText)

	for _, theme := range []string{"dark", "light"} {
		value(t, ctx, chromedp.Evaluate[bool](`(localStorage.setItem("theme", `+jsString(theme)+`), true)`))
		for _, s := range screens {
			do(t, ctx, s.name, chromedp.Navigate(e.srv.URL+s.path), chromedp.WaitVisible(chromedp.CSS(s.ready)))
			name := s.name
			if theme == "dark" {
				name += "-dark"
			}
			shoot(t, ctx, name)
		}
	}
	if v := cspViolations(t, ctx); len(v) > 0 {
		t.Fatalf("CSP violations: %q", v)
	}
}

// TestBrowserShortcutsAndSorting: "/" focuses the search, "n" opens New
// invite, and a roster column header sorts the rows both ways, also after a
// live refresh.
func TestBrowserShortcutsAndSorting(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"bravo", "alpha", "charlie"} {
		e.agentIn(e.org.ID, id, models.StatusApproved)
	}
	ctx := newBrowser(t)
	signInBrowser(t, ctx, e.srv.URL, "root@example.com")
	do(t, ctx, "roster", chromedp.Navigate(e.srv.URL+"/agents"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="agents-table"]`)))
	waitLive(t, ctx)
	do(t, ctx, "/", chromedp.KeyEvent("/"))
	if id := value(t, ctx, chromedp.Evaluate[string](`document.activeElement.id`)); id != "f-q" {
		t.Fatalf("/ focused %q, want the search", id)
	}
	order := func() string {
		return value(t, ctx, chromedp.Evaluate[string](`[...document.querySelectorAll('[data-testid="agent-row"]')].map(r => r.dataset.agentId).join(" ")`))
	}
	agentTh := `#agents-table thead th:nth-child(3)`
	do(t, ctx, "sort by agent", chromedp.Click(chromedp.CSS(agentTh+" button")))
	if o := order(); o != "alpha bravo charlie" || attr(t, ctx, agentTh, "aria-sort") != "ascending" {
		t.Fatalf("ascending: %q", o)
	}
	do(t, ctx, "sort again", chromedp.Click(chromedp.CSS(agentTh+" button")))
	if o := order(); o != "charlie bravo alpha" {
		t.Fatalf("descending: %q", o)
	}
	// A new agent arrives live: the list refreshes and stays sorted.
	e.agentIn(e.org.ID, "delta", models.StatusApproved)
	models.Publish(t.Context(), e.db, models.Event{Org: e.org.ID, Kind: models.EventAgentList})
	value(t, ctx, chromedp.Poll[bool](`document.querySelectorAll('[data-testid="agent-row"]').length === 4`))
	if o := order(); o != "delta charlie bravo alpha" {
		t.Fatalf("after a live refresh: %q", o)
	}
	do(t, ctx, "n opens New invite", chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`), chromedp.KeyEvent("n"), chromedp.WaitVisible(chromedp.CSS(`#inv-name`)))
	if !strings.Contains(value(t, ctx, chromedp.Evaluate[string](`location.href`)), "/agents/invites") {
		t.Fatal("n did not lead to the invites")
	}
	do(t, ctx, "n on the invites page opens the dialog", chromedp.Navigate(e.srv.URL+"/agents/invites"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="new-invite"]`)),
		chromedp.KeyEvent("n"), chromedp.WaitVisible(chromedp.CSS(`#new-invite[open]`)))
}

// TestBrowserToastAboveDialog: a toast raised while a modal dialog is open
// shows above it (the dialog's backdrop does not cover it).
func TestBrowserToastAboveDialog(t *testing.T) {
	e := newEnv(t)
	ctx := newBrowser(t)
	signInBrowser(t, ctx, e.srv.URL, "root@example.com")
	do(t, ctx, "open New invite", chromedp.Navigate(e.srv.URL+"/agents/invites"),
		chromedp.Click(chromedp.CSS(`[data-testid="new-invite"]`)), chromedp.WaitVisible(chromedp.CSS(`#new-invite[open]`)))
	value(t, ctx, chromedp.Evaluate[bool](`(document.body.dispatchEvent(new CustomEvent("showToast", {bubbles: true, detail: {message: "Saved.", level: "success"}})), true)`))
	// Hit testing skips what a modal dialog makes inert, so look at the
	// pixels: the toast's green shows undimmed by the backdrop.
	r := value(t, ctx, chromedp.Evaluate[[]float64](`(() => { const r = document.querySelector("#toasts .toast").getBoundingClientRect(); return [r.left, r.top, r.height]; })()`))
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatal(err)
	}
	scale := float64(img.Bounds().Dx()) / 1280
	cr, cg, cb, _ := img.At(int((r[0]+4)*scale), int((r[1]+r[2]/2)*scale)).RGBA()
	if g, rr, b := int(cg>>8), int(cr>>8), int(cb>>8); g < 140 || rr > 60 || b > 100 { // green-600 is 22,163,74; dimmed it is about 20,94,56
		t.Fatalf("toast pixel %d,%d,%d: not the toast's green (under the backdrop?)", rr, g, b)
	}
	shoot(t, ctx, "toast-over-dialog")
}
