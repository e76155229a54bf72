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

	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/models/testdb"
)

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
