package models

import (
	"context"
	"time"

	"github.com/uptrace/bun"
)

// AgentCount is how many agents have a status and a presence.
type AgentCount struct {
	Status string
	Online bool
	Count  int
}

// Gauges are the counts the metrics endpoint reads from the database at
// scrape time, across every org (ids never become metric labels).
type Gauges struct {
	Agents               []AgentCount
	PendingJoinRequests  int
	ActiveInvites        int
	PendingNotifications int
}

// ReadGauges counts agents by status and presence (online: flag set and heard
// from within window), pending join requests, active invites and queued
// notifications.
func ReadGauges(ctx context.Context, db bun.IDB, window time.Duration) (*Gauges, error) {
	g := &Gauges{}
	rows, err := db.QueryContext(ctx, `SELECT status, is_online AND last_seen_at > now() - make_interval(secs => ?), count(*)
		FROM agents GROUP BY 1, 2`, window.Seconds())
	if err != nil {
		return nil, translate(err, "count agents")
	}
	defer rows.Close()
	for rows.Next() {
		var a AgentCount
		var online *bool
		if err := rows.Scan(&a.Status, &online, &a.Count); err != nil {
			return nil, translate(err, "count agents")
		}
		a.Online = online != nil && *online
		g.Agents = append(g.Agents, a)
	}
	if err := rows.Err(); err != nil {
		return nil, translate(err, "count agents")
	}
	err = db.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM join_requests WHERE status = 'PENDING'),
		(SELECT count(*) FROM invites WHERE revoked_at IS NULL AND expires_at > now() AND uses < max_uses),
		(SELECT count(*) FROM notification_outbox WHERE status = 'pending')`).
		Scan(&g.PendingJoinRequests, &g.ActiveInvites, &g.PendingNotifications)
	return g, translate(err, "count gauges")
}
