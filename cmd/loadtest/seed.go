package main

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/agentroster/agentroster/models"
)

// loadSeed is what the load command seeds: approved agents with bound keys, and a
// team key for registrations.
type loadSeed struct {
	OrgID   uuid.UUID
	TeamID  uuid.UUID
	TeamKey string
	Agents  []loadAgent
}

// loadAgent is one seeded agent and its plaintext key.
type loadAgent struct {
	ID  string
	Key string
}

// seedLoad creates n approved agents named load-0 … load-(n-1), each with a
// key bound to it, in the default team of the first org of the user with
// email. It writes its rows in bulk, straight into the tables (the models
// create agents and keys one at a time, with audit rows and events): a
// fixture for load measurements only.
func seedLoad(ctx context.Context, db bun.IDB, email string, n int) (*loadSeed, error) {
	var org uuid.UUID
	err := db.NewRaw(`SELECT m.org_id FROM memberships m JOIN users u ON u.id = m.user_id WHERE u.email = ? ORDER BY m.created_at LIMIT 1`, email).Scan(ctx, &org)
	if err != nil {
		return nil, fmt.Errorf("find load org: %w", err)
	}
	team, err := models.DefaultTeam(ctx, db, org)
	if err != nil {
		return nil, err
	}
	seed := &loadSeed{OrgID: org, TeamID: team.ID}
	// Agents created a second apart, newest last, as a roster that grew.
	_, err = db.ExecContext(ctx, `INSERT INTO agents (org_id, id, team_id, title, status, pickup_enabled, joined_via, llm_version, machine_name, created_at)
		SELECT ?, 'load-' || g, ?, 'Load agent ' || g, 'approved', true, 'register', 'load-1', 'bench-' || (g % 50),
			now() - make_interval(secs => ? - g)
		FROM generate_series(0, ? - 1) AS g`, org, team.ID, n, n)
	if err != nil {
		return nil, fmt.Errorf("seed agents: %w", err)
	}
	keys := make([]models.APIKey, 0, 1000)
	flush := func() error {
		if len(keys) == 0 {
			return nil
		}
		_, err := db.NewInsert().Model(&keys).Exec(ctx)
		keys = keys[:0]
		if err != nil {
			return fmt.Errorf("seed keys: %w", err)
		}
		return nil
	}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("load-%d", i)
		k, raw := keyRow(org, team.ID, "load "+id)
		k.AgentID = &id
		keys = append(keys, *k)
		seed.Agents = append(seed.Agents, loadAgent{ID: id, Key: raw})
		if len(keys) == cap(keys) {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	k, raw := keyRow(org, team.ID, "load team key")
	if _, err := db.NewInsert().Model(k).Exec(ctx); err != nil {
		return nil, fmt.Errorf("seed team key: %w", err)
	}
	seed.TeamKey = raw
	// Statistics, as autovacuum would gather them on a live database: without
	// them the planner sorts every agent of the org for a page of 50.
	if _, err := db.ExecContext(ctx, "ANALYZE agents, api_keys"); err != nil {
		return nil, fmt.Errorf("analyze seeded tables: %w", err)
	}
	return seed, nil
}

// keyRow returns an active key row of team and its plaintext, as the models
// issue one (the same prefix length shows in lists).
func keyRow(org, team uuid.UUID, name string) (*models.APIKey, string) {
	raw := models.NewAPIKey()
	return &models.APIKey{OrgID: org, TeamID: team, Name: name, Prefix: raw[:len(models.APIKeyPrefix)+6], KeyHash: models.Hash(raw), IsActive: true}, raw
}
