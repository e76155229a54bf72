package handlers

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestBrowserRosterJourney: a runtime registers with a team key while an
// operator watches the roster; the row appears, is approved inline, turns
// online, is stopped (the runtime gets 403) and deleted, all without reload.
func TestBrowserRosterJourney(t *testing.T) {
	e := newEnv(t)
	ctx := newBrowser(t)
	watchCSP(t, ctx)
	native := acceptDialogs(ctx)
	_, key := e.teamKey(e.org.ID)
	team := defaultTeamID(t, e)

	signInBrowser(t, ctx, e.srv.URL, "root@example.com")
	do(t, ctx, "empty roster names the next action",
		chromedp.Navigate(e.srv.URL+"/agents"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="empty-state"]`)),
	)
	waitLive(t, ctx)
	shoot(t, ctx, "agents-empty")
	// Mark the document: a reload would lose the mark.
	value(t, ctx, chromedp.Evaluate[bool](`window.__noReload = true`))

	e.call(http.MethodPost, "/api/v1/teams/"+team+"/agents/register", key,
		map[string]any{"id": "builder-1", "title": "Build agent", "llmVersion": "claude-sonnet-4", "machineName": "ci-7"}).want(http.StatusOK)
	row := `tr[data-agent-id="builder-1"]`
	do(t, ctx, "registered agent appears live", chromedp.WaitVisible(chromedp.CSS(row+`[data-status="pending"]`)))
	shoot(t, ctx, "agents-pending")

	do(t, ctx, "approve inline",
		chromedp.Click(chromedp.CSS(row+` [data-testid="action-approve"]`)),
		chromedp.WaitVisible(chromedp.CSS(row+`[data-status="approved"]`)),
	)
	if n := count(t, ctx, row+` [data-testid="action-approve"]`); n != 0 {
		t.Fatalf("approve button still shown on an approved agent")
	}

	e.call(http.MethodPost, "/api/v1/agents/builder-1/online", key, nil).want(http.StatusOK)
	do(t, ctx, "presence dot turns green without reload",
		chromedp.WaitVisible(chromedp.CSS(row+` [data-testid="presence-dot"][data-online="true"]`)))
	shoot(t, ctx, "agents-online")

	do(t, ctx, "stop inline",
		chromedp.Click(chromedp.CSS(row+` [data-testid="action-stop"]`)),
		chromedp.WaitVisible(chromedp.CSS(row+`[data-status="stopped"]`)),
		chromedp.WaitVisible(chromedp.CSS(row+` [data-testid="presence-dot"][data-online="false"]`)),
	)
	e.call(http.MethodPost, "/api/v1/agents/builder-1/online", key, nil).wantError(http.StatusForbidden, "agent_stopped")
	shoot(t, ctx, "agents-stopped")

	do(t, ctx, "agent detail",
		chromedp.Click(chromedp.CSS(row+` [data-testid="agent-link"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="agent-fields"]`)),
	)
	shoot(t, ctx, "agent-detail")
	do(t, ctx, "back to roster", chromedp.Navigate(e.srv.URL+"/agents"), chromedp.WaitVisible(chromedp.CSS(row)))
	value(t, ctx, chromedp.Evaluate[bool](`window.__noReload = true`))

	if e.dbAgent(e.org.ID, "builder-1") == nil {
		t.Fatal("agent gone before the delete")
	}
	do(t, ctx, "the confirmation", chromedp.Click(chromedp.CSS(row+` [data-testid="action-delete"]`)), chromedp.WaitVisible(chromedp.CSS(`#confirm-dialog[open]`)))
	if label := value(t, ctx, chromedp.Text(chromedp.CSS(`#confirm-dialog [data-testid="confirm-ok"]`))); label != "Delete" {
		t.Fatalf("confirm button %q, want the action's name", label)
	}
	shoot(t, ctx, "confirm-delete")
	do(t, ctx, "cancel", chromedp.Click(chromedp.CSS(`#confirm-dialog [data-testid="confirm-cancel"]`)), chromedp.WaitNotVisible(chromedp.CSS(`#confirm-dialog`)))
	if e.dbAgent(e.org.ID, "builder-1") == nil {
		t.Fatal("Cancel deleted the agent")
	}
	confirmStyled(t, ctx, row+` [data-testid="action-delete"]`)
	do(t, ctx, "deleted", chromedp.WaitNotPresent(chromedp.CSS(row)))
	if n := native.Load(); n != 0 {
		t.Fatalf("%d native JavaScript dialogs", n)
	}
	if v := cspViolations(t, ctx); len(v) > 0 {
		t.Fatalf("CSP violations across the journey: %q", v)
	}
	if !value(t, ctx, chromedp.Evaluate[bool](`window.__noReload === true`)) {
		t.Fatal("the roster reloaded; actions must swap rows in place")
	}
	if e.dbAgent(e.org.ID, "builder-1") != nil {
		t.Fatal("agent still in the database after delete")
	}
	e.call(http.MethodGet, "/api/v1/agents/builder-1/status", key, nil).want(http.StatusNotFound)

	for _, p := range []struct{ path, ready, name string }{
		{"/settings/api-keys", `[data-testid="keys-table"]`, "settings-api-keys"},
		{"/settings/columns", `[data-testid="columns-table"]`, "settings-columns"},
		{"/settings/teams", `[data-testid="teams-table"]`, "settings-teams"},
	} {
		do(t, ctx, p.path, chromedp.Navigate(e.srv.URL+p.path), chromedp.WaitVisible(chromedp.CSS(p.ready)))
		shoot(t, ctx, p.name)
	}
	t.Logf("screenshots in %s", screenshotDir(t))
}

// TestBrowserViewerSeesNoActions: a viewer sees the roster and details
// without a single state-changing button.
func TestBrowserViewerSeesNoActions(t *testing.T) {
	e := newEnv(t)
	e.agentIn(e.org.ID, "pending-1", "pending")
	e.agentIn(e.org.ID, "approved-1", "approved")
	e.agentIn(e.org.ID, "stopped-1", "stopped")
	e.user("viewer@example.com", "viewer")
	ctx := newBrowser(t)
	signInBrowser(t, ctx, e.srv.URL, "viewer@example.com")
	do(t, ctx, "roster", chromedp.Navigate(e.srv.URL+"/agents"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="agents-table"]`)))
	if n := count(t, ctx, `[data-testid="agent-row"]`); n != 3 {
		t.Fatalf("viewer sees %d rows, want 3", n)
	}
	if n := count(t, ctx, `[data-testid^="action-"], [data-testid="row-actions"]`); n != 0 {
		t.Fatalf("viewer sees %d action buttons on the roster", n)
	}
	shoot(t, ctx, "agents-viewer")
	do(t, ctx, "detail", chromedp.Navigate(e.srv.URL+"/agents/approved-1"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="agent-fields"]`)))
	if n := count(t, ctx, `main form[method="post"] button[type="submit"]:not([disabled])`); n != 0 {
		t.Fatalf("viewer sees %d enabled submit buttons on the detail page", n)
	}
	shoot(t, ctx, "agent-detail-viewer")
}

// TestBrowserLoginWithoutJavaScript: the login form is a plain form post.
func TestBrowserLoginWithoutJavaScript(t *testing.T) {
	e := newEnv(t)
	ctx := newBrowser(t)
	if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	signInBrowser(t, ctx, e.srv.URL, "root@example.com")
	do(t, ctx, "roster renders", chromedp.WaitVisible(chromedp.CSS(`[data-testid="nav-agents"]`)))
}

// TestBrowserNewAPIKeyCopy: a new key is shown once, and its copy button puts
// it on the clipboard while flashing check → copy → done.
func TestBrowserNewAPIKeyCopy(t *testing.T) {
	e := newEnv(t)
	ctx := newBrowser(t)
	grantClipboard(t, ctx, e.srv.URL)
	signInBrowser(t, ctx, e.srv.URL, "root@example.com")
	do(t, ctx, "create a key",
		chromedp.Navigate(e.srv.URL+"/settings/api-keys"),
		chromedp.SendKeys(chromedp.CSS("#key-name"), "ci-runner"),
		chromedp.Click(chromedp.CSS(`[data-testid="new-key-form"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="new-key"]`)),
	)
	raw := value(t, ctx, chromedp.Value(chromedp.CSS(`[data-testid="new-key-value"]`)))
	states, clip := copyStates(t, ctx, `[data-testid="new-key"] [data-testid="copy-button"]`)
	if strings.Join(states, " → ") != "check → copy → done" {
		t.Fatalf("copy states %q, want check → copy → done", states)
	}
	if clip != raw || !strings.HasPrefix(raw, "ag_ak_") {
		t.Fatalf("clipboard %q, key %q", clip, raw)
	}
	shoot(t, ctx, "settings-api-key-created")
}

// TestBrowserDialogKeyboard: the New invite dialog opens from the keyboard,
// takes the focus, closes on Esc and gives the focus back to its button.
func TestBrowserDialogKeyboard(t *testing.T) {
	e := newEnv(t)
	ctx := newBrowser(t)
	signInBrowser(t, ctx, e.srv.URL, "root@example.com")
	do(t, ctx, "open with Enter",
		chromedp.Navigate(e.srv.URL+"/agents/invites"),
		chromedp.Focus(chromedp.CSS(`[data-testid="new-invite"]`)),
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(chromedp.CSS(`#new-invite[open]`)),
	)
	if !value(t, ctx, chromedp.Evaluate[bool](`document.getElementById("new-invite").contains(document.activeElement)`)) {
		t.Fatal("focus did not move into the dialog")
	}
	labelled := value(t, ctx, chromedp.Evaluate[bool](`[...document.querySelectorAll("#new-invite input:not([type=hidden]), #new-invite select, #new-invite textarea")]
		.every(el => el.labels && el.labels.length > 0 || el.getAttribute("aria-label"))`))
	if !labelled {
		t.Fatal("a New invite field has no label")
	}
	shoot(t, ctx, "invite-new-dialog")
	do(t, ctx, "Esc closes",
		chromedp.KeyEvent(kb.Escape),
		chromedp.WaitNotVisible(chromedp.CSS(`#new-invite`)),
	)
	if id := value(t, ctx, chromedp.Evaluate[string](`document.activeElement.getAttribute("data-testid")`)); id != "new-invite" {
		t.Fatalf("focus went to %q, want the New invite button", id)
	}
}

// TestBrowserNewInviteWithoutJavaScript: New invite is a link to a page with
// the form, and the form is a plain post.
func TestBrowserNewInviteWithoutJavaScript(t *testing.T) {
	e := newEnv(t)
	ctx := newBrowser(t)
	if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	signInBrowser(t, ctx, e.srv.URL, "root@example.com")
	do(t, ctx, "create an invite with plain forms",
		chromedp.Navigate(e.srv.URL+"/agents/invites"),
		chromedp.Click(chromedp.CSS(`[data-testid="new-invite"]`)),
		chromedp.WaitVisible(chromedp.CSS(`main #inv-name`)),
		chromedp.SendKeys(chromedp.CSS(`main #inv-name`), "no-js-1"),
		chromedp.Click(chromedp.CSS(`main [data-testid="new-invite-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="invite-created"]`)),
	)
	link := value(t, ctx, chromedp.Value(chromedp.CSS("#created-invite-link")))
	if !strings.HasPrefix(link, e.srv.URL+"/invite/") {
		t.Fatalf("created link %q", link)
	}
	shoot(t, ctx, "invite-created-no-js")
}
