package handlers

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/agentroster/agentroster/models/testdb"
)

// checkInvariants reports every broken invariant as a test error and returns
// how many rows broke one.
func checkInvariants(t testing.TB, db bun.IDB) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	broken, err := testdb.CheckInvariants(ctx, db)
	if err != nil {
		t.Errorf("invariants: %v", err)
		return 1
	}
	for _, b := range broken {
		t.Errorf("invariant broken: %s", b)
	}
	return len(broken)
}

// summary logs one `SUMMARY key=value …` line; cmd/reliability adds them up.
func summary(t testing.TB, kv ...any) {
	t.Helper()
	var b strings.Builder
	b.WriteString("SUMMARY")
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, " %v=%v", kv[i], kv[i+1])
	}
	t.Log(b.String())
}

// rounds is how many times each race runs: RELIABILITY_ROUNDS, else def.
func rounds(def int) int {
	if n, err := strconv.Atoi(os.Getenv("RELIABILITY_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return def
}

// raceClient is shared by the concurrent requests of the reliability tests.
var raceClient = &http.Client{Timeout: 20 * time.Second}

// do sends one request from any goroutine (it never calls t.Fatal) and
// returns status and body; transport errors are status 0.
func (e *env) do(method, path, auth string, body any, headers ...string) (int, []byte) {
	return e.doWith(raceClient, method, path, auth, body, headers...)
}

// doWith is do with a given client.
func (e *env) doWith(client *http.Client, method, path, auth string, body any, headers ...string) (int, []byte) {
	req, err := jsonRequest(method, e.srv.URL, path, auth, body, headers...)
	if err != nil {
		return 0, nil
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// targetEvents counts audit events of action on target in the env's org.
func (e *env) targetEvents(action, targetID string) int {
	e.t.Helper()
	n, err := e.db.NewSelect().Table("audit_events").
		Where("org_id = ? AND action = ? AND target_id = ?", e.org.ID, action, targetID).Count(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	return int(n)
}
