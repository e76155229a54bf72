// Package presence batches the runtime's frequent writes: presence flips and
// last-contact times. Its statements are in models (models/presence.go).
package presence

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/models/cache"
)

// Writer batches the runtime's frequent writes: presence flips from
// concurrent requests are committed together in one transaction, and
// last_seen_at / last_used_at are written in the background, at most once per
// agent per 15 s and once per key per minute, a second late at most.
type Writer struct {
	db    bun.IDB
	cache *cache.Cache
	reqs  chan *presenceReq
	done  chan struct{} // closed when Run has returned

	mu   sync.Mutex
	seen map[models.AgentRef]struct{}
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

// New returns a writer on db that keeps c's copies current; call Run to
// start it.
func New(db bun.IDB, c *cache.Cache) *Writer {
	return &Writer{db: db, cache: c, reqs: make(chan *presenceReq, maxPresenceBatch), done: make(chan struct{}),
		seen: map[models.AgentRef]struct{}{}, used: map[uuid.UUID]struct{}{}}
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
		in := map[models.AgentRef]bool{first.change.Ref: true}
	drain:
		for len(batch) < maxPresenceBatch {
			select {
			case r := <-w.reqs:
				if in[r.change.Ref] { // one change per agent per batch, in arrival order
					next = r
					break drain
				}
				in[r.change.Ref] = true
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
			r.done <- models.PresenceResult{Err: err}
		default:
			return
		}
	}
}

// Touch records contact from a: last_seen_at is written within a second
// unless a's copy is fresh (heard from within 15 s). a is updated in place.
func (w *Writer) Touch(a *models.Agent) {
	now := time.Now()
	if a.Fresh(now) {
		return
	}
	ref := models.AgentRef{Org: a.OrgID, ID: a.ID}
	w.mu.Lock()
	w.seen[ref] = struct{}{}
	w.mu.Unlock()
	a.LastSeenAt = &now
	w.cache.AgentSeen(ref, now)
}

// KeyUsed records that k authenticated a request: last_used_at is written
// within a second unless it was written in the last minute.
func (w *Writer) KeyUsed(k *models.APIKey) {
	now := time.Now()
	if k.RecentlyUsed(now) {
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
	w.seen, w.used = map[models.AgentRef]struct{}{}, map[uuid.UUID]struct{}{}
	w.mu.Unlock()
	if len(seen) > 0 {
		if err := models.TouchAgents(ctx, w.db, slices.Collect(maps.Keys(seen))); err != nil {
			return err
		}
	}
	if len(used) > 0 {
		return models.TouchAPIKeys(ctx, w.db, slices.Collect(maps.Keys(used)))
	}
	return nil
}

type presenceReq struct {
	change models.PresenceChange
	done   chan models.PresenceResult
}

// SetPresence flags an agent online or offline, committed together with the
// changes other requests asked for at the same moment. Online needs an
// approved agent (403 agent_stopped, 409 agent_not_approved) and refreshes a
// stale last contact; offline is allowed in every status. Only a flip is
// written and audited (agent.online, agent.offline) and announced; an unknown
// agent is ErrNotFound.
func (w *Writer) SetPresence(ctx context.Context, org uuid.UUID, id string, online bool, by models.Actor) (*models.Agent, error) {
	r := &presenceReq{change: models.PresenceChange{Ref: models.AgentRef{Org: org, ID: id}, Online: online, By: by}, done: make(chan models.PresenceResult, 1)}
	select {
	case w.reqs <- r:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-w.done:
		return nil, errWriterStopped
	}
	select {
	case res := <-r.done:
		return res.Agent, res.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-w.done:
		// Run answers what it took before it returns; this request was left queued.
		select {
		case res := <-r.done:
			return res.Agent, res.Err
		default:
			return nil, errWriterStopped
		}
	}
}

// commit applies a batch in one statement (models.SetPresences) and answers
// each request: its agent, or why not.
func (w *Writer) commit(ctx context.Context, batch []*presenceReq) {
	gen, started := w.cache.Begin()
	changes := make([]models.PresenceChange, len(batch))
	for i, r := range batch {
		changes[i] = r.change
	}
	results := models.SetPresences(ctx, w.db, changes, w.cache.Origin())
	for i, r := range batch {
		res := results[i]
		if res.Agent != nil {
			w.cache.Put(res.Agent, gen, started)
			a := *res.Agent
			res.Agent = &a
		}
		r.done <- res
	}
}
