package models

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// EventChannel is the PostgreSQL NOTIFY channel that carries live updates to
// every server process sharing the database.
const EventChannel = "agentroster_events"

// Event says that something an operator may be looking at changed.
type Event struct {
	Org  uuid.UUID `json:"org"`
	Kind string    `json:"kind"` // one of the Event* kinds
	ID   string    `json:"id,omitempty"`
	// User and Session name whose access ended (EventAccessEnded): the
	// user's streams close, only those of Org when it is set (a removal),
	// only those of Session (hex of its id) when it is set (a sign-out).
	User    string `json:"user,omitempty"`
	Session string `json:"session,omitempty"`
	// Origin names the process that published a change it already applied
	// to its own cache (see Cache.Apply); empty otherwise.
	Origin string `json:"origin,omitempty"`
}

// Event kinds.
const (
	EventAgent       = "agent"        // one agent's row changed
	EventAgentList   = "agent_list"   // agents were added or removed
	EventJoinRequest = "join_request" // a join request was created or decided
	EventInvite      = "invite"       // an invite was created, used or revoked
	EventAPIKey      = "api_key"      // an API key was disabled, enabled or revoked
	EventAccessEnded = "access_ended" // a user was removed, disabled, changed password or signed out
)

// Publish sends ev to every listening server when the caller's transaction
// commits (NOTIFY is transactional), and never when it rolls back.
//
// Within a context that collects events (WithDeferredEvents), an event that
// only refreshes pages (invites, join requests, agents added) is collected
// instead and announced once the request is done: a transaction that
// notifies holds a database-wide lock while it commits, so such transactions
// commit one at a time. Events replicas must act on are always sent here.
func Publish(ctx context.Context, db bun.IDB, ev Event) error {
	if d, ok := ctx.Value(deferredKey{}).(*Deferred); ok && refreshOnly(ev) {
		d.add(ev)
		return nil
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, "SELECT pg_notify(?, ?)", EventChannel, string(b))
	return translate(err, "publish event")
}

// deferredKey is the context key of a request's *Deferred.
type deferredKey struct{}

// WithDeferredEvents returns ctx collecting page-refresh events in d (see
// Publish).
func WithDeferredEvents(ctx context.Context, d *Deferred) context.Context {
	return context.WithValue(ctx, deferredKey{}, d)
}

// Deferred collects the page-refresh events of one request.
type Deferred struct {
	mu  sync.Mutex
	evs []Event
}

func (d *Deferred) add(ev Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.evs = append(d.evs, ev)
}

// Events returns the events collected.
func (d *Deferred) Events() []Event {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.evs
}

// refreshOnly reports whether ev only refreshes pages: no replica drops
// anything from its cache for it (keys, agents changed or deleted do).
func refreshOnly(ev Event) bool {
	switch ev.Kind {
	case EventInvite, EventJoinRequest:
		return true
	case EventAgentList:
		return ev.ID == "" // agents were added; a deleted agent names its id
	}
	return false
}

// Announcer sends events that only refresh pages, after their change has
// committed, many in one NOTIFY statement. A transaction that notifies holds
// a database-wide lock while it commits, so notifying transactions commit
// one at a time; announcing outside the transaction keeps frequent changes
// (registrations) from queueing behind each other. Changes that replicas must
// act on (revocations, stops) use Publish inside their transaction instead.
type Announcer struct {
	db    bun.IDB
	queue chan Event
}

// maxAnnounceBatch bounds the events sent in one statement (a NOTIFY payload
// is at most 8000 bytes each; the statement has no such bound).
const maxAnnounceBatch = 512

// NewAnnouncer returns an announcer on db; call Run to start it.
func NewAnnouncer(db bun.IDB) *Announcer {
	return &Announcer{db: db, queue: make(chan Event, 4096)}
}

// Announce queues ev without blocking. When the queue is full the event is
// dropped: pages catch up on their next event or reload.
func (a *Announcer) Announce(ev Event) {
	select {
	case a.queue <- ev:
	default:
	}
}

// Run sends queued events until ctx ends.
func (a *Announcer) Run(ctx context.Context) {
	for {
		var first Event
		select {
		case <-ctx.Done():
			return
		case first = <-a.queue:
		}
		notes := []string{}
		add := func(ev Event) {
			if b, err := json.Marshal(ev); err == nil {
				notes = append(notes, string(b))
			}
		}
		add(first)
	drain:
		for len(notes) < maxAnnounceBatch {
			select {
			case ev := <-a.queue:
				add(ev)
			default:
				break drain
			}
		}
		notifyAll(ctx, a.db, notes) // failures are not retried: the events are hints
	}
}

// notifyAll sends each of notes (JSON events) on EventChannel, in one statement.
func notifyAll(ctx context.Context, db bun.IDB, notes []string) error {
	_, err := db.ExecContext(ctx, "SELECT pg_notify(?, n) FROM unnest(?::text[]) AS n", EventChannel, pgdialect.Array(notes))
	return translate(err, "publish events")
}
