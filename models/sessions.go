package models

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// Session is an operator's signed-in browser.
type Session struct {
	bun.BaseModel `bun:"table:sessions"`

	ID         []byte     `bun:",pk"`
	UserID     uuid.UUID  `bun:"user_id,type:uuid"`
	OrgID      *uuid.UUID `bun:"org_id,type:uuid"`
	AuthEpoch  int
	CreatedAt  time.Time `bun:",nullzero,default:now()"`
	LastSeenAt time.Time `bun:",nullzero,default:now()"`
	ExpiresAt  time.Time
	IP         string `bun:"ip"`
	UserAgent  string
}

// SessionTTL holds a session's idle and absolute lifetimes.
type SessionTTL struct {
	Idle     time.Duration
	Absolute time.Duration
}

// CreateSession starts a session for user and returns the token for its cookie.
func CreateSession(ctx context.Context, db bun.IDB, u *User, org *uuid.UUID, ip, userAgent string, ttl SessionTTL) (string, error) {
	token := RandomBase62(43)
	if len(userAgent) > 512 {
		userAgent = userAgent[:512]
	}
	s := &Session{
		ID: Hash(token), UserID: u.ID, OrgID: org, AuthEpoch: u.AuthEpoch,
		ExpiresAt: time.Now().Add(ttl.Absolute), IP: ip, UserAgent: userAgent,
	}
	_, err := db.NewInsert().Model(s).Exec(ctx)
	return token, translate(err, "create session")
}

// LookupSession returns the live session for token with its user. An unknown,
// expired, idle, disabled or superseded (older auth epoch) session is
// ErrUnauthorized. It refreshes last_seen_at at most once a minute.
func LookupSession(ctx context.Context, db bun.IDB, token string, ttl SessionTTL) (*Session, *User, error) {
	s, u := &Session{ID: Hash(token)}, new(User)
	err := db.NewRaw(`SELECT s.user_id, s.org_id, s.auth_epoch, s.created_at, s.last_seen_at, s.expires_at,
		u.email, u.is_sa, u.auth_epoch, u.disabled_at, u.last_login_at, u.created_at
		FROM sessions AS s JOIN users AS u ON u.id = s.user_id WHERE s.id = ?`, s.ID).
		Scan(ctx, &s.UserID, &s.OrgID, &s.AuthEpoch, &s.CreatedAt, &s.LastSeenAt, &s.ExpiresAt,
			&u.Email, &u.IsSA, &u.AuthEpoch, &u.DisabledAt, &u.LastLoginAt, &u.CreatedAt)
	if err != nil {
		if err = translate(err, "lookup session"); errors.Is(err, ErrNotFound) {
			return nil, nil, ErrUnauthorized
		}
		return nil, nil, err
	}
	u.ID = s.UserID
	now := time.Now()
	if now.After(s.ExpiresAt) || now.Sub(s.LastSeenAt) > ttl.Idle || u.DisabledAt != nil || u.AuthEpoch != s.AuthEpoch {
		if _, err := db.NewDelete().Model((*Session)(nil)).Where("id = ?", s.ID).Exec(ctx); err != nil {
			return nil, nil, translate(err, "end stale session")
		}
		return nil, nil, ErrUnauthorized
	}
	if now.Sub(s.LastSeenAt) > time.Minute {
		if _, err := db.NewUpdate().Model((*Session)(nil)).Set("last_seen_at = now()").Where("id = ?", s.ID).Exec(ctx); err != nil {
			return nil, nil, translate(err, "touch session")
		}
	}
	return s, u, nil
}

// SetSessionOrg changes the org a session works in.
func SetSessionOrg(ctx context.Context, db bun.IDB, token string, org uuid.UUID) error {
	_, err := db.NewUpdate().Model((*Session)(nil)).Set("org_id = ?", org).Where("id = ?", Hash(token)).Exec(ctx)
	return translate(err, "set session org")
}

// DeleteSession ends one session (sign-out); its open event streams close on
// every replica.
func DeleteSession(ctx context.Context, db bun.IDB, token string) error {
	id := Hash(token)
	var user uuid.UUID
	err := db.NewDelete().Model((*Session)(nil)).Where("id = ?", id).Returning("user_id").Scan(ctx, &user)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return translate(err, "delete session")
	}
	return Publish(ctx, db, Event{Kind: EventAccessEnded, User: user.String(), Session: SessionKey(id)})
}

// SessionKey names a session (by its id, itself a hash of its token) in
// events and stream bookkeeping.
func SessionKey(id []byte) string { return hex.EncodeToString(id) }

// StillSignedIn reports whether user is active at auth epoch epoch and, when
// session is not nil, that session still exists: a stream opened just before
// a sign-out, disable or password change checks this once it listens.
func StillSignedIn(ctx context.Context, db bun.IDB, user uuid.UUID, epoch int, session []byte) (bool, error) {
	q := db.NewSelect().Model((*User)(nil)).Where("id = ? AND auth_epoch = ? AND disabled_at IS NULL", user, epoch)
	if session != nil {
		q.Where("EXISTS (SELECT 1 FROM sessions WHERE id = ? AND user_id = ?)", session, user)
	}
	ok, err := q.Exists(ctx)
	return ok, translate(err, "check sign-in")
}

// DeleteExpiredSessions removes sessions past their absolute expiry.
func DeleteExpiredSessions(ctx context.Context, db bun.IDB) (int64, error) {
	res, err := db.NewDelete().Model((*Session)(nil)).Where("expires_at < now()").Exec(ctx)
	if err != nil {
		return 0, translate(err, "delete expired sessions")
	}
	return res.RowsAffected()
}
