package models

import (
	"context"
	"encoding/json"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// EventChannel is the PostgreSQL NOTIFY channel that carries live updates to
// every server process sharing the database.
const EventChannel = "agentroster_events"

// Event says that something an operator may be looking at changed.
type Event struct {
	Org  uuid.UUID `json:"org"`
	Kind string    `json:"kind"` // one of the Event* kinds
	ID   string    `json:"id,omitempty"`
}

// Event kinds.
const (
	EventAgent       = "agent"        // one agent's row changed
	EventAgentList   = "agent_list"   // agents were added or removed
	EventJoinRequest = "join_request" // a join request was created or decided
	EventInvite      = "invite"       // an invite was created, used or revoked
)

// Publish sends ev to every listening server when the caller's transaction
// commits (NOTIFY is transactional), and never when it rolls back.
func Publish(ctx context.Context, db bun.IDB, ev Event) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, "SELECT pg_notify(?, ?)", EventChannel, string(b))
	return translate(err, "publish event")
}
