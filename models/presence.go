package models

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// AgentRef names an agent.
type AgentRef struct {
	Org uuid.UUID
	ID  string
}

// RecentlyUsed reports whether k's use was recorded so recently (within a
// minute) that it need not be written again.
func (k *APIKey) RecentlyUsed(now time.Time) bool {
	return k.LastUsedAt != nil && now.Sub(*k.LastUsedAt) < lastUsedEvery
}

// TouchAgents sets last_seen_at to now for the agents of refs not heard from
// in the last 15 s, in one UPDATE.
func TouchAgents(ctx context.Context, db bun.IDB, refs []AgentRef) error {
	orgs, ids := make([]uuid.UUID, 0, len(refs)), make([]string, 0, len(refs))
	for _, r := range refs {
		orgs, ids = append(orgs, r.Org), append(ids, r.ID)
	}
	_, err := db.ExecContext(ctx, `UPDATE agents AS a SET last_seen_at = now()
		FROM (SELECT unnest(?::uuid[]) AS org_id, unnest(?::text[]) AS id) AS v
		WHERE a.org_id = v.org_id AND a.id = v.id
		AND (a.last_seen_at IS NULL OR a.last_seen_at < now() - ?::interval)`,
		pgdialect.Array(orgs), pgdialect.Array(ids), touchInterval)
	return translate(err, "touch agents")
}

// TouchAPIKeys sets last_used_at to now for the keys of ids not used in the
// last minute, in one UPDATE.
func TouchAPIKeys(ctx context.Context, db bun.IDB, ids []uuid.UUID) error {
	_, err := db.NewUpdate().Model((*APIKey)(nil)).Set("last_used_at = now()").
		Where("id = ANY(?::uuid[])", pgdialect.Array(ids)).
		Where("last_used_at IS NULL OR last_used_at < now() - ?::interval", "1 minute").Exec(ctx)
	return translate(err, "touch api keys")
}

// PresenceChange is one request's presence change: the agent, online or
// offline, and who asked.
type PresenceChange struct {
	Ref    AgentRef
	Online bool
	By     Actor
}

// PresenceResult is the outcome of one PresenceChange: the agent as it is now,
// or why not.
type PresenceResult struct {
	Agent *Agent
	Err   error
}

// presenceSQL applies a batch of presence changes in one statement, its own
// transaction: one round trip and one commit for a whole batch of
// changes. It locks the agents in (org, id) order (batches of other
// replicas cannot deadlock with it), decides each request on the locked row
// (refuse: online asked of an agent not approved; none: nothing to write;
// write), updates the rows to write, appends an audit row for each flip and
// announces each flip, and returns every agent found with its decision.
const presenceSQL = `WITH v AS (
	SELECT * FROM unnest(?::uuid[], ?::text[], ?::boolean[], ?::int[]) AS v(org_id, id, online, ord)
), cur AS MATERIALIZED (
	SELECT a.* FROM agents AS a JOIN v ON a.org_id = v.org_id AND a.id = v.id
	ORDER BY a.org_id, a.id FOR UPDATE OF a
), want AS MATERIALIZED (
	SELECT v.org_id, v.id, v.online, v.ord, c.is_online AS was_online,
		CASE WHEN v.online AND c.status <> 'approved' THEN 'refuse'
			WHEN v.online AND c.is_online AND c.last_seen_at > now() - ?::interval THEN 'none'
			WHEN NOT v.online AND NOT c.is_online THEN 'none'
			ELSE 'write' END AS what
	FROM v JOIN cur AS c ON c.org_id = v.org_id AND c.id = v.id
), up AS (
	UPDATE agents AS a SET is_online = w.online, last_seen_at = now()
	FROM want AS w WHERE w.what = 'write' AND a.org_id = w.org_id AND a.id = w.id
	RETURNING a.*
), flips AS MATERIALIZED (
	SELECT w.*, x.actor_type, x.actor_id, x.actor_label, x.ip, x.request_id, x.details
	FROM want AS w JOIN unnest(?::int[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::jsonb[])
		AS x(ord, actor_type, actor_id, actor_label, ip, request_id, details) ON x.ord = w.ord
	WHERE w.what = 'write' AND w.online <> w.was_online
), audit AS (
	INSERT INTO audit_events (org_id, actor_type, actor_id, actor_label, ip, request_id, action, target_type, target_id, details)
	SELECT f.org_id, f.actor_type, f.actor_id, f.actor_label, f.ip, f.request_id,
		CASE WHEN f.online THEN 'agent.online' ELSE 'agent.offline' END, 'agent', f.id, f.details
	FROM flips AS f ORDER BY f.ord
), notes AS MATERIALIZED (
	SELECT count(pg_notify(?, json_build_object('org', f.org_id, 'kind', ?::text, 'id', f.id, 'origin', ?::text)::text)) AS n
	FROM flips AS f
)
SELECT w.ord AS presence_ord, w.what AS presence_what, w.was_online AS presence_was_online, (SELECT n FROM notes) AS presence_notes, u.*
	FROM want AS w JOIN up AS u ON u.org_id = w.org_id AND u.id = w.id
UNION ALL
SELECT w.ord, w.what, w.was_online, 0, c.*
	FROM want AS w JOIN cur AS c ON c.org_id = w.org_id AND c.id = w.id WHERE w.what <> 'write'`

// presenceRow is one agent of a batch as presenceSQL returns it.
type presenceRow struct {
	Agent
	Ord       int    `bun:"presence_ord"`
	What      string `bun:"presence_what"`
	WasOnline bool   `bun:"presence_was_online"`
	Notes     int    `bun:"presence_notes"`
}

// SetPresences applies a batch of presence changes (at most one per agent) in
// one statement, its own transaction (presenceSQL), and returns one result per
// change, in order. Online needs an approved agent (403 agent_stopped, 409
// agent_not_approved) and refreshes a stale last contact; offline is allowed
// in every status. Only a flip is written, audited (agent.online,
// agent.offline) and announced, its event naming origin; an unknown agent is
// ErrNotFound. A failed statement fails every change.
func SetPresences(ctx context.Context, db bun.IDB, changes []PresenceChange, origin string) []PresenceResult {
	n := len(changes)
	results := make([]PresenceResult, n)
	orgs, ids, online, ords := make([]uuid.UUID, n), make([]string, n), make([]bool, n), make([]int, n)
	types, actorIDs, labels, ips, reqIDs, details := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, r := range changes {
		orgs[i], ids[i], online[i], ords[i] = r.Ref.Org, r.Ref.ID, r.Online, i
		types[i], actorIDs[i], labels[i], ips[i], reqIDs[i] = r.By.Type, r.By.ID, r.By.Label, r.By.IP, r.By.RequestID
		d := map[string]any{}
		if r.By.MCPSession != "" {
			d["mcpSession"] = r.By.MCPSession
		}
		b, _ := json.Marshal(d)
		details[i] = string(b)
	}
	var rows []presenceRow
	err := db.NewRaw(presenceSQL,
		pgdialect.Array(orgs), pgdialect.Array(ids), pgdialect.Array(online), pgdialect.Array(ords), touchInterval,
		pgdialect.Array(ords), pgdialect.Array(types), pgdialect.Array(actorIDs), pgdialect.Array(labels), pgdialect.Array(ips),
		pgdialect.Array(reqIDs), pgdialect.Array(details),
		EventChannel, EventAgent, origin).Scan(ctx, &rows)
	if err != nil {
		err = translate(err, "set presence")
		for i := range results {
			results[i].Err = err
		}
		return results
	}
	for i := range rows {
		r := &rows[i]
		if r.Ord < 0 || r.Ord >= n {
			continue
		}
		switch r.What {
		case "refuse":
			results[r.Ord].Err = notApproved(r.Status, "online")
		default:
			a := r.Agent
			results[r.Ord].Agent = &a
		}
	}
	for i := range results {
		if results[i].Agent == nil && results[i].Err == nil {
			results[i].Err = ErrNotFound
		}
	}
	return results
}
