package testdb

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
)

// CheckInvariants checks the rules the reliability tests assert after every
// race, fault and hostile request: invite uses equal their join requests, one
// decision per request, one agent and at most one key per approved request,
// unclaimed approved requests bound to their agent row (or void), no online or pickup-enabled agent that is not approved, no key of a deleted
// agent, and every agent's status agreeing with its last status event. It
// returns one line per broken rule (with the number of rows breaking it).
func CheckInvariants(ctx context.Context, db bun.IDB) ([]string, error) {
	var broken []string
	for _, q := range invariantQueries {
		var n int
		if err := db.NewRaw(q.sql).Scan(ctx, &n); err != nil {
			return broken, fmt.Errorf("invariant %q: %w", q.name, err)
		}
		if n > 0 {
			broken = append(broken, fmt.Sprintf("%s (%d rows)", q.name, n))
		}
	}
	return broken, nil
}

// invariantQueries count the rows that break one rule each.
var invariantQueries = []struct{ name, sql string }{
	{"invite uses equal its join requests", `
		SELECT count(*) FROM invites i
		WHERE i.uses <> (SELECT count(*) FROM join_requests j WHERE j.invite_id = i.id)`},
	{"no name reserved by two active invites", `
		SELECT count(*) FROM (SELECT org_id, agent_name FROM invites
			WHERE revoked_at IS NULL AND uses < max_uses AND expires_at > now()
			GROUP BY org_id, agent_name HAVING count(*) > 1) d`},
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
	// A claimed request's key goes when its agent is deleted (cascade).
	{"claimed iff a key was issued (or its agent was deleted since)", `
		SELECT count(*) FROM join_requests j
		WHERE CASE WHEN j.claimed_at IS NULL THEN EXISTS (SELECT 1 FROM api_keys k WHERE k.join_request_id = j.id)
			ELSE NOT EXISTS (SELECT 1 FROM api_keys k WHERE k.join_request_id = j.id)
				AND EXISTS (SELECT 1 FROM agents a WHERE a.org_id = j.org_id AND a.id = j.agent_id AND a.uid = j.agent_uid) END`},
	{"claimed only when approved", `SELECT count(*) FROM join_requests WHERE claimed_at IS NOT NULL AND status <> 'APPROVED'`},
	{"no online agent that is not approved", `SELECT count(*) FROM agents WHERE is_online AND status <> 'approved'`},
	{"pickup only for approved agents", `SELECT count(*) FROM agents WHERE pickup_enabled AND status <> 'approved'`},
	{"no key of a deleted agent", `
		SELECT count(*) FROM api_keys k WHERE k.agent_id IS NOT NULL
		AND NOT EXISTS (SELECT 1 FROM agents a WHERE a.org_id = k.org_id AND a.id = k.agent_id)`},
	{"an unclaimed approved request is bound to its agent row or void", `
		SELECT count(*) FROM join_requests j
		WHERE j.status = 'APPROVED' AND j.claimed_at IS NULL AND j.claim_voided_at IS NULL
		AND NOT EXISTS (SELECT 1 FROM agents a WHERE a.org_id = j.org_id AND a.id = j.agent_id AND a.uid = j.agent_uid)`},
	{"a claimed key went to the agent row its request is bound to", `
		SELECT count(*) FROM api_keys k
		JOIN join_requests j ON j.id = k.join_request_id
		JOIN agents a ON a.org_id = k.org_id AND a.id = k.agent_id
		WHERE a.uid IS DISTINCT FROM j.agent_uid`},
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
