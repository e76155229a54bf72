package handlers

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/agentroster/agentroster/models"
)

// TestScreensGiveContext: the smaller things an operator relies on — the
// join request's invite by name, an adapter mismatch flagged, the decision
// time and the agent's page; audit targets by name; the team select on
// default and team ids on the Teams list; the nav badge for agents waiting
// for approval; focus on Password after a failed sign-in; HEAD on pages.
func TestScreensGiveContext(t *testing.T) {
	e := newEnv(t)
	e.relaxInviteLimits()
	tok := e.token("root@example.com")
	admin := e.signIn("root@example.com")
	// A team sorted before "default".
	e.call(http.MethodPost, "/api/v1/organizations/"+e.org.ID.String()+"/teams", tok, map[string]string{"name": "aaa-first"}).want(http.StatusCreated)

	inv := e.invite(tok, map[string]any{"agentName": "ctx-1", "adapterType": "http"})
	var j joinOut
	e.joinInvite(inv.Token, map[string]any{"adapterType": "mcp"}).want(http.StatusCreated).decode(&j)
	_, body := e.get(admin, "/agents/join-requests")
	doc := parseHTML(t, body)
	if !strings.Contains(doc.text(`[data-testid="adapter-mismatch"]`), "invite's http") ||
		doc.text(`[data-testid="field-Invite"]`) != "for ctx-1, http, 1 of 1 uses" || strings.Contains(body, inv.ID) {
		t.Fatalf("join request context missing:\n%s", body)
	}
	e.call(http.MethodPost, "/api/v1/internal/join-requests/"+j.JoinRequestID+"/approve", tok, struct{}{}).want(http.StatusOK)
	_, body = e.get(admin, "/agents/join-requests?status=approved")
	if doc := parseHTML(t, body); !doc.has(`[data-testid="jr-decided"]`) || doc.attr(`[data-testid="jr-agent-link"]`, "href") != "/agents/ctx-1" {
		t.Fatalf("approved row: no decision time or agent link:\n%s", body)
	}

	// Audit: the invite and the join request by their agent name, not their ids.
	_, body = e.get(admin, "/audit?action=invite.created")
	if parseHTML(t, body).withText(`[data-testid="audit-target"]`, "ctx-1") == 0 {
		t.Fatalf("audit target not named:\n%s", body)
	}

	// New invite: the default team is selected; the Teams list shows ids.
	_, form := e.get(admin, "/agents/invites/new")
	if selected := parseHTML(t, form).Find(`#inv-team option[selected]`); selected.Length() != 1 || selected.Text() != "default" || !regexp.MustCompile(`^[0-9a-f-]{36}$`).MatchString(selected.AttrOr("value", "")) {
		t.Fatalf("team select not on default:\n%s", form)
	}
	_, body = e.get(admin, "/settings/teams")
	if doc := parseHTML(t, body); !doc.has(`[value="`+defaultTeamID(t, e)+`"]`) || doc.text("main h1") != "Teams" {
		t.Fatalf("teams page: no team id, or not headed Teams:\n%s", body)
	}

	// A key-registered agent waiting for approval counts on the Agents tab.
	_, key := e.teamKey(e.org.ID)
	e.register(key, "reg-1").want(http.StatusOK)
	_, body = e.get(admin, "/agents")
	if parseHTML(t, body).attr(`[data-testid="agents-badge"]`, "data-count") != "1" {
		t.Fatalf("no agents badge:\n%s", body)
	}
	if _, frag := e.get(admin, "/nav/pending-badge?kind=agents"); parseHTML(t, frag).attr(`[data-testid="agents-badge"]`, "data-count") != "1" {
		t.Fatalf("badge fragment %s", frag)
	}
	if badge := parseHTML(t, body).Find(`[data-testid="agents-badge"] span`); badge.Text() != "1" {
		t.Fatalf("agents badge reads %q, want 1", badge.Text())
	}
	// Past models.BadgeCap the badge reads 99+ (and the count stops there).
	seedAgents(t, e.db, e.org.ID, 3*models.BadgeCap) // a third of them pending
	for _, path := range []string{"/agents", "/nav/pending-badge?kind=agents"} {
		_, frag := e.get(admin, path)
		if badge := parseHTML(t, frag).Find(`[data-testid="agents-badge"] span`); badge.Text() != "99+" {
			t.Fatalf("%s: agents badge reads %q with %d pending, want 99+", path, badge.Text(), models.BadgeCap+1)
		}
	}

	// A failed sign-in keeps the email and puts the cursor in Password.
	_, _, body = e.post(e.browser(), "/login", url.Values{"email": {"root@example.com"}, "password": {"wrong"}})
	if !regexp.MustCompile(`<input id="password"[^>]*autofocus`).MatchString(body) || regexp.MustCompile(`<input id="email"[^>]*autofocus`).MatchString(body) {
		t.Fatalf("focus after a failed sign-in:\n%s", body)
	}

	// HEAD answers like GET, without a body.
	for path, c := range map[string]*http.Client{"/login": e.browser(), "/agents": admin, "/invite/" + inv.Token: e.browser()} {
		req, _ := http.NewRequest(http.MethodHead, e.srv.URL+path, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := http.StatusOK
		if strings.HasPrefix(path, "/invite/") {
			want = http.StatusGone // spent by the join above
		}
		if resp.StatusCode != want || len(b) != 0 {
			t.Errorf("HEAD %s: %d with %d bytes, want %d and none", path, resp.StatusCode, len(b), want)
		}
	}
	if a := e.dbAgent(e.org.ID, "reg-1"); a == nil || a.Status != models.StatusPending {
		t.Fatalf("reg-1 %+v", a)
	}
}
