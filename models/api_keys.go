package models

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// APIKey is a runtime credential. Only its SHA-256 is stored.
type APIKey struct {
	bun.BaseModel `bun:"table:api_keys"`

	ID            uuid.UUID  `bun:",pk,type:uuid,default:gen_random_uuid()" json:"id"`
	OrgID         uuid.UUID  `bun:"org_id,type:uuid" json:"orgId"`
	TeamID        uuid.UUID  `bun:"team_id,type:uuid" json:"teamId"`
	AgentID       *string    `bun:"agent_id" json:"agentId"`
	Name          string     `json:"name"`
	Prefix        string     `json:"prefix"`
	KeyHash       []byte     `json:"-"`
	JoinRequestID *uuid.UUID `bun:"join_request_id,type:uuid" json:"joinRequestId,omitempty"`
	CreatedBy     *uuid.UUID `bun:"created_by,type:uuid" json:"createdBy,omitempty"`
	CreatedAt     time.Time  `bun:",nullzero,default:now()" json:"createdAt"`
	ExpiresAt     *time.Time `json:"expiresAt"`
	LastUsedAt    *time.Time `json:"lastUsedAt"`
	IsActive      bool       `json:"isActive"`
	RevokedAt     *time.Time `json:"revokedAt"`
}

// State is how the key shows in lists: active, disabled, expired or revoked.
func (k *APIKey) State(now time.Time) string {
	switch {
	case k.RevokedAt != nil:
		return "revoked"
	case !k.IsActive:
		return "disabled"
	case k.ExpiresAt != nil && !now.Before(*k.ExpiresAt):
		return "expired"
	}
	return "active"
}

// keyPrefixLen is how much of a key is kept to recognise it in lists.
const keyPrefixLen = len(APIKeyPrefix) + 6

// newKeyRow returns a key row and the plaintext key, shown once.
func newKeyRow(org, team uuid.UUID, name string) (*APIKey, string) {
	raw := NewAPIKey()
	return &APIKey{OrgID: org, TeamID: team, Name: name, Prefix: raw[:keyPrefixLen], KeyHash: Hash(raw), IsActive: true}, raw
}

// issueAgentKey creates a key bound to agent, claimed through join request
// joinRequest, and returns it with its plaintext, which is never stored. Its
// api_key.claimed audit event is written by the same statement.
func issueAgentKey(ctx context.Context, db bun.IDB, org, team uuid.UUID, agent string, joinRequest uuid.UUID, by Actor) (*APIKey, string, error) {
	k, raw := newKeyRow(org, team, "invite: "+agent)
	k.ID, k.AgentID, k.JoinRequestID = uuid.New(), &agent, &joinRequest
	audit := NewAudits(org, by)
	audit.Add("api_key.claimed", "api_key", k.ID.String(),
		map[string]any{"agentId": agent, "joinRequestId": joinRequest.String(), "prefix": k.Prefix})
	if _, err := db.NewInsert().With("audit", audit.Query(db)).Model(k).Returning("*").Exec(ctx); err != nil {
		return nil, "", translate(err, "issue agent key")
	}
	return k, raw, nil
}

// revokeInviteKeys revokes every invite-issued key of an agent (on re-registration).
func revokeInviteKeys(ctx context.Context, db bun.IDB, org uuid.UUID, agent string) (int64, error) {
	res, err := db.NewUpdate().Model((*APIKey)(nil)).
		Set("revoked_at = now()").Set("is_active = false").
		Where("org_id = ? AND agent_id = ? AND join_request_id IS NOT NULL AND revoked_at IS NULL", org, agent).Exec(ctx)
	if err != nil {
		return 0, translate(err, "revoke invite keys")
	}
	n, err := res.RowsAffected()
	if err != nil || n == 0 {
		return n, err
	}
	// Replicas drop the agent's cached keys.
	return n, Publish(ctx, db, Event{Org: org, Kind: EventAgent, ID: agent})
}

// lastUsedEvery bounds how often last_used_at is written per key.
const lastUsedEvery = time.Minute

// KeyInput is what an admin gives when creating a team key.
type KeyInput struct {
	Name      string
	Team      uuid.UUID
	ExpiresAt *time.Time // nil: never
}

// CreateTeamKey creates a team key (not bound to an agent; it can register
// agents in any team of org) and returns it with its plaintext, which is
// shown once and never stored. The team must be in org.
func CreateTeamKey(ctx context.Context, db bun.IDB, org uuid.UUID, in KeyInput, by Actor) (*APIKey, string, error) {
	in.Name = cleanText(in.Name)
	var v Validator
	validText(&v, "name", in.Name, 100)
	v.Check(in.ExpiresAt == nil || in.ExpiresAt.After(time.Now()), "expiresAt", "must be in the future")
	v.Check(in.ExpiresAt == nil || in.ExpiresAt.Before(time.Now().AddDate(10, 0, 0)), "expiresAt", "must be within ten years")
	if err := v.Err(); err != nil {
		return nil, "", err
	}
	k, raw := newKeyRow(org, in.Team, in.Name)
	k.CreatedBy, k.ExpiresAt = by.UserID(), in.ExpiresAt
	err := InTx(ctx, db, func(tx bun.Tx) error {
		if _, err := GetTeam(ctx, tx, org, in.Team); err != nil {
			if errors.Is(err, ErrNotFound) {
				return Invalid("teamId", "is not a team of this organization")
			}
			return err
		}
		if _, err := tx.NewInsert().Model(k).Returning("*").Exec(ctx); err != nil {
			return translate(err, "create api key")
		}
		return Audit(ctx, tx, org, by, "api_key.created", "api_key", k.ID.String(),
			map[string]any{"name": k.Name, "prefix": k.Prefix, "teamId": in.Team.String()})
	})
	if err != nil {
		return nil, "", err
	}
	return k, raw, nil
}

// KeyFilter narrows a key listing.
type KeyFilter struct {
	Org   uuid.UUID
	Agent string // only keys bound to this agent
}

// ListAPIKeys returns an org's keys, newest first (at most 1000).
func ListAPIKeys(ctx context.Context, db bun.IDB, f KeyFilter) ([]APIKey, error) {
	var keys []APIKey
	q := db.NewSelect().Model(&keys).Where("org_id = ?", f.Org).OrderExpr("created_at DESC, id DESC").Limit(1000)
	if f.Agent != "" {
		q.Where("agent_id = ?", f.Agent)
	}
	err := q.Scan(ctx)
	return keys, translate(err, "list api keys")
}

// GetAPIKey returns a key of org, or ErrNotFound.
func GetAPIKey(ctx context.Context, db bun.IDB, org, id uuid.UUID) (*APIKey, error) {
	k := new(APIKey)
	err := db.NewSelect().Model(k).Where("org_id = ? AND id = ?", org, id).Scan(ctx)
	return k, translate(err, "get api key")
}

// APIKeyOrg returns the org of a key, or ErrNotFound.
func APIKeyOrg(ctx context.Context, db bun.IDB, id uuid.UUID) (uuid.UUID, error) {
	var org uuid.UUID
	err := db.NewSelect().Model((*APIKey)(nil)).Column("org_id").Where("id = ?", id).Scan(ctx, &org)
	return org, translate(err, "get api key org")
}

// SetAPIKeyActive disables or re-enables a key. Asking for the current state
// changes nothing; a revoked key cannot be re-enabled (409 key_revoked).
// It returns ErrNotFound when the key is not in org.
func SetAPIKeyActive(ctx context.Context, db bun.IDB, org, id uuid.UUID, active bool, by Actor) (*APIKey, error) {
	k := new(APIKey)
	err := InTx(ctx, db, func(tx bun.Tx) error {
		err := tx.NewUpdate().Model(k).Set("is_active = ?", active).
			Where("org_id = ? AND id = ? AND revoked_at IS NULL AND is_active = ?", org, id, !active).
			Returning("*").Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			if err := tx.NewSelect().Model(k).Where("org_id = ? AND id = ?", org, id).Scan(ctx); err != nil {
				return translate(err, "get api key")
			}
			if k.RevokedAt != nil && active {
				return Conflict("key_revoked", "a revoked key cannot be enabled again", map[string]any{"state": "revoked"})
			}
			return nil
		}
		if err != nil {
			return translate(err, "set api key active")
		}
		event := "api_key.disabled"
		if active {
			event = "api_key.enabled"
		}
		if err := Audit(ctx, tx, org, by, event, "api_key", id.String(), map[string]any{"prefix": k.Prefix}); err != nil {
			return err
		}
		return Publish(ctx, tx, Event{Org: org, Kind: EventAPIKey, ID: id.String()})
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// RevokeAPIKey revokes a key for good (idempotent: revoking a revoked key
// changes nothing). It returns ErrNotFound when the key is not in org.
func RevokeAPIKey(ctx context.Context, db bun.IDB, org, id uuid.UUID, by Actor) (*APIKey, error) {
	k := new(APIKey)
	err := InTx(ctx, db, func(tx bun.Tx) error {
		err := tx.NewUpdate().Model(k).Set("revoked_at = now()").Set("is_active = false").
			Where("org_id = ? AND id = ? AND revoked_at IS NULL", org, id).Returning("*").Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			err := tx.NewSelect().Model(k).Where("org_id = ? AND id = ?", org, id).Scan(ctx)
			return translate(err, "get api key")
		}
		if err != nil {
			return translate(err, "revoke api key")
		}
		details := map[string]any{"prefix": k.Prefix}
		if k.AgentID != nil {
			details["agentId"] = *k.AgentID
		}
		if err := Audit(ctx, tx, org, by, "api_key.revoked", "api_key", id.String(), details); err != nil {
			return err
		}
		details["keyId"], details["name"], details["path"] = id.String(), k.Name, "/settings/api-keys"
		if err := EnqueueNotification(ctx, tx, org, NotifyKeyRevoked, details); err != nil {
			return err
		}
		return Publish(ctx, tx, Event{Org: org, Kind: EventAPIKey, ID: id.String()})
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// APIKeyByHash returns the key whose hash is h, in any state; an unknown one
// is ErrUnauthorized.
func APIKeyByHash(ctx context.Context, db bun.IDB, h []byte) (*APIKey, error) {
	k := new(APIKey)
	err := db.NewSelect().Model(k).Where("key_hash = ?", h).Scan(ctx)
	if err != nil {
		if err = translate(err, "find api key"); errors.Is(err, ErrNotFound) {
			return nil, ErrUnauthorized
		}
		return nil, err
	}
	return k, nil
}
