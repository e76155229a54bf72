package handlers

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The browser tests' helpers: Debian's Chromium driven by chromedp.

// chromiumPath finds Debian's Chromium; CI=true makes its absence a failure.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("Chromium not found (CI=true requires it): install Debian's chromium package")
	}
	t.Skip("Chromium not found; install Debian's chromium package to run browser tests")
	return ""
}

// screenshotDir is where browser tests write their screenshots (ignored by git).
func screenshotDir(t *testing.T) string {
	dir, _ := filepath.Abs(filepath.Join("..", "screenshots"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser starts a headless Chromium (with extra options, if any) and
// returns a tab context.
func newBrowser(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, // root in CI
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	opts = append(opts, extra...)
	actx, cancelA := chromedp.NewExecAllocator(t.Context(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelB(); cancelA() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// shoot saves full-page screenshots of the current page at 1280 and 390 px.
func shoot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := screenshotDir(t)
	for _, width := range []int64{1280, 390} {
		err := chromedp.Do(ctx, chromedp.EmulateViewport(width, 900), chromedp.Sleep(100*time.Millisecond))
		var png []byte
		if err == nil {
			png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
		}
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		file := filepath.Join(dir, name+"-"+itoa(int(width))+".png")
		if err := os.WriteFile(file, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900))
}

// do runs browser steps with a time limit, failing the test on error.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// value runs one browser query with a time limit.
func value[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	v, err := chromedp.Run(tctx, a)
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	return v
}

// signInBrowser signs the browser in through the login form.
func signInBrowser(t *testing.T, ctx context.Context, base, email string) {
	t.Helper()
	do(t, ctx, "sign in as "+email,
		chromedp.Navigate(base+"/login"),
		chromedp.SendKeys(chromedp.CSS("#email"), email),
		chromedp.SendKeys(chromedp.CSS("#password"), testPassword),
		chromedp.Click(chromedp.CSS(`[data-testid="login-submit"]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`[data-testid="login-form"]`)),
	)
}

// waitLive waits until the page's event stream is connected, so that a
// change made next is pushed to it.
func waitLive(t *testing.T, ctx context.Context) {
	t.Helper()
	do(t, ctx, "event stream connected", chromedp.WaitReady(chromedp.CSS(`body[data-live="open"]`)))
}

// acceptDialogs answers every native JavaScript dialog (alert, confirm) of
// the tab with OK and counts them: the screens use styled <dialog>
// confirmations, so a test expects none.
func acceptDialogs(ctx context.Context) *atomic.Int32 {
	var n atomic.Int32
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			n.Add(1)
			chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	return &n
}

// confirmStyled answers the styled confirmation dialog that clicking sel
// opens: its focus starts on Cancel, Esc dismisses it (nothing happens), and
// the named action button confirms.
func confirmStyled(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	do(t, ctx, "ask "+sel, chromedp.Click(chromedp.CSS(sel)), chromedp.WaitVisible(chromedp.CSS(`#confirm-dialog[open]`)))
	if f := value(t, ctx, chromedp.Evaluate[string](`document.activeElement.getAttribute("data-testid") || ""`)); f != "confirm-cancel" {
		t.Fatalf("focus on %q in the confirmation, want Cancel", f)
	}
	do(t, ctx, "Esc dismisses", chromedp.KeyEvent(kb.Escape), chromedp.WaitNotVisible(chromedp.CSS(`#confirm-dialog`)))
	if !value(t, ctx, chromedp.Evaluate[bool](`document.activeElement === document.querySelector(`+jsString(sel)+`)`)) {
		t.Fatal("focus did not return to the button after Esc")
	}
	do(t, ctx, "ask again", chromedp.Click(chromedp.CSS(sel)), chromedp.WaitVisible(chromedp.CSS(`#confirm-dialog[open]`)))
	do(t, ctx, "confirm", chromedp.Click(chromedp.CSS(`#confirm-dialog [data-testid="confirm-ok"]`)))
}

// attr reads one attribute of the first node matching sel.
func attr(t *testing.T, ctx context.Context, sel, name string) string {
	t.Helper()
	attrs := value(t, ctx, chromedp.Attributes(chromedp.CSS(sel)))
	return attrs[name]
}

// count returns how many nodes match sel right now.
func count(t *testing.T, ctx context.Context, sel string) int {
	t.Helper()
	return value(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+jsString(sel)+`).length`))
}

func jsString(s string) string {
	b := []byte{'"'}
	for _, r := range s {
		if r == '"' || r == '\\' {
			b = append(b, '\\')
		}
		b = append(b, string(r)...)
	}
	return string(append(b, '"'))
}

// grantClipboard lets the page write to the clipboard without a prompt.
func grantClipboard(t *testing.T, ctx context.Context, origin string) {
	t.Helper()
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		_, err := chromedp.CallBrowser(ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: name, AllowWithoutSanitization: true},
			Setting:    browser.PermissionSettingGranted,
			Origin:     origin,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// copyStates clicks the copy button sel and returns the data-copy-state values
// it went through, and the clipboard's text afterwards.
func copyStates(t *testing.T, ctx context.Context, sel string) ([]string, string) {
	t.Helper()
	value(t, ctx, chromedp.Evaluate[bool](`(() => {
		const b = document.querySelector(`+jsString(sel)+`);
		window.__copyStates = [];
		new MutationObserver(() => window.__copyStates.push(b.getAttribute("data-copy-state")))
			.observe(b, {attributes: true, attributeFilter: ["data-copy-state"]});
		return true;
	})()`))
	do(t, ctx, "click copy",
		chromedp.Click(chromedp.CSS(sel)),
		chromedp.WaitVisible(chromedp.CSS(sel+`[data-copy-state="done"]`)),
	)
	states := value(t, ctx, chromedp.Evaluate[[]string](`window.__copyStates`))
	clip := value(t, ctx, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise))
	return states, clip
}

// watchCSP records every Content-Security-Policy violation of the tab, across
// navigations (in sessionStorage), for cspViolations to read.
func watchCSP(t *testing.T, ctx context.Context) {
	t.Helper()
	_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
		document.addEventListener("securitypolicyviolation", (e) => {
			const seen = JSON.parse(sessionStorage.getItem("csp") || "[]");
			seen.push(e.violatedDirective + " " + (e.blockedURI || "") + " " + location.pathname);
			sessionStorage.setItem("csp", JSON.stringify(seen));
		});`})
	if err != nil {
		t.Fatal(err)
	}
}

// cspViolations returns the violations watchCSP recorded in this tab.
func cspViolations(t *testing.T, ctx context.Context) []string {
	t.Helper()
	return value(t, ctx, chromedp.Evaluate[[]string](`JSON.parse(sessionStorage.getItem("csp") || "[]")`))
}
