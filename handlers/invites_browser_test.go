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
	watchCSP(t, ctx)
	grantClipboard(t, ctx, e.srv.URL)
	native := acceptDialogs(ctx)
	signInBrowser(t, ctx, e.srv.URL, "root@example.com")
	do(t, ctx, "open the first screen",
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
	)
	link := value(t, ctx, chromedp.Value(chromedp.CSS("#created-invite-link")))
	states, clip := copyStates(t, ctx, `#new-invite [data-testid="copy-button"]`)
	if strings.Join(states, " → ") != "check → copy → done" || clip != link {
		t.Fatalf("Copy link: states %q, clipboard %q; want check → copy → done and %q", states, clip, link)
	}
	shoot(t, ctx, "invite-created")
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
	waitLive(t, ctx)
	// A runtime joins: the row and the nav badge arrive without a reload.
	var joined joinOut
	e.joinInvite(token, map[string]any{"adapterType": "mcp", "title": "Web one", "machineName": "build-7", "ramBytes": 17179869184},
		"User-Agent", "runtime/1.0").want(http.StatusCreated).decode(&joined)
	e.claim(joined.JoinRequestID, joined.ClaimSecret).want(http.StatusAccepted)
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

	// The runtime claims its key and goes online while the operator watches
	// the roster; then the operator stops and deletes it inline.
	row := `tr[data-agent-id="web-1"]`
	do(t, ctx, "roster", chromedp.Navigate(e.srv.URL+"/agents"), chromedp.WaitVisible(chromedp.CSS(row+`[data-status="approved"]`)))
	value(t, ctx, chromedp.Evaluate[bool](`window.__noReload = true`))
	waitLive(t, ctx)
	var key claimOut
	e.claim(joined.JoinRequestID, joined.ClaimSecret).want(http.StatusOK).decode(&key)
	e.call(http.MethodPost, "/api/v1/agents/web-1/online", key.APIKey, nil).want(http.StatusOK)
	do(t, ctx, "the presence dot turns green without reload",
		chromedp.WaitVisible(chromedp.CSS(row+` [data-testid="presence-dot"][data-online="true"]`)))
	shoot(t, ctx, "agents-invited-online")
	do(t, ctx, "stop inline",
		chromedp.Click(chromedp.CSS(row+` [data-testid="action-stop"]`)),
		chromedp.WaitVisible(chromedp.CSS(row+`[data-status="stopped"] [data-testid="presence-dot"][data-online="false"]`)),
	)
	e.call(http.MethodPost, "/api/v1/agents/web-1/online", key.APIKey, nil).wantError(http.StatusForbidden, "agent_stopped")
	confirmStyled(t, ctx, row+` [data-testid="action-delete"]`)
	do(t, ctx, "deleted", chromedp.WaitNotPresent(chromedp.CSS(row)))
	if !value(t, ctx, chromedp.Evaluate[bool](`window.__noReload === true`)) {
		t.Fatal("the roster reloaded during the journey")
	}
	e.call(http.MethodGet, "/api/v1/agents/web-1/status", key.APIKey, nil).want(http.StatusUnauthorized)

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

	// The operator re-issues the claim of the approved request: the new
	// secret shows once, above the list, and stays while the list refreshes.
	// Leave the page first: while open it claims the key once approved.
	do(t, ctx, "leave the invite page", chromedp.Navigate("about:blank"))
	var jrs []struct{ ID, AgentName string }
	e.call(http.MethodGet, "/api/v1/internal/join-requests?status=pending", tok, nil).want(http.StatusOK).decode(&jrs)
	if len(jrs) != 1 || jrs[0].AgentName != "landing-1" {
		t.Fatalf("pending %+v", jrs)
	}
	e.call(http.MethodPost, "/api/v1/internal/join-requests/"+jrs[0].ID+"/approve", tok, struct{}{}).want(http.StatusOK)
	do(t, ctx, "re-issue the claim",
		chromedp.Navigate(e.srv.URL+"/agents/join-requests?status=approved"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-agent-name="landing-1"] [data-testid="jr-reissue"]`)),
	)
	waitLive(t, ctx)
	confirmStyled(t, ctx, `tr[data-agent-name="landing-1"] [data-testid="jr-reissue"]`)
	do(t, ctx, "the new secret shows", chromedp.WaitVisible(chromedp.CSS(`[data-testid="claim-reissued"]`)))
	_, other := e.joinNew(tok, "landing-2")
	e.call(http.MethodPost, "/api/v1/internal/join-requests/"+other.JoinRequestID+"/approve", tok, struct{}{}).want(http.StatusOK)
	do(t, ctx, "the list refreshes live, the secret stays",
		chromedp.WaitVisible(chromedp.CSS(`tr[data-agent-name="landing-2"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="claim-reissued"]`)),
	)
	shoot(t, ctx, "join-request-reissued")
	reissued := value(t, ctx, chromedp.Value(chromedp.CSS("#reissued-secret")))
	e.claim(jrs[0].ID, secret).wantError(http.StatusUnauthorized, "invalid_claim_secret")
	e.claim(jrs[0].ID, reissued).want(http.StatusOK)
	if v := cspViolations(t, ctx); len(v) > 0 {
		t.Fatalf("CSP violations across the journey: %q", v)
	}
	if n := native.Load(); n != 0 {
		t.Fatalf("%d native JavaScript dialogs", n)
	}
}
