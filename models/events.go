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
	Kind string    `json:"kind"` // agent, join_request, invite
	ID   string    `json:"id,omitempty"`
	// Origin names the process that published a change it already applied
	// to its own cache (see Cache.Apply); empty otherwise.
	Origin string `json:"origin,omitempty"`
}

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
