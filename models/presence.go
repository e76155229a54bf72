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

// commit applies a batch in one transaction: lock the rows, decide each
// request, update the rows that change, audit and announce the flips.
func (w *Writer) commit(ctx context.Context, batch []*presenceReq) {
	results := make([]presenceResult, len(batch))
	gen, started := w.cache.Begin()
	var changed []Agent
	err := InTx(ctx, w.db, func(tx bun.Tx) error {
		orgs, ids := make([]uuid.UUID, len(batch)), make([]string, len(batch))
		for i, r := range batch {
			orgs[i], ids[i] = r.ref.Org, r.ref.ID
		}
		var rows []Agent
		err := tx.NewSelect().Model(&rows).
			Where("(org_id, id) IN (SELECT unnest(?::uuid[]), unnest(?::text[]))", pgdialect.Array(orgs), pgdialect.Array(ids)).
			OrderExpr("org_id, id").For("UPDATE").Scan(ctx)
		if err != nil {
			return translate(err, "lock agents")
		}
		byRef := make(map[AgentRef]*Agent, len(rows))
		for i := range rows {
			byRef[AgentRef{rows[i].OrgID, rows[i].ID}] = &rows[i]
		}
		now := time.Now()
		var upOrgs []uuid.UUID
		var upIDs []string
		var upOnline []bool
		var flips []int
		for i, r := range batch {
			a := byRef[r.ref]
			switch {
			case a == nil:
				results[i].err = ErrNotFound
				continue
			case r.online && a.Status != StatusApproved:
				results[i].err = notApproved(a.Status, "online")
				continue
			case r.online && a.IsOnline && a.Fresh(now), !r.online && !a.IsOnline:
				results[i].agent = a // nothing to write
				continue
			}
			if a.IsOnline != r.online {
				flips = append(flips, i)
			}
			upOrgs, upIDs, upOnline = append(upOrgs, r.ref.Org), append(upIDs, r.ref.ID), append(upOnline, r.online)
		}
		if len(upIDs) == 0 {
			return nil
		}
		err = tx.NewRaw(`UPDATE agents AS a SET is_online = v.online, last_seen_at = now()
			FROM (SELECT unnest(?::uuid[]) AS org_id, unnest(?::text[]) AS id, unnest(?::boolean[]) AS online) AS v
			WHERE a.org_id = v.org_id AND a.id = v.id RETURNING a.*`,
			pgdialect.Array(upOrgs), pgdialect.Array(upIDs), pgdialect.Array(upOnline)).Scan(ctx, &changed)
		if err != nil {
			return translate(err, "set presence")
		}
		for i := range changed {
			*byRef[AgentRef{changed[i].OrgID, changed[i].ID}] = changed[i]
		}
		for i, r := range batch {
			if results[i].err == nil && results[i].agent == nil {
				results[i].agent = byRef[r.ref]
			}
		}
		if len(flips) == 0 {
			return nil
		}
		events := make([]AuditEvent, 0, len(flips))
		notes := make([]string, 0, len(flips))
		for _, i := range flips {
			r := batch[i]
			action := "agent.offline"
			if r.online {
				action = "agent.online"
			}
			events = append(events, auditEvent(r.ref.Org, r.by, action, "agent", r.ref.ID, nil))
			b, _ := json.Marshal(Event{Org: r.ref.Org, Kind: EventAgent, ID: r.ref.ID, Origin: w.cache.Origin()})
			notes = append(notes, string(b))
		}
		if _, err := tx.NewInsert().Model(&events).Exec(ctx); err != nil {
			return translate(err, "write audit events")
		}
		return notifyAll(ctx, tx, notes)
	})
	for i, r := range batch {
		res := results[i]
		if err != nil {
			res = presenceResult{err: err}
		} else if res.agent != nil {
			w.cache.Put(res.agent, gen, started)
			a := *res.agent
			res.agent = &a
		}
		r.done <- res
	}
}
