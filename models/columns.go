package models

import (
	"context"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// BoardColumn is a column of an org's board with its defaults for agents.
type BoardColumn struct {
	bun.BaseModel `bun:"table:board_columns"`

	OrgID            uuid.UUID `bun:"org_id,pk,type:uuid" json:"-"`
	ID               string    `bun:"id,pk" json:"id"`
	Name             string    `json:"name"`
	Position         int       `json:"position"`
	AgentCanRead     bool      `json:"agentCanRead"`
	AgentCanModerate bool      `json:"agentCanModerate"`
}

// ListColumns returns an org's board columns in board order.
func ListColumns(ctx context.Context, db bun.IDB, org uuid.UUID) ([]BoardColumn, error) {
	var cols []BoardColumn
	err := db.NewSelect().Model(&cols).Where("org_id = ?", org).OrderExpr("position, id").Scan(ctx)
	return cols, translate(err, "list columns")
}
