package models

import (
	"context"
	"database/sql"
	"errors"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// Join request statuses (SPEC §5).
const (
	JoinPending  = "PENDING"
	JoinApproved = "APPROVED"
	JoinRejected = "REJECTED"
)

// ClaimSecretPrefix starts every claim secret.
const ClaimSecretPrefix = "ag_cs_"

// ClaimTTL is how long a claim secret works.
const ClaimTTL = 7 * 24 * time.Hour

// Client secret limits: a runtime's own claim secret (clientSecret).
const (
	ClientSecretMin = 32
	ClientSecretMax = 200
)

// NewClaimSecret returns a fresh server-issued claim secret: the prefix and 40
// random base62 characters. Only its SHA-256 is stored, so it is shown once.
func NewClaimSecret() string { return ClaimSecretPrefix + RandomBase62(40) }

// JoinRequest is a runtime's request to join through an invite. Its claim
// secret is stored only as a SHA-256: of a random server-issued secret, or of
// the runtime's own clientSecret (ClientSecret true). An approved request is
// bound to the agent row its approval created or kept (AgentUID); deleting
// that agent voids the claim for good (ClaimVoidedAt).
type JoinRequest struct {
	bun.BaseModel `bun:"table:join_requests"`

	ID              uuid.UUID  `bun:",pk,type:uuid,default:gen_random_uuid()"`
	OrgID           uuid.UUID  `bun:"org_id,type:uuid"`
	InviteID        uuid.UUID  `bun:"invite_id,type:uuid"`
	TeamID          uuid.UUID  `bun:"team_id,type:uuid"`
	AgentName       string     `bun:"agent_name"`
	AdapterType     string     `bun:"adapter_type"`
	Status          string     `bun:"status"`
	Title           string     `bun:"title"`
	MachineName     string     `bun:"machine_name"`
	MachineIP       string     `bun:"machine_ip"`
	LLMVersion      string     `bun:"llm_version"`
	Email           string     `bun:"email"`
	OSName          *string    `bun:"os_name"`
	OSVersion       *string    `bun:"os_version"`
	RAMBytes        *int64     `bun:"ram_bytes"`
	StorageBytes    *int64     `bun:"storage_bytes"`
	StorageType     *string    `bun:"storage_type"`
	SourceIP        string     `bun:"source_ip"`
	UserAgent       string     `bun:"user_agent"`
	IdempotencyKey  *string    `bun:"idempotency_key"`
	ClaimSecretHash []byte     `bun:"claim_secret_hash"`
	ClientSecret    bool       `bun:"client_secret"`
	ClaimExpiresAt  time.Time  `bun:"claim_expires_at"`
	CreatedAt       time.Time  `bun:"created_at,nullzero,default:now()"`
	DecidedAt       *time.Time `bun:"decided_at"`
	DecidedBy       *uuid.UUID `bun:"decided_by,type:uuid"`
	ClaimedAt       *time.Time `bun:"claimed_at"`
	AgentID         *string    `bun:"agent_id"`
	AgentUID        *uuid.UUID `bun:"agent_uid,type:uuid"`
	ClaimVoidedAt   *time.Time `bun:"claim_voided_at"`
}

// Telemetry returns the machine telemetry the runtime declared.
func (j *JoinRequest) Telemetry() Telemetry {
	return Telemetry{OSName: j.OSName, OSVersion: j.OSVersion, RAMBytes: j.RAMBytes, StorageBytes: j.StorageBytes, StorageType: j.StorageType}
}

// CountPendingJoinRequests returns how many join requests of org await a
// decision, at most BadgeCap.
func CountPendingJoinRequests(ctx context.Context, db bun.IDB, org uuid.UUID) (int, error) {
	var n int
	err := db.NewRaw(`SELECT count(*) FROM (SELECT 1 FROM join_requests WHERE org_id = ? AND status = 'PENDING' LIMIT ?) AS p`,
		org, BadgeCap).Scan(ctx, &n)
	return n, translate(err, "count pending join requests")
}

// JoinInput is what a runtime declares when it joins, plus where the request came from.
type JoinInput struct {
	AdapterType string // default: the invite's
	Title       string
	MachineName string
	MachineIP   string
	LLMVersion  string
	Email       string
	Telemetry

	IdempotencyKey string // optional: a retry with the same key replays the request
	ClientSecret   string // optional: the runtime's own claim secret (32-200 printable ASCII)
	SourceIP       string
	UserAgent      string
}

// Validate checks the declaration.
func (in *JoinInput) Validate() error {
	in.AdapterType, in.Title = strings.TrimSpace(in.AdapterType), cleanText(in.Title)
	in.MachineIP, in.MachineName = strings.TrimSpace(in.MachineIP), cleanText(in.MachineName)
	in.LLMVersion, in.Email = cleanText(in.LLMVersion), strings.TrimSpace(in.Email)
	var v Validator
	v.Check(in.AdapterType == "" || ValidAdapterType(in.AdapterType), "adapterType", "must be one of http, webhook, mcp, custom")
	optText(&v, "title", in.Title, 200)
	if in.MachineIP != "" {
		_, err := netip.ParseAddr(in.MachineIP)
		v.Check(err == nil, "machineIp", "must be an IPv4 or IPv6 address")
	}
	optText(&v, "machineName", in.MachineName, 255)
	optText(&v, "llmVersion", in.LLMVersion, 100)
	optText(&v, "email", in.Email, 254)
	optPtrText(&v, "osName", in.OSName, 100)
	optPtrText(&v, "osVersion", in.OSVersion, 100)
	optPtrText(&v, "storageType", in.StorageType, 32)
	v.Check(in.RAMBytes == nil || *in.RAMBytes >= 0, "ramBytes", "must not be negative")
	v.Check(in.StorageBytes == nil || *in.StorageBytes >= 0, "storageBytes", "must not be negative")
	k := in.IdempotencyKey
	v.Check(len(k) <= 200, "Idempotency-Key", "is too long (at most 200 characters)")
	v.Check(!strings.ContainsFunc(k, func(r rune) bool { return r < 0x20 || r > 0x7e }), "Idempotency-Key", "must be printable ASCII")
	if cs := in.ClientSecret; cs != "" {
		v.Check(len(cs) >= ClientSecretMin && len(cs) <= ClientSecretMax, "clientSecret", "must be 32 to 200 characters")
		v.Check(!strings.ContainsFunc(cs, func(r rune) bool { return r <= 0x20 || r > 0x7e }), "clientSecret", "must be printable ASCII without spaces")
	}
	return v.Err()
}

// Joined is a created (or replayed) join request and its claim secret.
type Joined struct {
	Request *JoinRequest
	// ClaimSecret is the server-issued secret, set only when the request was
	// created now without a clientSecret (or on a re-issue): it exists once.
	ClaimSecret string
	Replayed    bool // an Idempotency-Key retry: the invite was not used again, no secret is shown
}

// ErrIdempotencyMismatch answers a replay whose clientSecret (or its absence)
// differs from the request's: the key belongs to another runtime.
var ErrIdempotencyMismatch = &StateError{Kind: ErrConflict, Code: "idempotency_key_reused",
	Message: "this Idempotency-Key was used on this invite with another clientSecret"}

// JoinInvite uses the invite of token once and creates a PENDING join
// request, in one transaction: the use is one conditional UPDATE, so
// concurrent joins never exceed max uses. The claim secret is the runtime's
// clientSecret when it gave one, else a random one returned this once; only
// its hash is stored. With an idempotency key already used on this invite it
// returns that request (id and state, never a secret) without using the
// invite, audited as join_request.replayed; see replayJoin for its refusals.
// Errors: a ValidationError (nothing written), ErrInviteNotFound (404), 410
// invite_revoked / invite_spent / invite_expired.
func JoinInvite(ctx context.Context, db bun.IDB, token string, in JoinInput, by Actor) (*Joined, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	if !IsBase62(token, InviteTokenLen) {
		return nil, ErrInviteNotFound
	}
	hash := Hash(token)
	if in.IdempotencyKey != "" {
		if j, err := replayJoin(ctx, db, hash, in, by); j != nil || err != nil {
			return j, err
		}
	}
	var out *Joined
	err := InTx(ctx, db, func(tx bun.Tx) error {
		inv := new(Invite)
		err := tx.NewUpdate().Model(inv).Set("uses = uses + 1").
			Where("token_hash = ? AND uses < max_uses AND expires_at > now() AND revoked_at IS NULL", hash).
			Returning("*").Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			inv, err := findInvite(ctx, tx, token)
			if err != nil {
				return err
			}
			if err := inv.gone(time.Now()); err != nil {
				return err
			}
			return Gone("invite_expired", "this invite is no longer usable")
		}
		if err != nil {
			return translate(err, "use invite")
		}
		adapter := in.AdapterType
		if adapter == "" {
			adapter = inv.AdapterType
		}
		jr := &JoinRequest{
			ID: uuid.New(), OrgID: inv.OrgID, InviteID: inv.ID, TeamID: inv.TeamID, AgentName: inv.AgentName,
			AdapterType: adapter, Status: JoinPending, Title: in.Title, MachineName: in.MachineName,
			MachineIP: in.MachineIP, LLMVersion: in.LLMVersion, Email: in.Email,
			OSName: in.OSName, OSVersion: in.OSVersion, RAMBytes: in.RAMBytes, StorageBytes: in.StorageBytes,
			StorageType: in.StorageType, SourceIP: clip(in.SourceIP, 64), UserAgent: clip(in.UserAgent, 500),
			ClaimExpiresAt: time.Now().Add(ClaimTTL),
		}
		if in.IdempotencyKey != "" {
			jr.IdempotencyKey = &in.IdempotencyKey
		}
		var secret string
		if in.ClientSecret != "" {
			jr.ClaimSecretHash, jr.ClientSecret = Hash(in.ClientSecret), true
		} else {
			secret = NewClaimSecret()
			jr.ClaimSecretHash = Hash(secret)
		}
		audits := NewAudits(inv.OrgID, by)
		audits.Add("invite.used", "invite", inv.ID.String(),
			map[string]any{"agentName": inv.AgentName, "uses": inv.Uses, "maxUses": inv.MaxUses, "joinRequestId": jr.ID.String()})
		audits.Add("join_request.created", "join_request", jr.ID.String(),
			map[string]any{"agentName": jr.AgentName, "adapterType": jr.AdapterType, "inviteId": inv.ID.String(), "userAgent": jr.UserAgent})
		notify, err := notificationQuery(tx, inv.OrgID, NotifyJoinRequestCreated, map[string]any{
			"agentName": jr.AgentName, "adapterType": jr.AdapterType, "joinRequestId": jr.ID.String(), "path": "/agents/join-requests"})
		if err != nil {
			return err
		}
		// One statement writes the request, its audit events and its notifications.
		_, err = tx.NewInsert().With("audit", audits.Query(tx)).With("notify", notify).Model(jr).Returning("*").Exec(ctx)
		if err != nil {
			return translate(err, "create join request")
		}
		if err := Publish(ctx, tx, Event{Org: inv.OrgID, Kind: EventJoinRequest, ID: jr.ID.String()}); err != nil {
			return err
		}
		out = &Joined{Request: jr, ClaimSecret: secret}
		return Publish(ctx, tx, Event{Org: inv.OrgID, Kind: EventInvite, ID: inv.ID.String()})
	})
	if errors.Is(err, ErrConflict) && in.IdempotencyKey != "" {
		// A concurrent request with the same key won: answer its request.
		if j, rerr := replayJoin(ctx, db, hash, in, by); j != nil || rerr != nil {
			return j, rerr
		}
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// replayJoin returns the join request made on the invite of hash with
// in.IdempotencyKey (nil when there is none), without its secret, and audits
// the replay. It is refused with the invite's 410 once the invite is revoked
// or expired (a spent invite still replays: its last use may be this request),
// and with ErrIdempotencyMismatch when the clientSecret given differs from the
// request's, or one is given or missing where the request had none or one.
func replayJoin(ctx context.Context, db bun.IDB, hash []byte, in JoinInput, by Actor) (*Joined, error) {
	jr := new(replayedRequest)
	err := db.NewSelect().Model(jr).
		ColumnExpr("?TableAlias.*").
		ColumnExpr("i.revoked_at AS invite_revoked_at, i.expires_at AS invite_expires_at").
		Join("JOIN invites AS i ON i.id = ?TableAlias.invite_id").
		Where("i.token_hash = ? AND ?TableAlias.idempotency_key = ?", hash, in.IdempotencyKey).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, translate(err, "find join request")
	}
	switch {
	case jr.InviteRevokedAt != nil:
		return nil, Gone("invite_revoked", "this invite was revoked")
	case !time.Now().Before(jr.InviteExpiresAt):
		return nil, Gone("invite_expired", "this invite has expired")
	}
	same := jr.ClientSecret == (in.ClientSecret != "")
	if jr.ClientSecret && in.ClientSecret != "" {
		same = SecretEqual(Hash(in.ClientSecret), jr.ClaimSecretHash)
	}
	if !same {
		return nil, ErrIdempotencyMismatch
	}
	err = Audit(ctx, db, jr.OrgID, by, "join_request.replayed", "join_request", jr.ID.String(), map[string]any{
		"agentName": jr.AgentName, "inviteId": jr.InviteID.String(), "status": jr.Status,
		"sourceIp": clip(in.SourceIP, 64), "userAgent": clip(in.UserAgent, 500)})
	if err != nil {
		return nil, err
	}
	return &Joined{Request: &jr.JoinRequest, Replayed: true}, nil
}

// replayedRequest is a join request with the state of its invite.
type replayedRequest struct {
	JoinRequest     `bun:",extend"`
	InviteRevokedAt *time.Time `bun:"invite_revoked_at,scanonly"`
	InviteExpiresAt time.Time  `bun:"invite_expires_at,scanonly"`
}

func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// JoinFilter narrows a join request listing.
type JoinFilter struct {
	Org    uuid.UUID
	Status string // PENDING, APPROVED, REJECTED; empty: all
}

// ParseJoinStatus accepts a status filter in any case; "" and "all" mean every status.
func ParseJoinStatus(s string) (string, error) {
	switch u := strings.ToUpper(strings.TrimSpace(s)); u {
	case "", "ALL":
		return "", nil
	case JoinPending, JoinApproved, JoinRejected:
		return u, nil
	}
	return "", Invalid("status", "must be pending, approved, rejected or all")
}

// ListJoinRequests returns an org's join requests, newest first (at most 500).
func ListJoinRequests(ctx context.Context, db bun.IDB, f JoinFilter) ([]JoinRequest, error) {
	var jrs []JoinRequest
	q := db.NewSelect().Model(&jrs).Where("org_id = ?", f.Org).OrderExpr("created_at DESC, id DESC").Limit(500)
	if f.Status != "" {
		q.Where("status = ?", f.Status)
	}
	err := q.Scan(ctx)
	return jrs, translate(err, "list join requests")
}

// GetJoinRequest returns a join request of org, or ErrNotFound.
func GetJoinRequest(ctx context.Context, db bun.IDB, org, id uuid.UUID) (*JoinRequest, error) {
	jr := new(JoinRequest)
	err := db.NewSelect().Model(jr).Where("org_id = ? AND id = ?", org, id).Scan(ctx)
	return jr, translate(err, "get join request")
}

// JoinRequestOrg returns the org of a join request and user's role there (""
// when not a member), or ErrNotFound.
func JoinRequestOrg(ctx context.Context, db bun.IDB, id, user uuid.UUID) (uuid.UUID, string, error) {
	return orgAndRole(ctx, db, (*JoinRequest)(nil), id, user, "get join request org")
}

// decide moves a PENDING request of org to status in one conditional UPDATE.
// The loser of a race gets a 409 join_request_decided with the current status.
func decide(ctx context.Context, tx bun.Tx, org, id uuid.UUID, status string, by Actor) (*JoinRequest, error) {
	jr := new(JoinRequest)
	q := tx.NewUpdate().Model(jr).Set("status = ?", status).Set("decided_at = now()").Set("decided_by = ?", by.UserID())
	if status == JoinApproved {
		q.Set("agent_id = agent_name")
	}
	err := q.Where("org_id = ? AND id = ? AND status = ?", org, id, JoinPending).Returning("*").Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		cur, err := GetJoinRequest(ctx, tx, org, id)
		if err != nil {
			return nil, err
		}
		return nil, Conflict("join_request_decided", "this join request was already "+strings.ToLower(cur.Status),
			map[string]any{"status": cur.Status})
	}
	if err != nil {
		return nil, translate(err, "decide join request")
	}
	return jr, nil
}

// Approval is the outcome of approving a join request.
type Approval struct {
	Request      *JoinRequest
	Agent        *Agent
	Reregistered bool  // the agent existed (multi-use invite): it was kept
	RevokedKeys  int64 // its earlier invite-issued keys, revoked
}

// ApproveJoinRequest marks a pending request approved and creates its agent
// (status approved, pickup on, the invite's team, the declared title or else
// the name) in one transaction, binding the request to that agent row. When an agent of that name already exists
// because an earlier request of the same invite produced it (re-registration),
// the agent is kept and its earlier invite-issued keys are revoked; an agent of
// that name made any other way is a 409 name_taken and nothing changes.
// It returns ErrNotFound when the request is not in org and a 409
// join_request_decided when it was already decided.
func ApproveJoinRequest(ctx context.Context, db bun.IDB, org, id uuid.UUID, by Actor) (*Approval, error) {
	var out *Approval
	err := InTx(ctx, db, func(tx bun.Tx) error {
		jr, err := decide(ctx, tx, org, id, JoinApproved, by)
		if err != nil {
			return err
		}
		title := jr.Title
		if title == "" {
			title = jr.AgentName
		}
		a := &Agent{
			OrgID: org, ID: jr.AgentName, TeamID: jr.TeamID, Title: title, Status: StatusApproved, PickupEnabled: true,
			MachineIP: jr.MachineIP, MachineName: jr.MachineName, LLMVersion: jr.LLMVersion, Email: jr.Email,
			OSName: jr.OSName, OSVersion: jr.OSVersion, RAMBytes: jr.RAMBytes, StorageBytes: jr.StorageBytes,
			StorageType: jr.StorageType, AdapterType: jr.AdapterType, JoinedVia: "invite",
		}
		res, err := tx.NewInsert().Model(a).On("CONFLICT (org_id, id) DO NOTHING").Returning("*").Exec(ctx)
		if err != nil {
			return translate(err, "create agent")
		}
		out = &Approval{Request: jr, Agent: a}
		audits := NewAudits(org, by)
		if n, _ := res.RowsAffected(); n == 1 {
			audits.Add("agent.created", "agent", a.ID, map[string]any{
				"via": "invite", "joinRequestId": jr.ID.String(), "teamId": a.TeamID.String(), "title": a.Title})
			err = Publish(ctx, tx, Event{Org: org, Kind: EventAgentList})
		} else {
			err = reregister(ctx, tx, out, audits)
		}
		if err != nil {
			return err
		}
		audits.Add("join_request.approved", "join_request", jr.ID.String(),
			map[string]any{"agentName": jr.AgentName, "inviteId": jr.InviteID.String(), "reregistered": out.Reregistered})
		// One statement binds the request to the agent row (not its name) and
		// writes the audit events.
		jr.AgentUID = &out.Agent.UID
		_, err = tx.NewUpdate().With("audit", audits.Query(tx)).Model(jr).Set("agent_uid = ?", out.Agent.UID).WherePK().Exec(ctx)
		if err != nil {
			return translate(err, "bind join request to its agent")
		}
		return Publish(ctx, tx, Event{Org: org, Kind: EventJoinRequest, ID: jr.ID.String()})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// reregister keeps the existing agent of an approval when an earlier approved
// request of the same invite produced it, and revokes its invite-issued keys.
// Its audit event joins audits.
func reregister(ctx context.Context, tx bun.Tx, ap *Approval, audits *Audits) error {
	jr := ap.Request
	same, err := tx.NewSelect().Model((*JoinRequest)(nil)).
		Where("invite_id = ? AND agent_id = ? AND status = ? AND id <> ?", jr.InviteID, jr.AgentName, JoinApproved, jr.ID).Exists(ctx)
	if err != nil {
		return translate(err, "check re-registration")
	}
	if !same {
		return Conflict("name_taken", "an agent with this name already exists in the organization; reject this request",
			map[string]any{"agentName": jr.AgentName})
	}
	a, err := GetAgent(ctx, tx, jr.OrgID, jr.AgentName)
	if err != nil {
		return err
	}
	n, err := revokeInviteKeys(ctx, tx, jr.OrgID, a.ID)
	if err != nil {
		return err
	}
	// An earlier approved request that was never claimed is superseded too:
	// only the newest registration gets a key.
	if _, err := tx.NewUpdate().Model((*JoinRequest)(nil)).Set("claim_voided_at = now()").
		Where("org_id = ? AND agent_id = ? AND id <> ? AND status = ? AND claimed_at IS NULL AND claim_voided_at IS NULL", jr.OrgID, a.ID, jr.ID, JoinApproved).
		Exec(ctx); err != nil {
		return translate(err, "void superseded claims")
	}
	ap.Agent, ap.Reregistered, ap.RevokedKeys = a, true, n
	audits.Add("agent.reregistered", "agent", a.ID, map[string]any{"joinRequestId": jr.ID.String(), "revokedKeys": n})
	return Publish(ctx, tx, Event{Org: jr.OrgID, Kind: EventAgent, ID: a.ID})
}

// RejectJoinRequest marks a pending request rejected; the invite's use stays
// consumed. With revokeInvite the invite is revoked too. It returns
// ErrNotFound when the request is not in org and a 409 join_request_decided
// when it was already decided.
func RejectJoinRequest(ctx context.Context, db bun.IDB, org, id uuid.UUID, revokeInvite bool, by Actor) (*JoinRequest, error) {
	var out *JoinRequest
	err := InTx(ctx, db, func(tx bun.Tx) error {
		jr, err := decide(ctx, tx, org, id, JoinRejected, by)
		if err != nil {
			return err
		}
		out = jr
		audits := NewAudits(org, by)
		audits.Add("join_request.rejected", "join_request", jr.ID.String(),
			map[string]any{"agentName": jr.AgentName, "inviteId": jr.InviteID.String(), "revokeInvite": revokeInvite})
		if revokeInvite {
			res, err := tx.NewUpdate().Model((*Invite)(nil)).Set("revoked_at = now()").
				Where("org_id = ? AND id = ? AND revoked_at IS NULL", org, jr.InviteID).Exec(ctx)
			if err != nil {
				return translate(err, "revoke invite")
			}
			if n, _ := res.RowsAffected(); n == 1 {
				audits.Add("invite.deleted", "invite", jr.InviteID.String(),
					map[string]any{"agentName": jr.AgentName, "joinRequestId": jr.ID.String()})
			}
			if err := Publish(ctx, tx, Event{Org: org, Kind: EventInvite, ID: jr.InviteID.String()}); err != nil {
				return err
			}
		}
		if err := audits.Write(ctx, tx); err != nil {
			return err
		}
		return Publish(ctx, tx, Event{Org: org, Kind: EventJoinRequest, ID: jr.ID.String()})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ErrBadClaim is the answer to an unknown request id or a wrong claim secret:
// the two are not told apart.
var ErrBadClaim = &StateError{Kind: ErrUnauthorized, Code: "invalid_claim_secret", Message: "unknown join request or wrong claim secret"}

// errAgentDeleted answers a claim whose agent was deleted after approval.
func errAgentDeleted() error {
	return Gone("agent_deleted", "the agent of this join request was deleted; its claim is void")
}

// Claimed is the outcome of a claim: Pending, or the key issued now.
type Claimed struct {
	Request *JoinRequest
	Pending bool
	Key     *APIKey
	RawKey  string // shown this once
}

// unknownClaimHash stands in for the stored hash of an unknown request so both paths compare.
var unknownClaimHash = Hash("no such join request")

// ClaimJoinRequest exchanges the claim secret of request id for its API key.
// The secret is the server-issued one or, when the runtime joined with a
// clientSecret, only that. While the request is pending it answers Pending;
// once approved it issues a key bound to the request's agent row exactly once
// (a conditional UPDATE on claimed_at), later claims are a 409
// already_claimed; a rejected request is a 403 join_request_rejected; a
// request whose agent was deleted is a 410 agent_deleted, for good, even when
// an agent of the same name exists again. An unknown id or a wrong secret is
// ErrBadClaim (401); an expired secret a 401 claim_expired.
func ClaimJoinRequest(ctx context.Context, db bun.IDB, id uuid.UUID, secret string, by Actor) (*Claimed, error) {
	jr := new(JoinRequest)
	err := db.NewSelect().Model(jr).Where("id = ?", id).Scan(ctx)
	stored := jr.ClaimSecretHash
	if errors.Is(err, sql.ErrNoRows) {
		stored = unknownClaimHash
	} else if err != nil {
		return nil, translate(err, "find join request")
	}
	if !SecretEqual(Hash(secret), stored) || err != nil {
		return nil, ErrBadClaim
	}
	if jr.ClaimVoidedAt != nil && jr.AgentUID != nil {
		alive, err := db.NewSelect().Model((*Agent)(nil)).Where("org_id = ? AND uid = ?", jr.OrgID, *jr.AgentUID).Exists(ctx)
		if err != nil {
			return nil, translate(err, "find agent")
		}
		if alive {
			return nil, Gone("claim_superseded", "a later join request of the same invite re-registered this agent; this claim is void")
		}
	}
	if err := claimState(jr); err != nil {
		return nil, err
	}
	if jr.Status == JoinPending {
		return &Claimed{Request: jr, Pending: true}, nil
	}
	out := &Claimed{Request: jr}
	err = InTx(ctx, db, func(tx bun.Tx) error {
		// The claim also reads the team of the agent row it is bound to. An
		// agent's deletion voids its claims first (the same row lock), so an
		// agent found here stays until this commits.
		claimed := new(claimedRequest)
		err := tx.NewUpdate().Model(claimed).Set("claimed_at = now()").
			Where("id = ? AND status = ? AND claimed_at IS NULL AND claim_voided_at IS NULL AND claim_expires_at > now()", id, JoinApproved).
			Where("claim_secret_hash = ?", stored). // a re-issue since the read voids the old secret
			Returning("*, (SELECT a.team_id FROM agents AS a WHERE a.org_id = ?TableAlias.org_id AND a.id = ?TableAlias.agent_id AND a.uid = ?TableAlias.agent_uid) AS agent_team_id").
			Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			// Someone changed it since the read above: say what.
			cur := new(JoinRequest)
			if err := tx.NewSelect().Model(cur).Where("id = ?", id).Scan(ctx); err != nil {
				return translate(err, "find join request")
			}
			if !SecretEqual(cur.ClaimSecretHash, stored) {
				return ErrBadClaim
			}
			if err := claimState(cur); err != nil {
				return err
			}
			return Conflict("already_claimed", "the API key of this join request was already claimed", nil)
		}
		if err != nil {
			return translate(err, "claim join request")
		}
		*jr = claimed.JoinRequest
		if claimed.AgentTeamID == nil {
			return errAgentDeleted()
		}
		out.Key, out.RawKey, err = issueAgentKey(ctx, tx, jr.OrgID, *claimed.AgentTeamID, *jr.AgentID, jr.ID, by)
		var ve *ValidationError
		if errors.As(err, &ve) && ve.Fields["reference"] != "" {
			return errAgentDeleted() // deleted after the UPDATE read it: the key's reference to it fails
		}
		if err != nil {
			return err
		}
		return Publish(ctx, tx, Event{Org: jr.OrgID, Kind: EventJoinRequest, ID: jr.ID.String()})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// claimState is the refusal of a claim (its secret checked) for the state of
// jr, or nil when a pending answer or a key may follow.
func claimState(jr *JoinRequest) error {
	switch {
	case jr.Status == JoinRejected:
		return Forbidden("join_request_rejected", "this join request was rejected")
	case jr.ClaimVoidedAt != nil:
		return errAgentDeleted()
	case jr.ClaimedAt != nil:
		return Conflict("already_claimed", "the API key of this join request was already claimed", nil)
	case !time.Now().Before(jr.ClaimExpiresAt):
		return &StateError{Kind: ErrUnauthorized, Code: "claim_expired",
			Message: "this claim secret has expired (after 7 days); ask an operator of the organization to re-issue the claim"}
	}
	return nil
}

// claimedRequest is a join request as its claim returns it, with the team of
// its agent (nil when the agent is gone).
type claimedRequest struct {
	JoinRequest `bun:",extend"`
	AgentTeamID *uuid.UUID `bun:"agent_team_id,scanonly"`
}

// ReissueClaim gives an approved, unclaimed join request of org a new random
// claim secret, returned this once for the operator to hand over, and a new
// 7-day claim window: the way on after the window closed or the runtime lost
// its secret. The old secret and any clientSecret stop working. It is audited
// as join_request.claim_reissued. It returns ErrNotFound when the request is
// not in org, a 409 join_request_pending (approve it first),
// join_request_rejected or already_claimed, and a 410 agent_deleted.
func ReissueClaim(ctx context.Context, db bun.IDB, org, id uuid.UUID, by Actor) (*Joined, error) {
	secret := NewClaimSecret()
	jr := new(JoinRequest)
	err := InTx(ctx, db, func(tx bun.Tx) error {
		audits := NewAudits(org, by)
		audits.Add("join_request.claim_reissued", "join_request", id.String(), nil)
		err := tx.NewUpdate().With("audit", audits.Query(tx)).Model(jr).
			Set("claim_secret_hash = ?", Hash(secret)).Set("client_secret = false").
			Set("claim_expires_at = ?", time.Now().Add(ClaimTTL)).
			Where("org_id = ? AND id = ? AND status = ? AND claimed_at IS NULL AND claim_voided_at IS NULL", org, id, JoinApproved).
			Returning("*").Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			cur, err := GetJoinRequest(ctx, tx, org, id)
			if err != nil {
				return err
			}
			switch {
			case cur.Status == JoinPending:
				return Conflict("join_request_pending", "this join request awaits a decision; its runtime's secret still works, approve it first", nil)
			case cur.Status == JoinRejected:
				return Conflict("join_request_rejected", "this join request was rejected", nil)
			case cur.ClaimVoidedAt != nil:
				return errAgentDeleted()
			}
			return Conflict("already_claimed", "the API key of this join request was already claimed", nil)
		}
		if err != nil {
			return translate(err, "re-issue claim")
		}
		return Publish(ctx, tx, Event{Org: org, Kind: EventJoinRequest, ID: id.String()})
	})
	if err != nil {
		return nil, err
	}
	return &Joined{Request: jr, ClaimSecret: secret}, nil
}

// voidClaims voids the unclaimed approved requests bound to agent id of org,
// before the agent is deleted: a claim holds the request's row lock until its
// key exists, so the void waits for it (and the key goes with the agent) or
// the claim sees the void. It returns how many were voided.
func voidClaims(ctx context.Context, tx bun.Tx, org uuid.UUID, id string) (int64, error) {
	res, err := tx.NewUpdate().Model((*JoinRequest)(nil)).Set("claim_voided_at = now()").
		Where("org_id = ? AND agent_id = ? AND status = ? AND claimed_at IS NULL AND claim_voided_at IS NULL", org, id, JoinApproved).
		Exec(ctx)
	if err != nil {
		return 0, translate(err, "void claims")
	}
	return res.RowsAffected()
}
