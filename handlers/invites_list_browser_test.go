package handlers

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// seedInvites inserts n invites named inv-0001… for the org, one a minute
// older than the one before: every third spent, every fifth revoked, the
// rest active. It returns how many are active.
func seedInvites(t *testing.T, e *env, n int) int {
	t.Helper()
	_, err := e.db.ExecContext(t.Context(), `
		INSERT INTO invites (org_id, team_id, agent_name, adapter_type, token_hash, token_enc, max_uses, uses,
			created_at, expires_at, revoked_at)
		SELECT ?, (SELECT id FROM teams WHERE org_id = ? AND name = 'default'), 'inv-' || lpad(g::text, 4, '0'), 'http',
			sha256(('seed' || g)::bytea), '\x00'::bytea, 1, CASE WHEN g % 3 = 0 THEN 1 ELSE 0 END,
			now() - g * interval '1 minute', now() + interval '1 day',
			CASE WHEN g % 5 = 0 AND g % 3 <> 0 THEN now() END
		FROM generate_series(1, ?) AS g`, e.org.ID, e.org.ID, n)
	if err != nil {
		t.Fatal(err)
	}
	active := 0
	for g := 1; g <= n; g++ {
		if g%3 != 0 && g%5 != 0 {
			active++
		}
	}
	return active
}

// TestBrowserInviteListScales: at 600 invites the list pages by keyset
// through every active invite (no cap), searches as one types and filters by
// state, and the URL keeps the view.
func TestBrowserInviteListScales(t *testing.T) {
	e := newEnv(t)
	active := seedInvites(t, e, 600)
	ctx := newBrowser(t)
	watchCSP(t, ctx)
	signInBrowser(t, ctx, e.srv.URL, "root@example.com")
	do(t, ctx, "the list", chromedp.Navigate(e.srv.URL+"/agents/invites"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="invites-table"]`)))
	shoot(t, ctx, "invites-600")
	rows := `[data-testid="invite-row"]`
	names := func() []string {
		return value(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('[data-testid="invite-row"]')].map(r => r.dataset.agentName + "/" + r.dataset.state)`))
	}
	seen := map[string]bool{}
	for page := 1; ; page++ {
		got := names()
		if len(got) == 0 || len(got) > 50 {
			t.Fatalf("page %d has %d rows", page, len(got))
		}
		for _, n := range got {
			if !strings.HasSuffix(n, "/Active") || seen[n] {
				t.Fatalf("page %d: row %s (duplicate or not active)", page, n)
			}
			seen[n] = true
		}
		if count(t, ctx, `[data-testid="invites-next"]`) == 0 {
			break
		}
		first := got[0]
		do(t, ctx, "older", chromedp.Click(chromedp.CSS(`[data-testid="invites-next"]`)),
			chromedp.Poll[chromedp.Void](`document.querySelector('[data-testid="invite-row"]')?.dataset.agentName + "/Active" !== `+jsString(first)))
	}
	if len(seen) != active {
		t.Fatalf("paged through %d active invites, want %d", len(seen), active)
	}

	do(t, ctx, "search as one types",
		chromedp.Navigate(e.srv.URL+"/agents/invites?state=all"),
		chromedp.WaitVisible(chromedp.CSS(rows)),
		chromedp.SendKeys(chromedp.CSS("#invite-search"), "inv-05"),
		chromedp.Poll[chromedp.Void](`[...document.querySelectorAll('[data-testid="invite-row"]')].length === 50 &&
			[...document.querySelectorAll('[data-testid="invite-row"]')].every(r => r.dataset.agentName.startsWith("inv-05"))`),
	)
	// inv-0500…inv-0599: 100 rows, two pages.
	if count(t, ctx, `[data-testid="invites-next"]`) != 1 || !strings.Contains(value(t, ctx, chromedp.Evaluate[string](`location.search`)), "q=inv-05") {
		t.Fatal("search: no next page, or the URL does not keep the search")
	}
	do(t, ctx, "filter by state",
		chromedp.SetValue(chromedp.CSS("#invite-state"), "revoked"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("invite-state").dispatchEvent(new Event("change", {bubbles: true}))`),
		chromedp.Poll[chromedp.Void](`[...document.querySelectorAll('[data-testid="invite-row"]')].length > 0 &&
			[...document.querySelectorAll('[data-testid="invite-row"]')].every(r => r.dataset.state === "Revoked" && r.dataset.agentName.startsWith("inv-05"))`),
	)
	want := 0
	for g := 500; g <= 599; g++ {
		if g%5 == 0 && g%3 != 0 {
			want++
		}
	}
	if n := count(t, ctx, rows); n != want {
		t.Fatalf("revoked inv-05…: %d rows, want %d", n, want)
	}
	shoot(t, ctx, "invites-filtered")
	do(t, ctx, "nothing matches",
		chromedp.SendKeys(chromedp.CSS("#invite-search"), "zz"),
		chromedp.WaitVisible(chromedp.CSS(`#invites [data-testid="empty-state"]`)),
	)
	if v := cspViolations(t, ctx); len(v) > 0 {
		t.Fatalf("CSP violations: %q", v)
	}
}
