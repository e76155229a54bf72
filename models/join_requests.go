package models

import (
	"context"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// CountPendingJoinRequests returns how many join requests of org await a decision.
func CountPendingJoinRequests(ctx context.Context, db bun.IDB, org uuid.UUID) (int, error) {
	n, err := db.NewSelect().Table("join_requests").Where("org_id = ? AND status = 'PENDING'", org).Count(ctx)
	return int(n), translate(err, "count pending join requests")
}
