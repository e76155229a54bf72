package models

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// Actor is who performs an action, recorded with every audit event.
type Actor struct {
	Type      string // user, runtime, agent or system
	ID        string
	Label     string
	IP        string
	RequestID string
}

// UserID returns the acting user's id, or nil when the actor is not a user.
func (a Actor) UserID() *uuid.UUID {
	if a.Type != "user" {
		return nil
	}
	id, err := uuid.Parse(a.ID)
	if err != nil {
		return nil
	}
	return &id
}

// System is the actor for what the server does by itself.
var System = Actor{Type: "system", ID: "system", Label: "system"}

// AuditEvent is one append-only audit row.
type AuditEvent struct {
	bun.BaseModel `bun:"table:audit_events"`

	ID         int64          `bun:",pk,autoincrement" json:"id"`
	OrgID      *uuid.UUID     `bun:"org_id" json:"orgId,omitempty"`
	ActorType  string         `json:"actorType"`
	ActorID    string         `json:"actorId"`
	ActorLabel string         `json:"actorLabel"`
	Action     string         `json:"action"`
	TargetType string         `json:"targetType"`
	TargetID   string         `json:"targetId"`
	IP         string         `bun:"ip" json:"ip"`
	RequestID  string         `json:"requestId"`
	Details    map[string]any `bun:"details,type:jsonb,nullzero,default:'{}'" json:"details"`
	CreatedAt  time.Time      `bun:",nullzero,default:now()" json:"createdAt"`
}

// Audit appends an event; call it with the transaction that makes the change.
// org may be uuid.Nil for platform-level events.
func Audit(ctx context.Context, db bun.IDB, org uuid.UUID, by Actor, action, targetType, targetID string, details map[string]any) error {
	ev := &AuditEvent{
		ActorType: by.Type, ActorID: by.ID, ActorLabel: by.Label, IP: by.IP, RequestID: by.RequestID,
		Action: action, TargetType: targetType, TargetID: targetID, Details: details,
	}
	if org != uuid.Nil {
		ev.OrgID = &org
	}
	if ev.Details == nil {
		ev.Details = map[string]any{}
	}
	_, err := db.NewInsert().Model(ev).Exec(ctx)
	return translate(err, "write audit event")
}

// AuditFilter narrows an audit listing. Zero values match everything.
type AuditFilter struct {
	Org        uuid.UUID
	Action     string
	TargetType string
	TargetID   string
	Before     int64 // keyset cursor: events with id < Before
	Limit      int
}

// ListAudit returns the newest events of an org first.
func ListAudit(ctx context.Context, db bun.IDB, f AuditFilter) ([]AuditEvent, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 50
	}
	var evs []AuditEvent
	q := db.NewSelect().Model(&evs).Where("org_id = ?", f.Org).OrderExpr("id DESC").Limit(int64(f.Limit))
	if f.Action != "" {
		q.Where("action = ?", f.Action)
	}
	if f.TargetType != "" {
		q.Where("target_type = ?", f.TargetType)
	}
	if f.TargetID != "" {
		q.Where("target_id = ?", f.TargetID)
	}
	if f.Before > 0 {
		q.Where("id < ?", f.Before)
	}
	err := q.Scan(ctx)
	return evs, translate(err, "list audit events")
}
