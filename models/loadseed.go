package models

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// LoadSeed is what cmd/loadtest seeds: approved agents with bound keys, and a
// team key for registrations.
type LoadSeed struct {
	OrgID   uuid.UUID
	TeamID  uuid.UUID
	TeamKey string
	Agents  []LoadAgent
}

// LoadAgent is one seeded agent and its plaintext key.
type LoadAgent struct {
	ID  string
	Key string
}

// SeedLoad creates n approved agents named load-0 … load-(n-1), each with a
// key bound to it, in the default team of the first org of the user with
// email. For load measurements only.
func SeedLoad(ctx context.Context, db bun.IDB, email string, n int) (*LoadSeed, error) {
	var org uuid.UUID
	err := db.NewRaw(`SELECT m.org_id FROM memberships m JOIN users u ON u.id = m.user_id WHERE u.email = ? ORDER BY m.created_at LIMIT 1`, email).Scan(ctx, &org)
	if err != nil {
		return nil, translate(err, "find load org")
	}
	team, err := DefaultTeam(ctx, db, org)
	if err != nil {
		return nil, err
	}
	seed := &LoadSeed{OrgID: org, TeamID: team.ID}
	// Agents created a second apart, newest last, as a roster that grew.
	_, err = db.ExecContext(ctx, `INSERT INTO agents (org_id, id, team_id, title, status, pickup_enabled, joined_via, llm_version, machine_name, created_at)
		SELECT ?, 'load-' || g, ?, 'Load agent ' || g, 'approved', true, 'register', 'load-1', 'bench-' || (g % 50),
			now() - make_interval(secs => ? - g)
		FROM generate_series(0, ? - 1) AS g`, org, team.ID, n, n)
	if err != nil {
		return nil, translate(err, "seed agents")
	}
	keys := make([]APIKey, 0, 1000)
	flush := func() error {
		if len(keys) == 0 {
			return nil
		}
		_, err := db.NewInsert().Model(&keys).Exec(ctx)
		keys = keys[:0]
		return translate(err, "seed keys")
	}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("load-%d", i)
		k, raw := newKeyRow(org, team.ID, "load "+id)
		k.AgentID = &id
		keys = append(keys, *k)
		seed.Agents = append(seed.Agents, LoadAgent{ID: id, Key: raw})
		if len(keys) == cap(keys) {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	k, raw := newKeyRow(org, team.ID, "load team key")
	if _, err := db.NewInsert().Model(k).Exec(ctx); err != nil {
		return nil, translate(err, "seed team key")
	}
	seed.TeamKey = raw
	// Statistics, as autovacuum would gather them on a live database: without
	// them the planner sorts every agent of the org for a page of 50.
	if _, err := db.ExecContext(ctx, "ANALYZE agents, api_keys"); err != nil {
		return nil, translate(err, "analyze seeded tables")
	}
	return seed, nil
}
