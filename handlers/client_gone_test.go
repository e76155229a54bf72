package handlers

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentroster/agentroster/models/testdb"
)

// logBuffer collects a handler's log lines for a test.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) lines(substr string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, l := range strings.Split(b.buf.String(), "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

// TestClientGoneIsNotAServerError: a client that hangs up while its request
// waits on the database is logged at info level with status 499 and counted
// under its own status class, not as a 5xx.
func TestClientGoneIsNotAServerError(t *testing.T) {
	_, dbURL := testdb.Fresh(t)
	logs := &logBuffer{}
	e := newEnvWith(t, dbURL, func(d *Deps) {
		d.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	tok := e.token("root@example.com")
	route := "/api/v1/organizations/:orgId/agents"
	path := "/api/v1/organizations/" + e.org.ID.String() + "/agents"

	// Hold a lock on the agents table so the list waits on the database.
	ctx := t.Context()
	tx, err := e.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "LOCK TABLE agents IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	reqCtx, cancel := context.WithCancel(ctx)
	req, _ := jsonRequest(http.MethodGet, e.srv.URL, path, tok, nil, "X-Request-ID", "client-gone-1")
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req.WithContext(reqCtx))
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	// Wait until the list query is blocked on the lock, then hang up.
	for waiting := 0; waiting == 0; {
		if err := e.db.NewRaw(`SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE '%agents%'`).Scan(ctx, &waiting); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			t.Fatalf("the request ended before waiting on the lock: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("client: %v, want its own cancellation", err)
	}
	// The server notices, the query is cancelled, the request ends.
	var line string
	for line == "" {
		if ls := logs.lines("request_id=client-gone-1"); len(ls) > 0 {
			for _, l := range ls {
				if strings.Contains(l, "msg=request ") {
					line = l
				}
			}
		}
		if line == "" {
			select {
			case <-ctx.Done():
				t.Fatal("no request log line")
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	tx.Rollback()
	if !strings.Contains(line, "level=INFO") || !strings.Contains(line, "status=499") {
		t.Fatalf("request log line %q, want level INFO and status 499", line)
	}
	for _, l := range logs.lines("request_id=client-gone-1") {
		if strings.Contains(l, "level=ERROR") || strings.Contains(l, "request failed") {
			t.Fatalf("logged as a server error: %q", l)
		}
	}
	samples := e.scrape("")
	if n := metricValue(samples, "agentroster_http_requests_total", map[string]string{"route": route, "status": "client_closed"}); n != 1 {
		t.Fatalf("client_closed requests counted: %v, want 1", n)
	}
	if n := metricValue(samples, "agentroster_http_requests_total", map[string]string{"route": route, "status": "5xx"}); n != 0 {
		t.Fatalf("5xx requests counted: %v, want 0", n)
	}
	// The same route still answers once the lock is gone.
	e.call(http.MethodGet, path, tok, nil).want(http.StatusOK)
}
