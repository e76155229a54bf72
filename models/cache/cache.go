// Package cache holds the runtime requests' cache of API keys and agents. The
// live-update listener (handlers/live) keeps it coherent across replicas, the
// presence writer (models/presence) keeps its copies current.
package cache

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/agentroster/agentroster/models"
)

// Cache keeps in memory what a runtime request needs to be verified: API keys
// by hash, and agents by org and id. It is coherent across replicas only while
// its process listens for events (SetLive): every change of a key or agent
// publishes an Event, each replica drops what the event names when it arrives,
// and the replica that made the change drops it at once (Forget). Without a
// listener nothing is stored and every read goes to the database.
//
// A read that raced with an invalidation is never stored: each read notes the
// generation before it starts, and Forget records, per key and per agent, the
// generation at which it was invalidated.
type Cache struct {
	ttl    time.Duration
	origin string
	max    int

	mu        sync.Mutex
	live      bool
	gen       uint64
	floor     uint64 // reads that began before this generation are never stored
	keys      map[[32]byte]*cachedKey
	keyByID   map[uuid.UUID][32]byte
	boundKeys map[models.AgentRef][][32]byte // keys bound to an agent (may name keys already dropped)
	agents    map[models.AgentRef]*cachedAgent

	// Invalidations of the last one to two race windows, by the generation
	// at which they happened: marks holds the current window, older the one
	// before (see rotate).
	marks, older forgetMarks
	rotatedAt    time.Time
}

// forgetMarks records, per key and per agent, the generation of its latest
// invalidation.
type forgetMarks struct {
	keys   map[uuid.UUID]uint64
	agents map[models.AgentRef]uint64
}

func newForgetMarks() forgetMarks {
	return forgetMarks{keys: map[uuid.UUID]uint64{}, agents: map[models.AgentRef]uint64{}}
}

type cachedKey struct {
	key models.APIKey
	at  time.Time
}

type cachedAgent struct {
	agent models.Agent
	at    time.Time
}

// raceWindow is how long an invalidation is remembered at least; a database
// read that takes longer than this is not stored.
const raceWindow = 10 * time.Second

// TTL is how long a cached key or agent is used without reading it again,
// for changes made outside the server (events cover the rest).
const TTL = time.Minute

// MaxEntries bounds each of the cache's maps.
const MaxEntries = 200_000

// New returns an empty cache whose entries live at most ttl. origin names
// this process in the events it publishes itself.
func New(ttl time.Duration, origin string, maxEntries int) *Cache {
	c := &Cache{ttl: ttl, origin: origin, max: maxEntries}
	c.reset()
	return c
}

func (c *Cache) reset() {
	c.keys = map[[32]byte]*cachedKey{}
	c.keyByID = map[uuid.UUID][32]byte{}
	c.boundKeys = map[models.AgentRef][][32]byte{}
	c.agents = map[models.AgentRef]*cachedAgent{}
	c.marks, c.older = newForgetMarks(), newForgetMarks()
	c.rotatedAt = time.Now()
}

// rotate, under c.mu, starts a new window of marks once the current one is
// raceWindow old, dropping the window before it: a mark lives at least
// raceWindow, and memory stays bounded without scanning the marks.
func (c *Cache) rotate(now time.Time) {
	if now.Sub(c.rotatedAt) >= raceWindow {
		c.older, c.marks = c.marks, newForgetMarks()
		c.rotatedAt = now
	}
}

// Origin names this process in events (Event.Origin).
func (c *Cache) Origin() string { return c.origin }

// SetLive turns the cache on (the event listener is connected) or off (it is
// not: events may be missed). Either way everything cached so far is dropped,
// since events may have been missed in between.
func (c *Cache) SetLive(live bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.live = live
	c.gen++
	c.floor = c.gen // a read in flight may have missed an event while the listener was down
	c.reset()
}

// Len returns how many keys and agents are cached.
func (c *Cache) Len() (keys, agents int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.keys), len(c.agents)
}

// Apply handles an event received from the listener. Events this process
// published about its own presence writes are skipped: it updated its copy
// when the write committed.
func (c *Cache) Apply(ev models.Event) {
	if ev.Origin != "" && ev.Origin == c.origin {
		return
	}
	c.Forget(ev)
}

// Forget drops what ev names: an api_key event its key (every key when it has
// no id), an agent or agent_list event the agent and the keys bound to it.
func (c *Cache) Forget(ev models.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.rotate(time.Now())
	switch ev.Kind {
	case models.EventAPIKey:
		id, err := uuid.Parse(ev.ID)
		if err != nil {
			c.dropKeys()
			return
		}
		c.marks.keys[id] = c.gen
		if h, ok := c.keyByID[id]; ok {
			delete(c.keys, h)
			delete(c.keyByID, id)
		}
	case models.EventAgent, models.EventAgentList:
		if ev.ID == "" {
			return
		}
		ref := models.AgentRef{Org: ev.Org, ID: ev.ID}
		c.marks.agents[ref] = c.gen
		delete(c.agents, ref)
		for _, h := range c.boundKeys[ref] {
			if k, ok := c.keys[h]; ok {
				delete(c.keys, h)
				delete(c.keyByID, k.key.ID)
			}
		}
		delete(c.boundKeys, ref)
	}
}

// dropKeys empties the key maps; call it with c.mu held.
func (c *Cache) dropKeys() {
	c.keys, c.keyByID, c.boundKeys = map[[32]byte]*cachedKey{}, map[uuid.UUID][32]byte{}, map[models.AgentRef][][32]byte{}
}

// begin returns the generation a read starts at.
func (c *Cache) begin() (uint64, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen, time.Now()
}

// storable reports, under c.mu, whether a read of key (uuid.Nil: none) and
// agent (nil: none) that began at gen may be stored: neither was invalidated
// since.
func (c *Cache) storable(gen uint64, started time.Time, key uuid.UUID, agent *models.AgentRef) bool {
	if !c.live || gen < c.floor || time.Since(started) >= raceWindow {
		return false
	}
	for _, m := range []forgetMarks{c.marks, c.older} {
		if key != uuid.Nil && m.keys[key] > gen {
			return false
		}
		if agent != nil && m.agents[*agent] > gen {
			return false
		}
	}
	return true
}

// full reports whether a map of n entries has reached the bound.
func (c *Cache) full(n int) bool { return c.max > 0 && n >= c.max }

// Key returns the active key for raw, from memory when it is cached. A
// malformed, unknown, disabled, revoked or expired key is models.ErrUnauthorized.
func (c *Cache) Key(ctx context.Context, db bun.IDB, raw string) (*models.APIKey, error) {
	if !models.ValidAPIKeyFormat(raw) {
		return nil, models.ErrUnauthorized
	}
	h := [32]byte(models.Hash(raw))
	now := time.Now()
	c.mu.Lock()
	var cached models.APIKey
	e, ok := c.keys[h]
	if ok {
		cached = e.key // copied under the lock: KeyUsed changes it
	}
	live := c.live
	c.mu.Unlock()
	if ok && now.Sub(e.at) < c.ttl {
		if cached.State(now) != "active" {
			return nil, models.ErrUnauthorized
		}
		return &cached, nil
	}
	gen, started := c.begin()
	k, err := models.APIKeyByHash(ctx, db, h[:])
	if err != nil {
		return nil, err
	}
	if k.State(now) != "active" {
		return nil, models.ErrUnauthorized
	}
	if live {
		var bound *models.AgentRef
		if k.AgentID != nil {
			bound = &models.AgentRef{Org: k.OrgID, ID: *k.AgentID}
		}
		c.mu.Lock()
		if c.storable(gen, started, k.ID, bound) {
			if c.full(len(c.keys)) {
				c.dropKeys()
			}
			c.keys[h] = &cachedKey{*k, now}
			c.keyByID[k.ID] = h
			if bound != nil && !slices.Contains(c.boundKeys[*bound], h) {
				c.boundKeys[*bound] = append(c.boundKeys[*bound], h)
			}
		}
		c.mu.Unlock()
	}
	return k, nil
}

// KeyUsed records in the cached copy that the key was used at t.
func (c *Cache) KeyUsed(k *models.APIKey, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h, ok := c.keyByID[k.ID]; ok {
		if e := c.keys[h]; e != nil {
			e.key.LastUsedAt = &t
		}
	}
}

// Agent returns an agent of org, from memory when it is cached, or ErrNotFound.
func (c *Cache) Agent(ctx context.Context, db bun.IDB, org uuid.UUID, id string) (*models.Agent, error) {
	ref := models.AgentRef{Org: org, ID: id}
	c.mu.Lock()
	var a models.Agent
	e, ok := c.agents[ref]
	if ok {
		a = e.agent // copied under the lock: AgentSeen changes it
	}
	c.mu.Unlock()
	if ok && time.Since(e.at) < c.ttl {
		return &a, nil
	}
	gen, started := c.begin()
	got, err := models.GetAgent(ctx, db, org, id)
	if err != nil {
		return nil, err
	}
	c.Put(got, gen, started)
	return got, nil
}

// Put stores a copy of a, read from the database by a read that began at
// gen (see Begin), unless the agent was invalidated since.
func (c *Cache) Put(a *models.Agent, gen uint64, started time.Time) {
	ref := models.AgentRef{Org: a.OrgID, ID: a.ID}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.storable(gen, started, uuid.Nil, &ref) {
		return
	}
	if c.full(len(c.agents)) {
		c.agents = map[models.AgentRef]*cachedAgent{}
	}
	c.agents[ref] = &cachedAgent{*a, time.Now()}
}

// Begin returns the generation and time to pass to Put for a database read
// that starts now.
func (c *Cache) Begin() (uint64, time.Time) { return c.begin() }

// AgentSeen records in the cached copy that the agent was heard from at t.
func (c *Cache) AgentSeen(ref models.AgentRef, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.agents[ref]; ok {
		e.agent.LastSeenAt = &t
	}
}
