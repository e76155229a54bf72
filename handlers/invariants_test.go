package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"
)

// Invariants the reliability tests check in the database after every race,
// fault and hostile request. Each query counts rows that break one rule.
var invariantQueries = []struct{ name, sql string }{
	{"invite uses equal its join requests", `
		SELECT count(*) FROM invites i
		WHERE i.uses <> (SELECT count(*) FROM join_requests j WHERE j.invite_id = i.id)`},
	{"invite uses within max uses", `SELECT count(*) FROM invites WHERE uses < 0 OR uses > max_uses`},
	{"decided iff decided_at set", `
		SELECT count(*) FROM join_requests WHERE (status = 'PENDING') <> (decided_at IS NULL)`},
	{"at most one decision event per join request", `
		SELECT count(*) FROM (
			SELECT target_id FROM audit_events
			WHERE target_type = 'join_request' AND action ~ '\.(approved|rejected)$'
			GROUP BY target_id HAVING count(*) > 1) d`},
	{"decision event matches status", `
		SELECT count(*) FROM join_requests j
		WHERE j.status <> 'PENDING' AND EXISTS (
			SELECT 1 FROM audit_events a WHERE a.target_type = 'join_request' AND a.target_id = j.id::text
			AND a.action ~ '\.(approved|rejected)$')
		AND NOT EXISTS (
			SELECT 1 FROM audit_events a WHERE a.target_type = 'join_request' AND a.target_id = j.id::text
			AND a.action = 'join_request.' || lower(j.status))`},
	{"approved request names its agent, others none", `
		SELECT count(*) FROM join_requests WHERE (status = 'APPROVED') <> (agent_id IS NOT NULL)`},
	{"at most one key per join request", `
		SELECT count(*) FROM (SELECT join_request_id FROM api_keys WHERE join_request_id IS NOT NULL
			GROUP BY join_request_id HAVING count(*) > 1) d`},
	{"claimed iff a key was issued", `
		SELECT count(*) FROM join_requests j
		WHERE (j.claimed_at IS NOT NULL) <> EXISTS (SELECT 1 FROM api_keys k WHERE k.join_request_id = j.id)`},
	{"claimed only when approved", `SELECT count(*) FROM join_requests WHERE claimed_at IS NOT NULL AND status <> 'APPROVED'`},
	{"no online agent that is not approved", `SELECT count(*) FROM agents WHERE is_online AND status <> 'approved'`},
	{"pickup only for approved agents", `SELECT count(*) FROM agents WHERE pickup_enabled AND status <> 'approved'`},
	{"no key of a deleted agent", `
		SELECT count(*) FROM api_keys k WHERE k.agent_id IS NOT NULL
		AND NOT EXISTS (SELECT 1 FROM agents a WHERE a.org_id = k.org_id AND a.id = k.agent_id)`},
	{"revoked keys are inactive", `SELECT count(*) FROM api_keys WHERE revoked_at IS NOT NULL AND is_active`},
	// The last status event of every agent agrees with its status: no change
	// was applied without its event, or audited without being applied.
	{"agent status agrees with its last status event", `
		SELECT count(*) FROM agents a
		JOIN LATERAL (
			SELECT e.action FROM audit_events e
			WHERE e.org_id = a.org_id AND e.target_type = 'agent' AND e.target_id = a.id
			AND e.action IN ('agent.registered', 'agent.approved', 'agent.stopped', 'agent.resumed', 'agent.deleted')
			ORDER BY e.id DESC LIMIT 1) last ON true
		WHERE last.action <> 'agent.deleted' AND a.status <> CASE last.action
			WHEN 'agent.registered' THEN 'pending' WHEN 'agent.stopped' THEN 'stopped' ELSE 'approved' END`},
	{"every audit event has an actor", `SELECT count(*) FROM audit_events WHERE actor_type = '' OR actor_id = ''`},
}

// checkInvariants reports every broken invariant as a test error and returns
// how many rows broke one.
func checkInvariants(t testing.TB, db bun.IDB) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bad := 0
	for _, q := range invariantQueries {
		var n int
		if err := db.NewRaw(q.sql).Scan(ctx, &n); err != nil {
			t.Errorf("invariant %q: %v", q.name, err)
			bad++
			continue
		}
		if n > 0 {
			t.Errorf("invariant broken: %s (%d rows)", q.name, n)
			bad += n
		}
	}
	return bad
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
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, r)
	if err != nil {
		return 0, nil
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		if strings.HasPrefix(auth, "ag_ak_") {
			req.Header.Set("Authorization", "ApiKey "+auth)
		} else {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := raceClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// auditCount counts audit events of action on target in the env's org.
func (e *env) auditCount(action, targetID string) int {
	e.t.Helper()
	n, err := e.db.NewSelect().Table("audit_events").
		Where("org_id = ? AND action = ? AND target_id = ?", e.org.ID, action, targetID).Count(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	return int(n)
}
