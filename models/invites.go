package models

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// Invite limits (SPEC §4).
const (
	InviteTokenLen   = 32
	InviteMaxUsesMax = 100
	InviteTTLDefault = 24 * time.Hour
	InviteTTLMin     = 5 * time.Minute
	InviteTTLMax     = 7 * 24 * time.Hour
	InviteBulkMax    = 100
	inviteNameMaxLen = 63
)

// Invite states as lists show them.
const (
	InviteActive  = "Active"
	InviteExpired = "Expired"
	InviteSpent   = "Spent"
	InviteRevoked = "Revoked"
)

// Invite reserves an agent name for a runtime that joins with its token. The
// token is stored as its SHA-256 (for lookup) and AES-GCM sealed (for the
// Copy link button); never in plaintext.
type Invite struct {
	bun.BaseModel `bun:"table:invites"`

	ID          uuid.UUID  `bun:",pk,type:uuid,default:gen_random_uuid()"`
	OrgID       uuid.UUID  `bun:"org_id,type:uuid"`
	TeamID      uuid.UUID  `bun:"team_id,type:uuid"`
	AgentName   string     `bun:"agent_name"`
	AdapterType string     `bun:"adapter_type"`
	TokenHash   []byte     `bun:"token_hash"`
	TokenEnc    []byte     `bun:"token_enc"`
	MaxUses     int        `bun:"max_uses"`
	Uses        int        `bun:"uses"`
	CreatedBy   *uuid.UUID `bun:"created_by,type:uuid"`
	CreatedAt   time.Time  `bun:"created_at,nullzero,default:now()"`
	ExpiresAt   time.Time  `bun:"expires_at"`
	RevokedAt   *time.Time `bun:"revoked_at"`
}

// State is Revoked, Spent, Expired or Active, in that order of precedence.
func (i *Invite) State(now time.Time) string {
	switch {
	case i.RevokedAt != nil:
		return InviteRevoked
	case i.Uses >= i.MaxUses:
		return InviteSpent
	case !now.Before(i.ExpiresAt):
		return InviteExpired
	}
	return InviteActive
}

// UsesLeft is how many more joins the invite allows (0 once it is not active).
func (i *Invite) UsesLeft(now time.Time) int {
	if i.State(now) != InviteActive {
		return 0
	}
	return i.MaxUses - i.Uses
}

// gone is the 410 for an invite that exists but can no longer be used.
func (i *Invite) gone(now time.Time) error {
	switch i.State(now) {
	case InviteRevoked:
		return Gone("invite_revoked", "this invite was revoked")
	case InviteSpent:
		return Gone("invite_spent", "this invite has been used up")
	case InviteExpired:
		return Gone("invite_expired", "this invite has expired")
	}
	return nil
}

// ErrInviteNotFound is the answer for a token that matches no invite. It is
// the same for a malformed token, so probing reveals nothing.
var ErrInviteNotFound = &StateError{Kind: ErrNotFound, Code: "invite_not_found", Message: "invite not found"}

// InviteInput is what an operator gives when creating an invite.
type InviteInput struct {
	Team        uuid.UUID // uuid.Nil: the org's default team
	AgentName   string
	AdapterType string // default http
	MaxUses     int    // 1..100 (callers default it to 1)
	TTLSeconds  int64  // 300..604800 (callers default it to InviteTTLDefault)
}

// normalize fills defaults and checks the fields (team aside).
func (in *InviteInput) normalize(v *Validator, prefix string) {
	in.AgentName = strings.TrimSpace(in.AgentName)
	in.AdapterType = strings.TrimSpace(in.AdapterType)
	if in.AdapterType == "" {
		in.AdapterType = "http"
	}
	v.Check(in.AgentName != "", prefix+"agentName", "is required")
	v.Check(utf8.RuneCountInString(in.AgentName) <= inviteNameMaxLen, prefix+"agentName", "is too long (at most 63 characters)")
	v.Check(in.AgentName == "" || ValidAgentID(in.AgentName), prefix+"agentName", AgentIDRule)
	v.Check(ValidAdapterType(in.AdapterType), prefix+"adapterType", "must be one of http, webhook, mcp, custom")
	v.Check(in.MaxUses >= 1 && in.MaxUses <= InviteMaxUsesMax, prefix+"maxUses", "must be between 1 and 100")
	v.Check(in.TTLSeconds >= int64(InviteTTLMin/time.Second) && in.TTLSeconds <= int64(InviteTTLMax/time.Second),
		prefix+"ttlSeconds", "must be between 5 minutes (300) and 7 days (604800)")
}

// Validate checks one invite's input and fills defaults.
func (in *InviteInput) Validate() error {
	var v Validator
	in.normalize(&v, "")
	return v.Err()
}

// NewInvite is a created invite with its plaintext token, returned once to the creator.
type NewInvite struct {
	Invite *Invite
	Token  string
}

// CreateInvite creates an invite with a fresh 32-character token. It returns
// a ValidationError for bad input (an unknown team is a teamId error) and a 409
// name_taken when an agent of that name exists in org or another active invite
// reserves it.
func CreateInvite(ctx context.Context, db bun.IDB, s *Sealer, org uuid.UUID, in InviteInput, by Actor) (*NewInvite, error) {
	out, err := CreateInvites(ctx, db, s, org, []InviteInput{in}, by)
	if err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			// One invite: report fields without the list index.
			fields := map[string]string{}
			for k, msg := range ve.Fields {
				_, f, ok := strings.Cut(k, ".")
				if !ok {
					f = k
				}
				fields[f] = msg
			}
			return nil, &ValidationError{Fields: fields}
		}
		var se *StateError
		if errors.As(err, &se) && se.Details != nil {
			delete(se.Details, "line")
		}
		return nil, err
	}
	return &out[0], nil
}

// CreateInvites creates several invites in one transaction: all of them or,
// on any invalid or taken name, none. Field errors are named "invites[i].field".
func CreateInvites(ctx context.Context, db bun.IDB, s *Sealer, org uuid.UUID, ins []InviteInput, by Actor) ([]NewInvite, error) {
	var v Validator
	v.Check(len(ins) >= 1, "names", "give at least one agent name")
	v.Check(len(ins) <= InviteBulkMax, "names", "at most 100 invites at once")
	seen := map[string]int{}
	for i := range ins {
		p := "invites[" + strconv.Itoa(i) + "]."
		ins[i].normalize(&v, p)
		if j, dup := seen[ins[i].AgentName]; dup && ins[i].AgentName != "" {
			v.Check(false, p+"agentName", "repeats line "+strconv.Itoa(j+1))
		}
		seen[ins[i].AgentName] = i
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(ins))
	for _, in := range ins {
		names = append(names, in.AgentName)
	}
	out := make([]NewInvite, len(ins))
	err := InTx(ctx, db, func(tx bun.Tx) error {
		if err := lockInviteNames(ctx, tx, org, names); err != nil {
			return err
		}
		for i, in := range ins {
			chk, err := checkInvite(ctx, tx, org, in.Team, in.AgentName)
			if err != nil {
				return err
			}
			if err := chk.err(in, i+1); err != nil {
				return err
			}
			token := RandomBase62(InviteTokenLen)
			inv := &Invite{
				ID: uuid.New(), OrgID: org, TeamID: *chk.TeamID, AgentName: in.AgentName, AdapterType: in.AdapterType,
				TokenHash: Hash(token), TokenEnc: s.Seal(token), MaxUses: in.MaxUses,
				CreatedBy: by.UserID(), ExpiresAt: time.Now().Add(time.Duration(in.TTLSeconds) * time.Second).Truncate(time.Second),
			}
			audit := NewAudits(org, by)
			audit.Add("invite.created", "invite", inv.ID.String(), map[string]any{
				"agentName": inv.AgentName, "adapterType": inv.AdapterType, "maxUses": inv.MaxUses,
				"teamId": inv.TeamID.String(), "expiresAt": inv.ExpiresAt.UTC().Format(time.RFC3339),
			})
			if _, err := tx.NewInsert().With("audit", audit.Query(tx)).Model(inv).Returning("*").Exec(ctx); err != nil {
				return translate(err, "create invite")
			}
			out[i] = NewInvite{Invite: inv, Token: token}
		}
		return Publish(ctx, tx, Event{Org: org, Kind: EventInvite})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// lockInviteNames serializes creators of the same names in org until the
// transaction ends, so that the name check of checkInvite holds. The locks are
// taken in sorted order, in one statement: two bulk creations whose names
// overlap in different orders would otherwise deadlock. The check must be a
// later statement: a statement reads the rows committed when it starts, which
// is before it waited for the locks.
func lockInviteNames(ctx context.Context, tx bun.Tx, org uuid.UUID, names []string) error {
	sorted := slices.Sorted(slices.Values(names))
	_, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtextextended(? || '/' || name, 7)) FROM unnest(?::text[]) AS name",
		org.String(), pgdialect.Array(sorted))
	return translate(err, "lock invite names")
}

// inviteCheck is what creating one invite must know, read in one statement.
type inviteCheck struct {
	TeamID      *uuid.UUID // the team given or the default team; nil when org has no such team
	AgentTaken  bool       // an agent of org holds the name
	InviteTaken bool       // another active invite reserves it
}

// checkInvite reads the invite's team (uuid.Nil: org's default team) and
// whether its name is taken.
func checkInvite(ctx context.Context, db bun.IDB, org, team uuid.UUID, name string) (*inviteCheck, error) {
	teams := db.NewSelect().Model((*Team)(nil)).Column("id")
	if team == uuid.Nil {
		defaultTeam(teams, org)
	} else {
		teams.Where("org_id = ? AND id = ?", org, team)
	}
	agent := db.NewSelect().Model((*Agent)(nil)).ColumnExpr("1").Where("org_id = ? AND id = ?", org, name)
	invite := db.NewSelect().Model((*Invite)(nil)).ColumnExpr("1").
		Where("org_id = ? AND agent_name = ? AND revoked_at IS NULL AND uses < max_uses AND expires_at > now()", org, name)
	chk := new(inviteCheck)
	err := db.NewSelect().ColumnExpr("(?)", teams).ColumnExpr("EXISTS (?)", agent).ColumnExpr("EXISTS (?)", invite).
		Scan(ctx, &chk.TeamID, &chk.AgentTaken, &chk.InviteTaken)
	return chk, translate(err, "check invite")
}

// err is the refusal of invite in (on line `line` of a bulk creation): a
// teamId error for a team not in the org, a 409 name_taken when an agent holds
// the name or another active invite reserves it.
func (chk *inviteCheck) err(in InviteInput, line int) error {
	switch {
	case chk.TeamID == nil && in.Team == uuid.Nil:
		return translate(sql.ErrNoRows, "default team")
	case chk.TeamID == nil:
		return Invalid("teamId", "is not a team of this organization")
	case chk.AgentTaken:
		return Conflict("name_taken", "an agent with this name already exists in the organization",
			map[string]any{"agentName": in.AgentName, "line": line})
	case chk.InviteTaken:
		return Conflict("name_taken", "an active invite already reserves this name",
			map[string]any{"agentName": in.AgentName, "line": line})
	}
	return nil
}

// Token decrypts the invite's token (for the Copy link button).
func (i *Invite) Token(s *Sealer) (string, error) {
	return s.Open(i.TokenEnc)
}

// InvitePageSize is how many invites a page of the list shows.
const InvitePageSize = 50

// InviteFilter selects a page of an org's invites: a name search, a state
// (Active, Spent, Expired, Revoked; "" for all) and the keyset cursor of the
// last row of the page before (newest first).
type InviteFilter struct {
	Org   uuid.UUID
	Query string
	State string
	After *InviteCursor
	Limit int // InvitePageSize when 0
}

// InviteCursor is the position of a row in the newest-first list.
type InviteCursor struct {
	CreatedAt time.Time
	ID        uuid.UUID
}

// String encodes the cursor for a URL.
func (c InviteCursor) String() string {
	return c.CreatedAt.UTC().Format(time.RFC3339Nano) + "_" + c.ID.String()
}

// ParseInviteCursor decodes a cursor of String; it returns a
// ValidationError on field "after" when s is not one.
func ParseInviteCursor(s string) (*InviteCursor, error) {
	at, id, ok := strings.Cut(s, "_")
	t, err1 := time.Parse(time.RFC3339Nano, at)
	u, err2 := uuid.Parse(id)
	if !ok || err1 != nil || err2 != nil {
		return nil, Invalid("after", "must be a position from the list's Next link")
	}
	return &InviteCursor{CreatedAt: t, ID: u}, nil
}

// ParseInviteState reads a state filter: active, spent, expired, revoked or
// all (""); it returns a ValidationError on field "state" otherwise.
func ParseInviteState(s string) (string, error) {
	switch strings.ToLower(s) {
	case "", "all":
		return "", nil
	case "active":
		return InviteActive, nil
	case "spent":
		return InviteSpent, nil
	case "expired":
		return InviteExpired, nil
	case "revoked":
		return InviteRevoked, nil
	}
	return "", Invalid("state", "must be active, spent, expired, revoked or all")
}

// ListInvitePage returns one page of the invites f selects, newest first,
// and the cursor of the next page (nil on the last page). Paging is by
// keyset, so a page costs the same wherever it is in the list.
func ListInvitePage(ctx context.Context, db bun.IDB, f InviteFilter) ([]Invite, *InviteCursor, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = InvitePageSize
	}
	var invs []Invite
	q := db.NewSelect().Model(&invs).Where("org_id = ?", f.Org)
	if name := strings.TrimSpace(f.Query); name != "" {
		q.Where(`agent_name ILIKE ? ESCAPE '\'`, "%"+escapeLike(name)+"%")
	}
	switch f.State {
	case InviteActive:
		q.Where("revoked_at IS NULL AND uses < max_uses AND expires_at > now()")
	case InviteSpent:
		q.Where("revoked_at IS NULL AND uses >= max_uses")
	case InviteExpired:
		q.Where("revoked_at IS NULL AND uses < max_uses AND expires_at <= now()")
	case InviteRevoked:
		q.Where("revoked_at IS NOT NULL")
	}
	if f.After != nil {
		q.Where("(created_at, id) < (?, ?)", f.After.CreatedAt, f.After.ID)
	}
	err := q.OrderExpr("created_at DESC, id DESC").Limit(int64(limit) + 1).Scan(ctx)
	if err != nil {
		return nil, nil, translate(err, "list invites")
	}
	var next *InviteCursor
	if len(invs) > limit {
		invs = invs[:limit]
		last := invs[limit-1]
		next = &InviteCursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	return invs, next, nil
}

// InvitesByID returns the invites of org among ids, by id (one query).
func InvitesByID(ctx context.Context, db bun.IDB, org uuid.UUID, ids []uuid.UUID) (map[uuid.UUID]Invite, error) {
	out := make(map[uuid.UUID]Invite, len(ids))
	var invs []Invite
	if err := db.NewSelect().Model(&invs).Where("org_id = ? AND id = ANY(?::uuid[])", org, pgdialect.Array(ids)).Scan(ctx); err != nil {
		return nil, translate(err, "invites by id")
	}
	for _, inv := range invs {
		out[inv.ID] = inv
	}
	return out, nil
}

// GetInvite returns an invite of org, or ErrNotFound.
func GetInvite(ctx context.Context, db bun.IDB, org, id uuid.UUID) (*Invite, error) {
	inv := new(Invite)
	err := db.NewSelect().Model(inv).Where("org_id = ? AND id = ?", org, id).Scan(ctx)
	return inv, translate(err, "get invite")
}

// InviteOrg returns the org of an invite and user's role there ("" when not
// a member), or ErrNotFound.
func InviteOrg(ctx context.Context, db bun.IDB, id, user uuid.UUID) (uuid.UUID, string, error) {
	return orgAndRole(ctx, db, (*Invite)(nil), id, user, "get invite org")
}

// findInvite looks an invite up by token. A malformed or unknown token is
// ErrInviteNotFound.
func findInvite(ctx context.Context, db bun.IDB, token string) (*Invite, error) {
	if !IsBase62(token, InviteTokenLen) {
		return nil, ErrInviteNotFound
	}
	inv := new(Invite)
	err := db.NewSelect().Model(inv).Where("token_hash = ?", Hash(token)).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrInviteNotFound
	}
	if err != nil {
		return nil, translate(err, "find invite")
	}
	return inv, nil
}

// InviteInfo is what a token holder may learn about the invite.
type InviteInfo struct {
	Invite   *Invite
	OrgTitle string
	TeamName string
}

// LookupInvite returns the active invite of token with its org and team
// names. An unknown or malformed token is ErrInviteNotFound (404); a revoked,
// spent or expired one is a 410 invite_revoked / invite_spent / invite_expired.
func LookupInvite(ctx context.Context, db bun.IDB, token string) (*InviteInfo, error) {
	inv, err := findInvite(ctx, db, token)
	if err != nil {
		return nil, err
	}
	if err := inv.gone(time.Now()); err != nil {
		return nil, err
	}
	info := &InviteInfo{Invite: inv}
	err = db.NewSelect().Table("organizations").Column("title").Where("id = ?", inv.OrgID).Scan(ctx, &info.OrgTitle)
	if err != nil {
		return nil, translate(err, "get invite org")
	}
	team, err := GetTeam(ctx, db, inv.OrgID, inv.TeamID)
	if err != nil {
		return nil, err
	}
	info.TeamName = team.Name
	return info, nil
}

// DeleteInvite revokes an invite: its link stops working at once, and the row
// stays (shown Revoked) with its join requests. Deleting a revoked invite
// changes nothing. It returns ErrNotFound when the invite is not in org.
func DeleteInvite(ctx context.Context, db bun.IDB, org, id uuid.UUID, by Actor) (*Invite, error) {
	inv := new(Invite)
	err := InTx(ctx, db, func(tx bun.Tx) error {
		err := tx.NewUpdate().Model(inv).Set("revoked_at = now()").
			Where("org_id = ? AND id = ? AND revoked_at IS NULL", org, id).Returning("*").Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			err := tx.NewSelect().Model(inv).Where("org_id = ? AND id = ?", org, id).Scan(ctx)
			return translate(err, "get invite")
		}
		if err != nil {
			return translate(err, "delete invite")
		}
		if err := Audit(ctx, tx, org, by, "invite.deleted", "invite", id.String(), map[string]any{"agentName": inv.AgentName, "uses": inv.Uses}); err != nil {
			return err
		}
		return Publish(ctx, tx, Event{Org: org, Kind: EventInvite, ID: id.String()})
	})
	if err != nil {
		return nil, err
	}
	return inv, nil
}
