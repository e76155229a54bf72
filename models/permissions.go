package models

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// ColumnGrant gives an agent read and/or moderate on one column.
type ColumnGrant struct {
	bun.BaseModel `bun:"table:agent_column_grants"`

	OrgID       uuid.UUID `bun:"org_id,pk,type:uuid" json:"-"`
	AgentID     string    `bun:"agent_id,pk" json:"-"`
	ColumnID    string    `bun:"column_id,pk" json:"columnId"`
	CanRead     bool      `bun:"can_read" json:"canRead"`
	CanModerate bool      `bun:"can_moderate" json:"canModerate"`
}

// TransitionGrant lets an agent move cards from one column to another.
type TransitionGrant struct {
	bun.BaseModel `bun:"table:agent_transition_grants"`

	OrgID   uuid.UUID `bun:"org_id,pk,type:uuid"`
	AgentID string    `bun:"agent_id,pk"`
	From    string    `bun:"from_column,pk"`
	To      string    `bun:"to_column,pk"`
}

// String is the wire form "col_a->col_b".
func (t TransitionGrant) String() string { return t.From + "->" + t.To }

// ParseTransition reads "col_a->col_b".
func ParseTransition(s string) (TransitionGrant, bool) {
	from, to, ok := strings.Cut(strings.TrimSpace(s), "->")
	from, to = strings.TrimSpace(from), strings.TrimSpace(to)
	if !ok || !ValidColumnID(from) || !ValidColumnID(to) || from == to {
		return TransitionGrant{}, false
	}
	return TransitionGrant{From: from, To: to}, true
}

// Grants are what an admin granted an agent beyond the column defaults.
type Grants struct {
	Columns     []ColumnGrant
	Transitions []TransitionGrant
}

// ColumnAccess is the resolved access to one column.
type ColumnAccess struct {
	ColumnID    string `json:"columnId"`
	Name        string `json:"name"`
	CanRead     bool   `json:"canRead"`
	CanModerate bool   `json:"canModerate"`
}

// Permissions is an agent's resolved permission set, in both of the wire
// shapes runtimes read: flat lists and per-column access.
type Permissions struct {
	CanRead        []string       `json:"canRead"`
	CanModerate    []string       `json:"canModerate"`
	CanTransition  []string       `json:"canTransition"`
	ColumnAccess   []ColumnAccess `json:"columnAccess"`
	CardTypeAccess []any          `json:"cardTypeAccess"`
	Permissions    []string       `json:"permissions"`
}

// Resolve combines column defaults with grants (SPEC §4): access is the union
// of the defaults and the grants, moderate implies read, and a transition
// implies read of its source column. Columns keep board order.
func Resolve(cols []BoardColumn, g Grants) Permissions {
	type access struct{ read, moderate bool }
	acc := make(map[string]*access, len(cols))
	for _, c := range cols {
		acc[c.ID] = &access{read: c.AgentCanRead, moderate: c.AgentCanModerate}
	}
	for _, gr := range g.Columns {
		if a := acc[gr.ColumnID]; a != nil {
			a.read = a.read || gr.CanRead
			a.moderate = a.moderate || gr.CanModerate
		}
	}
	p := Permissions{CanRead: []string{}, CanModerate: []string{}, CanTransition: []string{},
		ColumnAccess: []ColumnAccess{}, CardTypeAccess: []any{}, Permissions: []string{"board.read"}}
	for _, t := range g.Transitions {
		if acc[t.From] == nil || acc[t.To] == nil {
			continue
		}
		acc[t.From].read = true
		p.CanTransition = append(p.CanTransition, t.String())
	}
	for _, c := range cols {
		a := acc[c.ID]
		a.read = a.read || a.moderate
		if a.read {
			p.CanRead = append(p.CanRead, c.ID)
		}
		if a.moderate {
			p.CanModerate = append(p.CanModerate, c.ID)
		}
		p.ColumnAccess = append(p.ColumnAccess, ColumnAccess{ColumnID: c.ID, Name: c.Name, CanRead: a.read, CanModerate: a.moderate})
	}
	if len(p.CanModerate) > 0 {
		p.Permissions = append(p.Permissions, "board.moderate")
	}
	if len(p.CanTransition) > 0 {
		p.Permissions = append(p.Permissions, "board.transition")
	}
	return p
}

// GetGrants returns an agent's grants (transitions in board order of their
// source, then target).
func GetGrants(ctx context.Context, db bun.IDB, org uuid.UUID, agent string) (Grants, error) {
	var g Grants
	err := db.NewSelect().Model(&g.Columns).Where("org_id = ? AND agent_id = ?", org, agent).OrderExpr("column_id").Scan(ctx)
	if err != nil {
		return g, translate(err, "get column grants")
	}
	err = db.NewSelect().Model(&g.Transitions).Where("org_id = ? AND agent_id = ?", org, agent).OrderExpr("from_column, to_column").Scan(ctx)
	return g, translate(err, "get transition grants")
}

// AgentPermissions resolves an agent's permissions from the board and its grants.
func AgentPermissions(ctx context.Context, db bun.IDB, org uuid.UUID, agent string) (Permissions, error) {
	cols, err := ListColumns(ctx, db, org)
	if err != nil {
		return Permissions{}, err
	}
	g, err := GetGrants(ctx, db, org, agent)
	if err != nil {
		return Permissions{}, err
	}
	return Resolve(cols, g), nil
}

// maxGrants bounds one permissions update.
const maxGrants = 500

// SetGrants replaces an agent's grants. Every column must exist in org
// (400 naming the entry otherwise); grants that add nothing are dropped,
// duplicates merged. It returns ErrNotFound when the agent is not in org.
func SetGrants(ctx context.Context, db bun.IDB, org uuid.UUID, agent string, g Grants, by Actor) (Grants, error) {
	var v Validator
	v.Check(len(g.Columns) <= maxGrants, "columns", "has too many entries")
	v.Check(len(g.Transitions) <= maxGrants, "transitions", "has too many entries")
	if err := v.Err(); err != nil {
		return Grants{}, err
	}
	var out Grants
	err := InTx(ctx, db, func(tx bun.Tx) error {
		// Lock the agent row: concurrent replacements apply one after the other.
		var id string
		err := tx.NewSelect().Model((*Agent)(nil)).Column("id").Where("org_id = ? AND id = ?", org, agent).For("UPDATE").Scan(ctx, &id)
		if err != nil {
			return translate(err, "get agent")
		}
		cols, err := ListColumns(ctx, tx, org)
		if err != nil {
			return err
		}
		known := make(map[string]bool, len(cols))
		for _, c := range cols {
			known[c.ID] = true
		}
		merged := map[string]*ColumnGrant{}
		for i, c := range g.Columns {
			v.Check(known[c.ColumnID], fmt.Sprintf("columns[%d].columnId", i), "is not a column of this board")
			if !c.CanRead && !c.CanModerate {
				continue
			}
			m := merged[c.ColumnID]
			if m == nil {
				m = &ColumnGrant{OrgID: org, AgentID: agent, ColumnID: c.ColumnID}
				merged[c.ColumnID] = m
			}
			m.CanRead = m.CanRead || c.CanRead || c.CanModerate
			m.CanModerate = m.CanModerate || c.CanModerate
		}
		seen := map[string]bool{}
		for i, t := range g.Transitions {
			field := fmt.Sprintf("transitions[%d]", i)
			v.Check(known[t.From] && known[t.To], field, "names a column that is not on this board")
			v.Check(t.From != t.To, field, "must move between two different columns")
			if seen[t.String()] || t.From == t.To {
				continue
			}
			seen[t.String()] = true
			out.Transitions = append(out.Transitions, TransitionGrant{OrgID: org, AgentID: agent, From: t.From, To: t.To})
		}
		if err := v.Err(); err != nil {
			return err
		}
		for _, c := range cols {
			if m := merged[c.ID]; m != nil {
				out.Columns = append(out.Columns, *m)
			}
		}
		if _, err := tx.NewDelete().Model((*ColumnGrant)(nil)).Where("org_id = ? AND agent_id = ?", org, agent).Exec(ctx); err != nil {
			return translate(err, "clear column grants")
		}
		if _, err := tx.NewDelete().Model((*TransitionGrant)(nil)).Where("org_id = ? AND agent_id = ?", org, agent).Exec(ctx); err != nil {
			return translate(err, "clear transition grants")
		}
		if len(out.Columns) > 0 {
			if _, err := tx.NewInsert().Model(&out.Columns).Exec(ctx); err != nil {
				return translate(err, "grant columns")
			}
		}
		if len(out.Transitions) > 0 {
			if _, err := tx.NewInsert().Model(&out.Transitions).Exec(ctx); err != nil {
				return translate(err, "grant transitions")
			}
		}
		colDetails := make([]map[string]any, len(out.Columns))
		for i, c := range out.Columns {
			colDetails[i] = map[string]any{"columnId": c.ColumnID, "canRead": c.CanRead, "canModerate": c.CanModerate}
		}
		trDetails := make([]string, len(out.Transitions))
		for i, t := range out.Transitions {
			trDetails[i] = t.String()
		}
		return Audit(ctx, tx, org, by, "agent.permissions_changed", "agent", agent,
			map[string]any{"columns": colDetails, "transitions": trDetails})
	})
	if err != nil {
		return Grants{}, err
	}
	return out, nil
}
