package models

import (
	"context"
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

// issueAgentKey creates a key bound to agent (issued through an invite) and
// returns it with its plaintext, which is never stored.
func issueAgentKey(ctx context.Context, db bun.IDB, org, team uuid.UUID, agent string, joinRequest uuid.UUID) (*APIKey, string, error) {
	k, raw := newKeyRow(org, team, "invite: "+agent)
	k.AgentID, k.JoinRequestID = &agent, &joinRequest
	if _, err := db.NewInsert().Model(k).Returning("*").Exec(ctx); err != nil {
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
	return res.RowsAffected()
}

// lastUsedEvery bounds how often last_used_at is written per key.
const lastUsedEvery = time.Minute

// AuthenticateAPIKey returns the active key for raw. A malformed, unknown,
// disabled, revoked or expired key is ErrUnauthorized. last_used_at is
// written at most once a minute per key.
func AuthenticateAPIKey(ctx context.Context, db bun.IDB, raw string) (*APIKey, error) {
	if !ValidAPIKeyFormat(raw) {
		return nil, ErrUnauthorized
	}
	k := new(APIKey)
	err := db.NewSelect().Model(k).Where("key_hash = ?", Hash(raw)).Scan(ctx)
	if err != nil {
		if err = translate(err, "find api key"); errors.Is(err, ErrNotFound) {
			return nil, ErrUnauthorized
		}
		return nil, err
	}
	now := time.Now()
	if k.State(now) != "active" {
		return nil, ErrUnauthorized
	}
	if k.LastUsedAt == nil || now.Sub(*k.LastUsedAt) > lastUsedEvery {
		_, err := db.NewUpdate().Model((*APIKey)(nil)).Set("last_used_at = now()").
			Where("id = ? AND (last_used_at IS NULL OR last_used_at < now() - ?::interval)", k.ID, "1 minute").Exec(ctx)
		if err != nil {
			return nil, translate(err, "touch api key")
		}
	}
	return k, nil
}
