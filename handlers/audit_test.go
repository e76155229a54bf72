package handlers

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/google/uuid"

	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/models/testdb"
)

// auditEvents writes n events into org with the given action and actor label.
func (e *env) auditEvents(org uuid.UUID, n int, action, actor, target string) {
	e.t.Helper()
	for i := range n {
		by := models.Actor{Type: "user", ID: uuid.NewString(), Label: actor, IP: "198.51.100.7", RequestID: fmt.Sprintf("req-%s-%d", action, i)}
		if err := models.Audit(e.t.Context(), e.db, org, by, action, "agent", target, map[string]any{"n": i}); err != nil {
			e.t.Fatal(err)
		}
	}
}

func auditIDs(t *testing.T, body string) []string {
	t.Helper()
	return parseHTML(t, body).Find(`[data-testid="audit-row"]`).Map(func(_ int, r *goquery.Selection) string { return r.AttrOr("data-id", "") })
}

func TestAuditScreenFiltersAndPages(t *testing.T) {
	e := newEnv(t)
	e.auditEvents(e.org.ID, 60, "agent.approved", "alice@example.com", "build-1")
	e.auditEvents(e.org.ID, 3, "agent.stopped", "bob@example.com", "build-2")
	other := e.otherOrg("Other", "other@example.com")
	e.auditEvents(other.ID, 2, "agent.stopped", "mallory@example.com", "secret-agent")
	e.user("viewer@example.com", models.RoleViewer)
	v := e.signIn("viewer@example.com")

	// Newest first, 50 a page, keyset link to the older ones.
	status, body := e.get(v, "/audit")
	ids := auditIDs(t, body)
	doc := parseHTML(t, body)
	if status != http.StatusOK || len(ids) != 50 || !doc.has(`[data-testid="audit-older"]`) {
		t.Fatalf("audit page: %d, %d rows", status, len(ids))
	}
	if !strings.Contains(doc.text(`[data-testid="audit-table"]`), "bob@example.com") || strings.Contains(body, "mallory@example.com") || strings.Contains(body, "secret-agent") {
		t.Fatal("audit page shows the wrong org's events")
	}
	if doc.withText(`[data-testid="audit-ip"]`, "198.51.100.7") == 0 || doc.withText(`code[title="request id"]`, "req-agent.stopped-2") == 0 ||
		!strings.Contains(doc.text(`[data-testid="audit-details"] pre`), `"n": 2`) {
		t.Error("audit rows lack the IP, the request id or the details")
	}
	older := doc.attr(`a[data-testid="audit-older"]`, "href")
	if !regexp.MustCompile(`^/audit\?before=\d+$`).MatchString(older) {
		t.Fatalf("older link %q", older)
	}
	_, body2 := e.get(v, older)
	ids2 := auditIDs(t, body2)
	if len(ids2) == 0 || ids2[0] >= ids[len(ids)-1] && len(ids2[0]) >= len(ids[len(ids)-1]) {
		t.Fatalf("second page does not continue the first: %v after %v", ids2[:1], ids[len(ids)-1])
	}
	seen := map[string]bool{}
	for _, id := range append(ids, ids2...) {
		if seen[id] {
			t.Fatalf("event %s on both pages", id)
		}
		seen[id] = true
	}

	// Filters.
	for _, tc := range []struct {
		query string
		rows  int
	}{
		{"action=agent.stopped", 3},
		{"action=agent.*&actor=bob@example.com", 3},
		{"targetType=agent&target=build-2", 3},
		{"actor=nobody@example.com", 0},
		{"since=2000-01-01T00:00&until=2001-01-01", 0},
		{"since=" + time.Now().Add(-time.Hour).UTC().Format("2006-01-02T15:04"), 50},
	} {
		status, body := e.get(v, "/audit?"+tc.query)
		if got := len(auditIDs(t, body)); status != http.StatusOK || got != tc.rows {
			t.Errorf("%s: status %d, %d rows, want %d", tc.query, status, got, tc.rows)
		}
	}
	if status, body := e.get(v, "/audit?since=yesterday"); status != http.StatusBadRequest || !parseHTML(t, body).has(`[data-testid="audit-filters"] [data-testid="error-since"]`) {
		t.Errorf("bad since: %d", status)
	}
	// Only platform admins see every org.
	if status, _ := e.get(v, "/audit?scope=all"); status != http.StatusForbidden {
		t.Errorf("viewer scope=all: %d", status)
	}
	sa := e.signIn("root@example.com")
	if _, body := e.get(sa, "/audit?scope=all&actor=mallory@example.com"); len(auditIDs(t, body)) != 2 {
		t.Error("platform admin does not see another org's events with scope=all")
	}

	// JSON with the same filters; pages through Link.
	tok := e.token("viewer@example.com")
	var evs []models.AuditEvent
	res := e.call(http.MethodGet, "/api/v1/audit?action=agent.approved&limit=40", tok, nil).want(http.StatusOK).decode(&evs)
	link := res.Header.Get("Link")
	if len(evs) != 40 || !strings.Contains(link, "before=") || evs[0].ID < evs[1].ID {
		t.Fatalf("audit JSON: %d events, link %q", len(evs), link)
	}
	next := link[strings.Index(link, "<")+1 : strings.Index(link, ">")]
	e.call(http.MethodGet, next, tok, nil).want(http.StatusOK).decode(&evs)
	if len(evs) != 20 || evs[0].RequestID == "" || evs[0].IP != "198.51.100.7" {
		t.Fatalf("audit JSON page 2: %d events", len(evs))
	}
	e.call(http.MethodGet, "/api/v1/audit?limit=9999", tok, nil).wantError(http.StatusBadRequest, "invalid_input")
}

func TestAuditExportCSV(t *testing.T) {
	e := newEnv(t)
	e.auditEvents(e.org.ID, 5, "agent.approved", "=HYPERLINK(\"x\")", "build-1")
	e.auditEvents(e.org.ID, 2, "agent.stopped", "bob@example.com", "build-2")
	c := e.signIn("root@example.com")
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/audit/export?action=agent.approved", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("export: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	recs, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 6 || strings.Join(recs[0], ",") != strings.Join(auditCSVHeader, ",") {
		t.Fatalf("export rows: %d %v", len(recs), recs[0])
	}
	if recs[1][6] != "agent.approved" || recs[1][5] != `'=HYPERLINK("x")` || recs[1][11] != `{"n":4}` || recs[1][0] <= recs[2][0] && len(recs[1][0]) <= len(recs[2][0]) {
		t.Fatalf("export row: %v", recs[1])
	}
	tok := e.token("root@example.com")
	res := e.call(http.MethodGet, "/api/v1/audit/export?actor=bob@example.com", tok, nil).want(http.StatusOK)
	if n := bytes.Count(res.Body, []byte("\n")); n != 3 {
		t.Fatalf("API export: %d lines", n)
	}
}

// TestAuditExportsAreBoundedAndFailLoudly: an export holds a database
// connection while its client reads, so an organization runs one at a time
// (the next is a 429); and an export cut short on the server (here its query
// is cancelled after the first rows went out) must not look like a whole
// file: the client's read fails instead of ending cleanly. The rows are many
// and wide so that the query is still sending, whatever the sockets buffer
// (up to 32 MiB each on loopback).
func TestAuditExportsAreBoundedAndFailLoudly(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	if _, err := e.db.ExecContext(ctx, `INSERT INTO audit_events (org_id, actor_type, action, details)
		SELECT ?, 'user', 'agent.approved', jsonb_build_object('pad', repeat('x', 1000)) FROM generate_series(1, 150000)`, e.org.ID); err != nil {
		t.Fatal(err)
	}
	// Straight to the handler: the test server's checker reads whole bodies.
	srv := httptest.NewServer(e.h.Routes())
	t.Cleanup(srv.Close) // after the bodies below are closed
	tok := e.token("root@example.com")
	export := func() *http.Response {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/audit/export", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	running := bufio.NewReader(export().Body)
	for range 2000 { // past the first flushes: the status is sent
		if _, err := running.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	busy := export()
	if b, _ := io.ReadAll(busy.Body); busy.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(b), "exports_busy") ||
		busy.Header.Get("Retry-After") == "" {
		t.Fatalf("a second export of the organization at once: %d %s", busy.StatusCode, b)
	}
	// Another organization's admin is not held up by it.
	e.otherOrg("Org B", "b-admin@example.com")
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/audit/export", nil)
	req.Header.Set("Authorization", "Bearer "+e.token("b-admin@example.com"))
	other, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(other.Body); other.StatusCode != http.StatusOK || !strings.HasPrefix(string(b), "id,") ||
		strings.Contains(string(b), e.org.ID.String()) {
		t.Fatalf("another organization's export while this one's runs (its own rows only): %d %.300s", other.StatusCode, b)
	}
	other.Body.Close()

	var cancelled int
	if err := e.db.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT pg_cancel_backend(pid) FROM pg_stat_activity
		WHERE query LIKE 'SELECT%FROM "audit_events"%' AND pid <> pg_backend_pid()) AS c`).Scan(&cancelled); err != nil || cancelled != 1 {
		t.Fatalf("cancel the export's query: %d, %v", cancelled, err)
	}
	if n, err := io.Copy(io.Discard, running); err == nil {
		t.Fatalf("the export ended cleanly after its query was cancelled (%d more bytes): a truncated file looks whole", n)
	}
	// Its slot is free again.
	if resp := export(); resp.StatusCode != http.StatusOK {
		t.Fatalf("export after the other ended: %d", resp.StatusCode)
	}
}

// TestExportSlots: one export per organization, maxExports in all (uuid.Nil
// is a platform admin's export of every organization), each slot free again
// once released.
func TestExportSlots(t *testing.T) {
	var s exportSlots
	orgs := []uuid.UUID{uuid.Nil}
	for len(orgs) < maxExports+1 {
		orgs = append(orgs, uuid.New())
	}
	for _, o := range orgs[:maxExports] {
		if !s.take(o) {
			t.Fatalf("slot for %s refused with fewer than %d running", o, maxExports)
		}
	}
	if s.take(orgs[0]) {
		t.Fatal("a second export of one organization got a slot")
	}
	if s.take(orgs[maxExports]) {
		t.Fatalf("a slot beyond %d", maxExports)
	}
	s.release(orgs[1])
	if !s.take(orgs[1]) {
		t.Fatal("a released slot is not free again")
	}
}

// TestAuditAppendOnly proves audit rows are never changed: the database
// refuses it, no code outside migrations says it, and calling every route of
// the server (as a platform admin, every method) leaves earlier rows as they were.
func TestAuditAppendOnly(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.auditEvents(e.org.ID, 3, "agent.approved", "alice@example.com", "build-1")

	for _, stmt := range []string{"UPDATE audit_events SET action = 'x'", "DELETE FROM audit_events", "TRUNCATE audit_events"} {
		if _, err := e.db.ExecContext(ctx, stmt); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want refused", stmt, err)
		}
	}

	// No Go code updates or deletes audit rows.
	bad := regexp.MustCompile(`(?is)(update\s+audit_events|delete\s+from\s+audit_events|truncate\s+(table\s+)?audit_events|New(Update|Delete)\(\)\s*\.\s*Model\(\s*(\(\*AuditEvent\)|&AuditEvent|&models\.AuditEvent|\(\*models\.AuditEvent\)))`)
	for _, dir := range []string{".", "../models", "../cmd/server", "../views"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if m := bad.Find(src); m != nil {
				t.Errorf("%s changes audit rows: %q", f, m)
			}
		}
	}

	// Every route, every method.
	params := e.walkParams()
	var last int64
	e.db.NewRaw("SELECT max(id) FROM audit_events").Scan(ctx, &last)
	snapshot := func() string {
		var s string
		e.db.NewRaw("SELECT md5(string_agg(a::text, ',' ORDER BY id)) FROM audit_events AS a WHERE id <= ?", last).Scan(ctx, &s)
		return s
	}
	before := snapshot()
	sa := e.signIn("root@example.com")
	tok := e.token("root@example.com")
	for _, r := range e.routeTable(params) {
		if r.Pattern == "/events" || r.Pattern == "/logout" {
			continue // a stream that does not end by itself; signing out ends the walk's session
		}
		for _, s := range []int{e.send(r, sa, ""), e.send(r, nil, tok)} {
			if s >= 500 {
				t.Errorf("%s: status %d", r, s)
			}
		}
	}
	if after := snapshot(); after != before {
		t.Fatal("earlier audit rows changed")
	}
}

// BenchmarkAuditExportCSV streams 1,000,000 audit rows through GET
// /api/v1/audit/export and reports the peak Go heap while it runs: the export
// reads one row at a time, so the figure stays flat as the row count grows.
// AUDIT_ROWS overrides the row count.
func BenchmarkAuditExportCSV(b *testing.B) {
	rows := 1_000_000
	if s := os.Getenv("AUDIT_ROWS"); s != "" {
		fmt.Sscan(s, &rows)
	}
	ctx := b.Context()
	_, dbURL := testdb.Fresh(b)
	db, err := models.Open(dbURL, 4)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	sa, _, err := models.EnsureBootstrapSA(ctx, db, "root@example.com", testPassword)
	if err != nil {
		b.Fatal(err)
	}
	orgs, _ := models.ListUserOrgs(ctx, db, sa.ID)
	start := time.Now()
	_, err = db.ExecContext(ctx, `INSERT INTO audit_events (org_id, actor_type, actor_id, actor_label, action, target_type, target_id, ip, request_id, details)
		SELECT ?, 'user', ?, 'alice@example.com', 'agent.approved', 'agent', 'build-' || g, '198.51.100.7', md5(g::text), jsonb_build_object('status', 'approved', 'n', g)
		FROM generate_series(1, ?) AS g`, orgs[0].ID, sa.ID.String(), rows)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d audit rows in %s", rows, time.Since(start).Round(time.Millisecond))
	inOrg, err := db.NewSelect().Table("audit_events").Where("org_id = ?", orgs[0].ID).Count(ctx)
	if err != nil {
		b.Fatal(err)
	}
	h, _ := startHandler(b, Deps{DB: db, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Secret: []byte("0123456789abcdef0123456789abcdef-test"), Config: Config{PublicURL: "http://localhost"}}, "")
	defer h.Close()
	srv := httptest.NewServer(h.Routes())
	defer srv.Close()
	tok, _ := h.tokens.Encode("bearer", bearerClaims{U: sa.ID.String(), E: sa.AuthEpoch})

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ms runtime.MemStats
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
			}
		}
	}()
	b.ResetTimer()
	var lines, size int64
	for range b.N {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/audit/export", nil)
		req.Header.Set("Authorization", "Bearer "+bearerPrefix+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, 64<<10)
		lines, size = 0, 0
		for {
			n, err := resp.Body.Read(buf)
			size += int64(n)
			lines += int64(bytes.Count(buf[:n], []byte("\n")))
			if err != nil {
				break
			}
		}
		resp.Body.Close()
	}
	b.StopTimer()
	close(stop)
	<-done
	// The header, the rows, and the export's own audit event.
	if lines != int64(inOrg)+2 {
		b.Fatalf("exported %d lines, want %d", lines, inOrg+2)
	}
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(base.HeapInuse)/(1<<20), "base-heap-MiB")
	b.ReportMetric(float64(size)/(1<<20), "csv-MiB")
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds()*float64(b.N), "rows/s")
}

// TestAuditExportEscapesEveryCell: a formula prefix in any column (the
// request id included) is neutralised, and commas, quotes and line breaks
// survive the round trip through a CSV reader.
func TestAuditExportEscapesEveryCell(t *testing.T) {
	e := newEnv(t)
	prefixes := []string{"=", "+", "-", "@", "\t", "\r"}
	sent := map[string]bool{}
	for i, p := range prefixes {
		v := p + `cmd|' /C calc'!A0,"x"` + "\n" + fmt.Sprint(i)
		sent[v] = true
		_, err := e.db.ExecContext(t.Context(), `INSERT INTO audit_events (org_id, actor_type, actor_id, actor_label, action, target_type, target_id, ip, request_id, details)
			VALUES (?, 'user', ?, ?, ?, ?, ?, ?, ?, ?)`, e.org.ID, v, v, v, v, v, v, v, `{"k":1}`)
		if err != nil {
			t.Fatal(err)
		}
	}
	// A request id chosen by the client, through a real audited request.
	tok := e.token("root@example.com")
	e.call(http.MethodPost, "/api/v1/organizations/"+e.org.ID.String()+"/teams", tok, map[string]any{"name": "csv-team"},
		"X-Request-ID", "-1234567.89").want(http.StatusCreated)

	res := e.call(http.MethodGet, "/api/v1/audit/export", tok, nil).want(http.StatusOK)
	recs, err := csv.NewReader(bytes.NewReader(res.Body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	hostile, teamRow := 0, false
	for _, rec := range recs[1:] {
		for col, cell := range rec {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				t.Errorf("column %s starts with %q: %q", auditCSVHeader[col], cell[0], cell)
			}
		}
		if rec[6] == "team.created" && rec[10] == "'-1234567.89" {
			teamRow = true
		}
		if strings.Contains(rec[4], "calc") {
			hostile++
			for _, col := range []int{4, 5, 6, 7, 8, 9, 10} {
				if !strings.HasPrefix(rec[col], "'") || !sent[rec[col][1:]] {
					t.Errorf("column %s: %q, want ' and the value stored", auditCSVHeader[col], rec[col])
				}
			}
		}
	}
	if hostile != len(prefixes) || !teamRow {
		t.Fatalf("export: %d hostile rows, team row with the client's request id %v", hostile, teamRow)
	}
}
