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

// JoinRequest is a runtime's request to join through an invite. Its claim
// secret is stored only as a SHA-256.
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
	ClaimExpiresAt  time.Time  `bun:"claim_expires_at"`
	CreatedAt       time.Time  `bun:"created_at,nullzero,default:now()"`
	DecidedAt       *time.Time `bun:"decided_at"`
	DecidedBy       *uuid.UUID `bun:"decided_by,type:uuid"`
	ClaimedAt       *time.Time `bun:"claimed_at"`
	AgentID         *string    `bun:"agent_id"`
}

// Telemetry returns the machine telemetry the runtime declared.
func (j *JoinRequest) Telemetry() Telemetry {
	return Telemetry{OSName: j.OSName, OSVersion: j.OSVersion, RAMBytes: j.RAMBytes, StorageBytes: j.StorageBytes, StorageType: j.StorageType}
}

// CountPendingJoinRequests returns how many join requests of org await a decision.
func CountPendingJoinRequests(ctx context.Context, db bun.IDB, org uuid.UUID) (int, error) {
	n, err := db.NewSelect().Table("join_requests").Where("org_id = ? AND status = 'PENDING'", org).Count(ctx)
	return int(n), translate(err, "count pending join requests")
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
	return v.Err()
}

// Joined is a created (or replayed) join request and its claim secret.
type Joined struct {
	Request     *JoinRequest
	ClaimSecret string
	Replayed    bool // an Idempotency-Key retry: the invite was not used again
}

// claimSecret is the claim secret of a join request. It is derived from the
// request's random id under the server secret, so an Idempotency-Key retry
// can answer the same secret although only its hash is stored.
func claimSecret(s *Sealer, id uuid.UUID) string {
	return ClaimSecretPrefix + s.Derive("claim secret", id.String(), 40)
}

// JoinInvite uses the invite of token once and creates a PENDING join
// request, in one transaction: the use is one conditional UPDATE, so
// concurrent joins never exceed max uses. With an idempotency key already
// used on this invite it returns that request again without using the invite.
// Errors: a ValidationError (nothing written), ErrInviteNotFound (404), 410
// invite_revoked / invite_spent / invite_expired.
func JoinInvite(ctx context.Context, db bun.IDB, s *Sealer, token string, in JoinInput, by Actor) (*Joined, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	if !IsBase62(token, InviteTokenLen) {
		return nil, ErrInviteNotFound
	}
	hash := Hash(token)
	if in.IdempotencyKey != "" {
		if j, err := replayJoin(ctx, db, s, hash, in.IdempotencyKey); j != nil || err != nil {
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
		secret := claimSecret(s, jr.ID)
		jr.ClaimSecretHash = Hash(secret)
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
		if j, rerr := replayJoin(ctx, db, s, hash, in.IdempotencyKey); j != nil || rerr != nil {
			return j, rerr
		}
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// replayJoin returns the join request made on the invite of hash with key, or nil.
func replayJoin(ctx context.Context, db bun.IDB, s *Sealer, hash []byte, key string) (*Joined, error) {
	jr := new(JoinRequest)
	err := db.NewSelect().Model(jr).
		Where("invite_id = (SELECT id FROM invites WHERE token_hash = ?) AND idempotency_key = ?", hash, key).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, translate(err, "find join request")
	}
	return &Joined{Request: jr, ClaimSecret: claimSecret(s, jr.ID), Replayed: true}, nil
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
// the name) in one transaction. When an agent of that name already exists
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
// While the request is pending it answers Pending; once approved it issues a
// key bound to the request's agent exactly once (a conditional UPDATE on
// claimed_at), later claims are a 409 already_claimed; a rejected request is a
// 403 join_request_rejected. An unknown id or a wrong secret is ErrBadClaim
// (401); an expired secret a 401 claim_expired.
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
	if !time.Now().Before(jr.ClaimExpiresAt) {
		return nil, &StateError{Kind: ErrUnauthorized, Code: "claim_expired", Message: "this claim secret has expired (after 7 days); ask for a new invite"}
	}
	switch jr.Status {
	case JoinPending:
		return &Claimed{Request: jr, Pending: true}, nil
	case JoinRejected:
		return nil, Forbidden("join_request_rejected", "this join request was rejected")
	}
	out := &Claimed{Request: jr}
	err = InTx(ctx, db, func(tx bun.Tx) error {
		// The claim also reads its agent's team: an agent deleted since
		// approval has none, and returning the error rolls the claim back.
		claimed := new(claimedRequest)
		err := tx.NewUpdate().Model(claimed).Set("claimed_at = now()").
			Where("id = ? AND status = ? AND claimed_at IS NULL AND claim_expires_at > now()", id, JoinApproved).
			Returning("*, (SELECT a.team_id FROM agents AS a WHERE a.org_id = ?TableAlias.org_id AND a.id = ?TableAlias.agent_id) AS agent_team_id").
			Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			return Conflict("already_claimed", "the API key of this join request was already claimed", nil)
		}
		if err != nil {
			return translate(err, "claim join request")
		}
		*jr = claimed.JoinRequest
		agentDeleted := Gone("agent_deleted", "the agent of this join request was deleted")
		if claimed.AgentTeamID == nil {
			return agentDeleted
		}
		out.Key, out.RawKey, err = issueAgentKey(ctx, tx, jr.OrgID, *claimed.AgentTeamID, *jr.AgentID, jr.ID, by)
		var ve *ValidationError
		if errors.As(err, &ve) && ve.Fields["reference"] != "" {
			return agentDeleted // deleted after the UPDATE read it: the key's reference to it fails
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

// claimedRequest is a join request as its claim returns it, with the team of
// its agent (nil when the agent is gone).
type claimedRequest struct {
	JoinRequest `bun:",extend"`
	AgentTeamID *uuid.UUID `bun:"agent_team_id,scanonly"`
}
