package models

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// Actor is who performs an action, recorded with every audit event.
type Actor struct {
	Type      string // user, runtime, agent or system
	ID        string
	Label     string
	IP        string
	RequestID string
	// MCPSession is the MCP session of a change made by an MCP tool call;
	// its audit rows note it in their details as mcpSession.
	MCPSession string
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
	a := NewAudits(org, by)
	a.Add(action, targetType, targetID, details)
	return a.Write(ctx, db)
}

// Audits collects the events of one change by one actor in one org, to be
// appended together: one INSERT however many there are.
type Audits struct {
	org uuid.UUID
	by  Actor
	evs []AuditEvent
}

// NewAudits starts an empty batch (org may be uuid.Nil, as for Audit).
func NewAudits(org uuid.UUID, by Actor) *Audits {
	return &Audits{org: org, by: by}
}

// Add queues an event; they are written in the order added.
func (a *Audits) Add(action, targetType, targetID string, details map[string]any) {
	a.evs = append(a.evs, auditEvent(a.org, a.by, action, targetType, targetID, details))
}

// auditEvent is the row of one event by by in org (uuid.Nil: platform-level).
func auditEvent(org uuid.UUID, by Actor, action, targetType, targetID string, details map[string]any) AuditEvent {
	ev := AuditEvent{
		ActorType: by.Type, ActorID: by.ID, ActorLabel: by.Label, IP: by.IP, RequestID: by.RequestID,
		Action: action, TargetType: targetType, TargetID: targetID, Details: details,
	}
	if org != uuid.Nil {
		ev.OrgID = &org
	}
	if ev.Details == nil {
		ev.Details = map[string]any{}
	}
	if by.MCPSession != "" {
		d := make(map[string]any, len(ev.Details)+1)
		for k, v := range ev.Details {
			d[k] = v
		}
		d["mcpSession"] = by.MCPSession
		ev.Details = d
	}
	return ev
}

// Write appends the queued events in one statement and empties the batch;
// call it with the transaction that makes the change, before it commits.
func (a *Audits) Write(ctx context.Context, db bun.IDB) error {
	if len(a.evs) == 0 {
		return nil
	}
	_, err := a.Query(db).Exec(ctx)
	a.evs = nil
	return translate(err, "write audit events")
}

// Query is the INSERT of the queued events (at least one). Given to the
// statement that makes the change as a WITH query, it writes them with that
// statement, saving a round trip: PostgreSQL runs a data-modifying WITH
// query whether or not the statement reads it.
func (a *Audits) Query(db bun.IDB) *bun.InsertQuery {
	return db.NewInsert().Model(&a.evs)
}

// AuditFilter narrows an audit listing. Zero values match everything.
type AuditFilter struct {
	Org        uuid.UUID
	AllOrgs    bool   // every org and platform-level events (platform admins); Org is ignored
	Action     string // exact, or a prefix when it ends in '*' ("agent.*")
	Actor      string // the actor's label (an email, a key prefix, an agent id) or id
	TargetType string
	TargetID   string
	Since      *time.Time // created at or after
	Until      *time.Time // created before
	Before     int64      // keyset cursor: events with id < Before
	Limit      int
}

// MaxAuditFilterLen bounds each text filter.
const MaxAuditFilterLen = 200

// Validate checks the filter's text fields and time range.
func (f *AuditFilter) Validate() error {
	var v Validator
	for field, s := range map[string]string{"action": f.Action, "actor": f.Actor, "targetType": f.TargetType, "target": f.TargetID} {
		optText(&v, field, s, MaxAuditFilterLen)
	}
	v.Check(f.Since == nil || f.Until == nil || f.Since.Before(*f.Until), "until", "must be after since")
	v.Check(f.Before >= 0, "before", "must be a positive event id")
	return v.Err()
}

func (f *AuditFilter) apply(q *bun.SelectQuery) *bun.SelectQuery {
	if !f.AllOrgs {
		q.Where("org_id = ?", f.Org)
	}
	if a, prefix := strings.CutSuffix(f.Action, "*"); prefix {
		q.Where("action LIKE ?", escapeLike(a)+"%")
	} else if f.Action != "" {
		q.Where("action = ?", f.Action)
	}
	if f.Actor != "" {
		q.Where("(actor_label = ? OR actor_id = ?)", f.Actor, f.Actor)
	}
	if f.TargetType != "" {
		q.Where("target_type = ?", f.TargetType)
	}
	if f.TargetID != "" {
		q.Where("target_id = ?", f.TargetID)
	}
	if f.Since != nil {
		q.Where("created_at >= ?", *f.Since)
	}
	if f.Until != nil {
		q.Where("created_at < ?", *f.Until)
	}
	if f.Before > 0 {
		q.Where("id < ?", f.Before)
	}
	return q.OrderExpr("id DESC")
}

// ListAudit returns the newest matching events first (at most f.Limit, 50 by
// default, 500 at most). Page on with Before = the last id.
func ListAudit(ctx context.Context, db bun.IDB, f AuditFilter) ([]AuditEvent, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 50
	}
	var evs []AuditEvent
	err := f.apply(db.NewSelect().Model(&evs)).Limit(int64(f.Limit)).Scan(ctx)
	return evs, translate(err, "list audit events")
}

// StreamAudit calls fn for every matching event, newest first, reading rows
// from the database one at a time: memory stays constant however many match.
// f.Limit is ignored. An error from fn stops the walk and is returned.
func StreamAudit(ctx context.Context, db bun.IDB, f AuditFilter, fn func(*AuditEvent) error) error {
	q := db.NewSelect().Model((*AuditEvent)(nil)).Column("id", "org_id", "actor_type", "actor_id", "actor_label",
		"action", "target_type", "target_id", "ip", "request_id", "details", "created_at")
	rows, err := f.apply(q).Rows(ctx)
	if err != nil {
		return translate(err, "stream audit events")
	}
	defer rows.Close()
	var ev AuditEvent
	for rows.Next() {
		ev = AuditEvent{}
		var details []byte
		if err := rows.Scan(&ev.ID, &ev.OrgID, &ev.ActorType, &ev.ActorID, &ev.ActorLabel, &ev.Action, &ev.TargetType,
			&ev.TargetID, &ev.IP, &ev.RequestID, &details, &ev.CreatedAt); err != nil {
			return translate(err, "scan audit event")
		}
		ev.Details = nil
		if len(details) > 0 {
			if err := json.Unmarshal(details, &ev.Details); err != nil {
				return fmt.Errorf("audit event %d details: %w", ev.ID, err)
			}
		}
		if err := fn(&ev); err != nil {
			return err
		}
	}
	return translate(rows.Err(), "stream audit events")
}

// AuditTargetNames names the targets of events that are ids (keys, invites,
// join requests, users, teams, orgs, webhooks) by what an operator knows
// them by: "type:id" → a key's name, an invite's agent name, a user's email,
// a webhook's URL and so on. One query whatever the number of events.
func AuditTargetNames(ctx context.Context, db bun.IDB, evs []AuditEvent) (map[string]string, error) {
	var ids []uuid.UUID
	seen := map[uuid.UUID]bool{}
	for _, ev := range evs {
		if id, err := uuid.Parse(ev.TargetID); err == nil && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	out := map[string]string{}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []struct {
		Kind string `bun:"kind"`
		ID   string `bun:"id"`
		Name string `bun:"name"`
	}
	arr := pgdialect.Array(ids)
	err := db.NewRaw(`
		SELECT 'api_key' AS kind, id::text AS id, name FROM api_keys WHERE id = ANY(?0::uuid[])
		UNION ALL SELECT 'invite', id::text, agent_name FROM invites WHERE id = ANY(?0::uuid[])
		UNION ALL SELECT 'join_request', id::text, agent_name FROM join_requests WHERE id = ANY(?0::uuid[])
		UNION ALL SELECT 'user', id::text, email FROM users WHERE id = ANY(?0::uuid[])
		UNION ALL SELECT 'team', id::text, name FROM teams WHERE id = ANY(?0::uuid[])
		UNION ALL SELECT 'org', id::text, title FROM organizations WHERE id = ANY(?0::uuid[])
		UNION ALL SELECT 'webhook', id::text, url FROM webhook_endpoints WHERE id = ANY(?0::uuid[])`, arr).Scan(ctx, &rows)
	if err != nil {
		return nil, translate(err, "audit target names")
	}
	for _, r := range rows {
		if r.Kind == "webhook" {
			r.Name = WebhookHost(r.Name)
		}
		out[r.Kind+":"+r.ID] = r.Name
	}
	return out, nil
}
