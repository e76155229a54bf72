package models

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// Writer batches the runtime's frequent writes: presence flips from
// concurrent requests are committed together in one transaction, and
// last_seen_at / last_used_at are written in the background, at most once per
// agent per 15 s and once per key per minute, a second late at most.
type Writer struct {
	db    *bun.DB
	cache *Cache
	reqs  chan *presenceReq
	done  chan struct{} // closed when Run has returned

	mu   sync.Mutex
	seen map[AgentRef]struct{}
	used map[uuid.UUID]struct{}
}

// touchFlushEvery is how often recorded contacts are written.
const touchFlushEvery = time.Second

// presenceWriters is how many presence batches commit at once. Batches lock
// their rows in (org, id) order, so they cannot deadlock one another. On two
// cores one writer did as well as four (batches just grow while it commits).
const presenceWriters = 1

// maxPresenceBatch bounds the presence changes committed together.
const maxPresenceBatch = 256

// NewWriter returns a writer on db that keeps cache's copies current.
func NewWriter(db *bun.DB, cache *Cache) *Writer {

	return &Writer{db: db, cache: cache, reqs: make(chan *presenceReq, maxPresenceBatch), done: make(chan struct{}),
		seen: map[AgentRef]struct{}{}, used: map[uuid.UUID]struct{}{}}
}

// Run commits presence batches and flushes contacts until ctx ends, then
// flushes what is left.
func (w *Writer) Run(ctx context.Context) {
	defer close(w.done)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(touchFlushEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				w.Flush(context.WithoutCancel(ctx))
				return
			case <-t.C:
				w.Flush(ctx)
			}
		}
	}()
	for range presenceWriters {
		wg.Add(1)
		go func() { defer wg.Done(); w.batches(ctx) }()
	}
	wg.Wait()
	w.refuse(ctx.Err())
}

// errWriterStopped answers presence changes asked for after the writer stopped.
var errWriterStopped = errors.New("presence writer stopped")

// batches takes the presence changes waiting and commits them together, until
// ctx ends. Several run at once: a batch fills while others commit.
func (w *Writer) batches(ctx context.Context) {
	var next *presenceReq
	for {
		first := next
		next = nil
		if first == nil {
			select {
			case <-ctx.Done():
				w.refuse(ctx.Err())
				return
			case first = <-w.reqs:
			}
		}
		batch := []*presenceReq{first}
		in := map[AgentRef]bool{first.ref: true}
	drain:
		for len(batch) < maxPresenceBatch {
			select {
			case r := <-w.reqs:
				if in[r.ref] { // one change per agent per batch, in arrival order
					next = r
					break drain
				}
				in[r.ref] = true
				batch = append(batch, r)
			default:
				break drain
			}
		}
		w.commit(ctx, batch)
	}
}

// refuse answers the changes still waiting when the writer stops.
func (w *Writer) refuse(err error) {
	for {
		select {
		case r := <-w.reqs:
			r.done <- presenceResult{err: err}
		default:
			return
		}
	}
}

// Touch records contact from a: last_seen_at is written within a second
// unless a's copy is fresh (heard from within 15 s). a is updated in place.
func (w *Writer) Touch(a *Agent) {
	now := time.Now()
	if a.Fresh(now) {
		return
	}
	ref := AgentRef{a.OrgID, a.ID}
	w.mu.Lock()
	w.seen[ref] = struct{}{}
	w.mu.Unlock()
	a.LastSeenAt = &now
	w.cache.AgentSeen(ref, now)
}

// KeyUsed records that k authenticated a request: last_used_at is written
// within a second unless it was written in the last minute.
func (w *Writer) KeyUsed(k *APIKey) {
	now := time.Now()
	if k.LastUsedAt != nil && now.Sub(*k.LastUsedAt) < lastUsedEvery {
		return
	}
	w.mu.Lock()
	w.used[k.ID] = struct{}{}
	w.mu.Unlock()
	w.cache.KeyUsed(k, now)
}

// Flush writes the recorded contacts now: one UPDATE for agents, one for keys.
func (w *Writer) Flush(ctx context.Context) error {
	w.mu.Lock()
	seen, used := w.seen, w.used
	w.seen, w.used = map[AgentRef]struct{}{}, map[uuid.UUID]struct{}{}
	w.mu.Unlock()
	if len(seen) > 0 {
		orgs, ids := make([]uuid.UUID, 0, len(seen)), make([]string, 0, len(seen))
		for r := range seen {
			orgs, ids = append(orgs, r.Org), append(ids, r.ID)
		}
		_, err := w.db.ExecContext(ctx, `UPDATE agents AS a SET last_seen_at = now()
			FROM (SELECT unnest(?::uuid[]) AS org_id, unnest(?::text[]) AS id) AS v
			WHERE a.org_id = v.org_id AND a.id = v.id
			AND (a.last_seen_at IS NULL OR a.last_seen_at < now() - ?::interval)`,
			pgdialect.Array(orgs), pgdialect.Array(ids), touchInterval)
		if err != nil {
			return translate(err, "touch agents")
		}
	}
	if len(used) > 0 {
		keys := make([]uuid.UUID, 0, len(used))
		for id := range used {
			keys = append(keys, id)
		}
		_, err := w.db.NewUpdate().Model((*APIKey)(nil)).Set("last_used_at = now()").
			Where("id = ANY(?::uuid[])", pgdialect.Array(keys)).
			Where("last_used_at IS NULL OR last_used_at < now() - ?::interval", "1 minute").Exec(ctx)
		if err != nil {
			return translate(err, "touch api keys")
		}
	}
	return nil
}

type presenceReq struct {
	ref    AgentRef
	online bool
	by     Actor
	done   chan presenceResult
}

type presenceResult struct {
	agent *Agent
	err   error
}

// SetPresence flags an agent online or offline, committed together with the
// changes other requests asked for at the same moment. Online needs an
// approved agent (403 agent_stopped, 409 agent_not_approved) and refreshes a
// stale last contact; offline is allowed in every status. Only a flip is
// written and audited (agent.online, agent.offline) and announced; an unknown
// agent is ErrNotFound.
func (w *Writer) SetPresence(ctx context.Context, org uuid.UUID, id string, online bool, by Actor) (*Agent, error) {
	r := &presenceReq{ref: AgentRef{org, id}, online: online, by: by, done: make(chan presenceResult, 1)}
	select {
	case w.reqs <- r:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-w.done:
		return nil, errWriterStopped
	}
	select {
	case res := <-r.done:
		return res.agent, res.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-w.done:
		// Run answers what it took before it returns; this request was left queued.
		select {
		case res := <-r.done:
			return res.agent, res.err
		default:
			return nil, errWriterStopped
		}
	}
}

// presenceSQL applies a batch of presence changes in one statement, its own
// transaction: one round trip and one commit for up to maxPresenceBatch
// requests. It locks the agents in (org, id) order (batches of other
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

// commit applies a batch in one statement (presenceSQL) and answers each
// request: its agent, or why not.
func (w *Writer) commit(ctx context.Context, batch []*presenceReq) {
	results := make([]presenceResult, len(batch))
	gen, started := w.cache.Begin()
	n := len(batch)
	orgs, ids, online, ords := make([]uuid.UUID, n), make([]string, n), make([]bool, n), make([]int, n)
	types, actorIDs, labels, ips, reqIDs, details := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, r := range batch {
		orgs[i], ids[i], online[i], ords[i] = r.ref.Org, r.ref.ID, r.online, i
		types[i], actorIDs[i], labels[i], ips[i], reqIDs[i] = r.by.Type, r.by.ID, r.by.Label, r.by.IP, r.by.RequestID
		d := map[string]any{}
		if r.by.MCPSession != "" {
			d["mcpSession"] = r.by.MCPSession
		}
		b, _ := json.Marshal(d)
		details[i] = string(b)
	}
	var rows []presenceRow
	err := w.db.NewRaw(presenceSQL,
		pgdialect.Array(orgs), pgdialect.Array(ids), pgdialect.Array(online), pgdialect.Array(ords), touchInterval,
		pgdialect.Array(ords), pgdialect.Array(types), pgdialect.Array(actorIDs), pgdialect.Array(labels), pgdialect.Array(ips),
		pgdialect.Array(reqIDs), pgdialect.Array(details),
		EventChannel, EventAgent, w.cache.Origin()).Scan(ctx, &rows)
	if err != nil {
		err = translate(err, "set presence")
	}
	for i := range rows {
		r := &rows[i]
		if r.Ord < 0 || r.Ord >= n {
			continue
		}
		switch r.What {
		case "refuse":
			results[r.Ord].err = notApproved(r.Status, "online")
		default:
			a := r.Agent
			results[r.Ord].agent = &a
		}
	}
	for i, r := range batch {
		res := results[i]
		switch {
		case err != nil:
			res = presenceResult{err: err}
		case res.agent == nil && res.err == nil:
			res.err = ErrNotFound
		case res.agent != nil:
			w.cache.Put(res.agent, gen, started)
			a := *res.agent
			res.agent = &a
		}
		r.done <- res
	}
}
