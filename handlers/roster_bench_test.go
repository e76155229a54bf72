package handlers

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/models/testdb"
)

// seedAgents inserts n agents into org's default team with one INSERT … SELECT:
// a third each pending, approved (half of those online) and stopped, one
// second apart, titles "Agent <i>".
func seedAgents(tb testing.TB, db *bun.DB, org uuid.UUID, n int) {
	tb.Helper()
	team, err := models.DefaultTeam(tb.Context(), db, org)
	if err != nil {
		tb.Fatal(err)
	}
	_, err = db.ExecContext(tb.Context(), `INSERT INTO agents (org_id, id, team_id, title, status, pickup_enabled, is_online, last_seen_at,
			machine_name, llm_version, adapter_type, joined_via, created_at)
		SELECT ?, 'agent-' || g, ?, 'Agent ' || g, s.status, s.status = 'approved', s.status = 'approved' AND g % 2 = 0,
			CASE WHEN g % 4 = 0 THEN now() END, 'host-' || (g % 50), 'claude-opus-4-7', 'mcp', 'register',
			now() - make_interval(secs => g)
		FROM generate_series(1, ?) AS g
		CROSS JOIN LATERAL (SELECT (ARRAY['pending', 'approved', 'stopped'])[g % 3 + 1] AS status) AS s`, org, team.ID, n)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := db.ExecContext(tb.Context(), "ANALYZE agents"); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkRosterPage10k renders page 1 of the roster of an org with 10,000
// agents, through the real server, as a signed-in admin.
func BenchmarkRosterPage10k(b *testing.B) {
	db := testdb.New(b)
	ctx := b.Context()
	sa, _, err := models.EnsureBootstrapSA(ctx, db, "root@example.com", testPassword)
	if err != nil {
		b.Fatal(err)
	}
	orgs, err := models.ListUserOrgs(ctx, db, sa.ID)
	if err != nil || len(orgs) != 1 {
		b.Fatal(orgs, err)
	}
	seedAgents(b, db, orgs[0].ID, 10_000)
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	h, _ := startHandler(b, Deps{DB: db, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Secret: []byte("0123456789abcdef0123456789abcdef-test"), Config: Config{PublicURL: srv.URL}}, "")
	srv.Config.Handler = h.Routes()
	b.Cleanup(func() { srv.Close(); h.Close() })

	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/login", strings.NewReader(url.Values{"email": {"root@example.com"}, "password": {testPassword}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := client.Do(req)
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		b.Fatal("sign in", err)
	}
	resp.Body.Close()

	get := func() string {
		resp, err := client.Get(srv.URL + "/agents")
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("roster: %d", resp.StatusCode)
		}
		return string(body)
	}
	if doc := parseHTML(b, get()); doc.count(`[data-testid="agent-row"]`) != rosterPageSize || !doc.has(`a[data-testid="next-page"]`) {
		b.Fatal("page 1 does not show 50 agents and a Next link")
	}
	for b.Loop() {
		get()
	}
}
