package models

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
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

var columnIDRE = regexp.MustCompile(`^col_[a-z0-9_]{1,60}$`)

// ColumnIDRule describes a valid column id for error messages.
const ColumnIDRule = "must be col_ followed by 1-60 characters of a-z, 0-9 or _"

// ValidColumnID reports whether id is a usable column id.
func ValidColumnID(id string) bool { return columnIDRE.MatchString(id) }

var nonSlug = regexp.MustCompile(`[^a-z0-9]+`)

// ColumnIDFor derives a column id from a name: "In review" → col_in_review.
func ColumnIDFor(name string) string {
	slug := strings.Trim(nonSlug.ReplaceAllString(strings.ToLower(name), "_"), "_")
	if len(slug) > 60 {
		slug = strings.TrimRight(slug[:60], "_")
	}
	return "col_" + slug
}

// ColumnInput creates a column; an empty ID is derived from the name.
type ColumnInput struct {
	ID               string
	Name             string
	AgentCanRead     bool
	AgentCanModerate bool
}

// CreateColumn appends a column to the end of an org's board. Moderate implies
// read. A duplicate id is a 409 column_exists.
func CreateColumn(ctx context.Context, db bun.IDB, org uuid.UUID, in ColumnInput, by Actor) (*BoardColumn, error) {
	in.Name, in.ID = cleanText(in.Name), strings.TrimSpace(in.ID)
	if in.ID == "" {
		in.ID = ColumnIDFor(in.Name)
	}
	var v Validator
	validText(&v, "name", in.Name, 100)
	v.Check(in.Name == "" || ValidColumnID(in.ID), "id", ColumnIDRule)
	if err := v.Err(); err != nil {
		return nil, err
	}
	col := &BoardColumn{OrgID: org, ID: in.ID, Name: in.Name, AgentCanRead: in.AgentCanRead || in.AgentCanModerate, AgentCanModerate: in.AgentCanModerate}
	err := InTx(ctx, db, func(tx bun.Tx) error {
		// Appending needs the current end of the board: serialise column edits of the org.
		if err := lockColumns(ctx, tx, org); err != nil {
			return err
		}
		_, err := tx.NewInsert().Model(col).
			Value("position", "(SELECT coalesce(max(position), 0) + 1 FROM board_columns WHERE org_id = ?)", org).
			Returning("*").Exec(ctx)
		if err != nil {
			return translate(err, "create column")
		}
		return Audit(ctx, tx, org, by, "column.created", "column", col.ID, map[string]any{"name": col.Name,
			"agentCanRead": col.AgentCanRead, "agentCanModerate": col.AgentCanModerate})
	})
	if errors.Is(err, ErrConflict) {
		return nil, Conflict("column_exists", "a column with this id already exists", map[string]any{"id": in.ID})
	}
	if err != nil {
		return nil, err
	}
	return col, nil
}

// lockColumns serialises edits of an org's board (create, reorder) with an
// advisory transaction lock keyed by the org.
func lockColumns(ctx context.Context, tx bun.Tx, org uuid.UUID) error {
	_, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtextextended(?, 42))", "board_columns:"+org.String())
	return translate(err, "lock columns")
}

// ColumnPatch changes a column; nil fields stay as they are.
type ColumnPatch struct {
	Name             *string
	AgentCanRead     *bool
	AgentCanModerate *bool
	Position         *int // 1-based place on the board; the others shift
}

// UpdateColumn renames a column, changes its agent defaults and/or moves it.
// It returns ErrNotFound when the column is not in org.
func UpdateColumn(ctx context.Context, db bun.IDB, org uuid.UUID, id string, p ColumnPatch, by Actor) (*BoardColumn, error) {
	if !ValidColumnID(id) {
		return nil, fmt.Errorf("update column: %w", ErrNotFound)
	}
	var v Validator
	if p.Name != nil {
		n := cleanText(*p.Name)
		p.Name = &n
		validText(&v, "name", n, 100)
	}
	v.Check(p.Position == nil || *p.Position >= 1, "position", "must be 1 or more")
	if err := v.Err(); err != nil {
		return nil, err
	}
	col := new(BoardColumn)
	err := InTx(ctx, db, func(tx bun.Tx) error {
		if p.Name != nil || p.AgentCanRead != nil || p.AgentCanModerate != nil {
			q := tx.NewUpdate().Model(col).Where("org_id = ? AND id = ?", org, id)
			if p.Name != nil {
				q.Set("name = ?", *p.Name)
			}
			// Moderate implies read, whichever of the two changed.
			read, moderate := p.AgentCanRead, p.AgentCanModerate
			yes, no := true, false
			if moderate != nil && *moderate {
				read = &yes
			} else if read != nil && !*read {
				moderate = &no
			}
			if read != nil {
				q.Set("agent_can_read = ?", *read)
			}
			if moderate != nil {
				q.Set("agent_can_moderate = ?", *moderate)
			}
			if err := q.Returning("*").Scan(ctx); err != nil {
				return translate(err, "update column")
			}
			details := map[string]any{"name": col.Name, "agentCanRead": col.AgentCanRead, "agentCanModerate": col.AgentCanModerate}
			if err := Audit(ctx, tx, org, by, "column.updated", "column", id, details); err != nil {
				return err
			}
		}
		if p.Position != nil {
			if err := moveColumn(ctx, tx, org, id, *p.Position, by); err != nil {
				return err
			}
		}
		err := tx.NewSelect().Model(col).Where("org_id = ? AND id = ?", org, id).Scan(ctx)
		return translate(err, "get column")
	})
	if err != nil {
		return nil, err
	}
	return col, nil
}

// MoveColumn moves a column one place up (delta -1) or down (+1). Moving past
// either end changes nothing. It returns ErrNotFound when the column is not in org.
func MoveColumn(ctx context.Context, db bun.IDB, org uuid.UUID, id string, delta int, by Actor) error {
	if !ValidColumnID(id) {
		return fmt.Errorf("move column: %w", ErrNotFound)
	}
	return InTx(ctx, db, func(tx bun.Tx) error {
		if err := lockColumns(ctx, tx, org); err != nil {
			return err
		}
		cols, err := ListColumns(ctx, tx, org)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(cols, func(c BoardColumn) bool { return c.ID == id })
		if i < 0 {
			return fmt.Errorf("move column: %w", ErrNotFound)
		}
		return moveColumn(ctx, tx, org, id, max(1, i+1+delta), by)
	})
}

// moveColumn puts column id at 1-based place to (clamped to the board) and
// renumbers the board 1..n in one UPDATE.
func moveColumn(ctx context.Context, tx bun.Tx, org uuid.UUID, id string, to int, by Actor) error {
	if err := lockColumns(ctx, tx, org); err != nil {
		return err
	}
	cols, err := ListColumns(ctx, tx, org)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(cols, func(c BoardColumn) bool { return c.ID == id })
	if i < 0 {
		return fmt.Errorf("move column: %w", ErrNotFound)
	}
	to = min(max(to, 1), len(cols)) - 1
	moved := cols[i]
	cols = slices.Insert(slices.Delete(cols, i, i+1), to, moved)
	ids := make([]string, len(cols))
	for j, c := range cols {
		ids[j] = c.ID
	}
	if i == to {
		return nil
	}
	_, err = tx.NewRaw(`UPDATE board_columns AS c SET position = o.n
		FROM unnest(?::text[]) WITH ORDINALITY AS o(id, n)
		WHERE c.org_id = ? AND c.id = o.id`, pgdialect.Array(ids), org).Exec(ctx)
	if err != nil {
		return translate(err, "reorder columns")
	}
	return Audit(ctx, tx, org, by, "column.reordered", "column", id, map[string]any{"order": ids})
}

// DeleteColumn removes a column; agent grants on it go with it. It returns
// ErrNotFound when the column is not in org.
func DeleteColumn(ctx context.Context, db bun.IDB, org uuid.UUID, id string, by Actor) error {
	if !ValidColumnID(id) {
		return fmt.Errorf("delete column: %w", ErrNotFound)
	}
	return InTx(ctx, db, func(tx bun.Tx) error {
		col := new(BoardColumn)
		err := tx.NewDelete().Model(col).Where("org_id = ? AND id = ?", org, id).Returning("name").Scan(ctx)
		if err != nil {
			return translate(err, "delete column")
		}
		return Audit(ctx, tx, org, by, "column.deleted", "column", id, map[string]any{"name": col.Name})
	})
}
