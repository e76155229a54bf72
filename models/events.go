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

// Announce sends each of evs on EventChannel, in one statement, outside any
// transaction: the announcer (handlers/live) sends the page-refresh events
// requests collected (WithDeferredEvents) this way, after they committed.
func Announce(ctx context.Context, db bun.IDB, evs []Event) error {
	notes := make([]string, 0, len(evs))
	for _, ev := range evs {
		if b, err := json.Marshal(ev); err == nil {
			notes = append(notes, string(b))
		}
	}
	_, err := db.ExecContext(ctx, "SELECT pg_notify(?, n) FROM unnest(?::text[]) AS n", EventChannel, pgdialect.Array(notes))
	return translate(err, "publish events")
}
