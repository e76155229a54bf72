package models

import (
	"context"
	"database/sql"
	"errors"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// Agent statuses (see the state machine in SPEC §5).
const (
	StatusPending  = "pending"
	StatusApproved = "approved"
	StatusStopped  = "stopped"
)

// AdapterTypes are the transports a runtime can declare.
var AdapterTypes = []string{"http", "webhook", "mcp", "custom"}

// ValidAdapterType reports whether t is one of AdapterTypes.
func ValidAdapterType(t string) bool {
	for _, a := range AdapterTypes {
		if a == t {
			return true
		}
	}
	return false
}

var agentIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// reservedAgentIDs are names of HTML sub-routes under /agents.
var reservedAgentIDs = map[string]bool{"invites": true, "join-requests": true, "new": true, "events": true, "bulk": true}

// ValidAgentID reports whether id is a usable agent id.
func ValidAgentID(id string) bool { return agentIDRE.MatchString(id) && !reservedAgentIDs[id] }

// AgentIDRule describes ValidAgentID for error messages.
const AgentIDRule = "must be 1-63 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit, and not a reserved name"

// Agent is a runtime's identity in an org.
type Agent struct {
	bun.BaseModel `bun:"table:agents"`

	OrgID         uuid.UUID  `bun:"org_id,pk,type:uuid"`
	ID            string     `bun:"id,pk"`
	UID           uuid.UUID  `bun:"uid,type:uuid,nullzero"` // this row's identity: a later agent of the same id has another
	TeamID        uuid.UUID  `bun:"team_id,type:uuid"`
	Title         string     `bun:"title"`
	Status        string     `bun:"status"`
	PickupEnabled bool       `bun:"pickup_enabled"`
	IsOnline      bool       `bun:"is_online"`
	LastSeenAt    *time.Time `bun:"last_seen_at"`
	MachineIP     string     `bun:"machine_ip"`
	MachineName   string     `bun:"machine_name"`
	LLMVersion    string     `bun:"llm_version"`
	Email         string     `bun:"email"`
	OSName        *string    `bun:"os_name"`
	OSVersion     *string    `bun:"os_version"`
	RAMBytes      *int64     `bun:"ram_bytes"`
	StorageBytes  *int64     `bun:"storage_bytes"`
	StorageType   *string    `bun:"storage_type"`
	AdapterType   string     `bun:"adapter_type"`
	JoinedVia     string     `bun:"joined_via"`
	CreatedAt     time.Time  `bun:"created_at,nullzero,default:now()"`
}

// Telemetry is what a runtime may report about its machine; every field is optional.
type Telemetry struct {
	OSName       *string `json:"osName,omitempty"`
	OSVersion    *string `json:"osVersion,omitempty"`
	RAMBytes     *int64  `json:"ramBytes,omitempty"`
	StorageBytes *int64  `json:"storageBytes,omitempty"`
	StorageType  *string `json:"storageType,omitempty"`
}

// insertAgent adds a new agent row. An id already used in the org is ErrConflict.
func insertAgent(ctx context.Context, db bun.IDB, a *Agent) error {
	_, err := db.NewInsert().Model(a).Returning("*").Exec(ctx)
	return translate(err, "create agent")
}

// GetAgent returns an agent of org, or ErrNotFound.
func GetAgent(ctx context.Context, db bun.IDB, org uuid.UUID, id string) (*Agent, error) {
	a := new(Agent)
	err := db.NewSelect().Model(a).Where("org_id = ? AND id = ?", org, id).Scan(ctx)
	return a, translate(err, "get agent")
}

// PresenceWindowDefault is how long after its last contact an online agent
// still shows online when the deployment does not configure it.
const PresenceWindowDefault = 2 * time.Minute

// touchEvery bounds how often an agent's last_seen_at is written.
const touchEvery = 15 * time.Second

// EffectiveOnline is presence as operators and runtimes see it: the agent said
// it is online and has been heard from within window.
func (a *Agent) EffectiveOnline(now time.Time, window time.Duration) bool {
	return a.IsOnline && a.LastSeenAt != nil && now.Sub(*a.LastSeenAt) < window
}

// Fresh reports whether the agent was heard from so recently (15 s) that its
// last contact need not be written again.
func (a *Agent) Fresh(now time.Time) bool {
	return a.LastSeenAt != nil && now.Sub(*a.LastSeenAt) < touchEvery
}

// Telemetry returns the machine telemetry the agent reported.
func (a *Agent) Telemetry() Telemetry {
	return Telemetry{OSName: a.OSName, OSVersion: a.OSVersion, RAMBytes: a.RAMBytes, StorageBytes: a.StorageBytes, StorageType: a.StorageType}
}

// RegisterInput is what a runtime declares when it registers an agent.
type RegisterInput struct {
	ID          string
	Title       string
	MachineIP   string
	MachineName string
	LLMVersion  string
	Email       string
	AdapterType string
	Telemetry
}

// optText checks an optional single-line text field.
func optText(v *Validator, field, s string, max int) {
	v.Check(utf8.RuneCountInString(s) <= max, field, "is too long")
	v.Check(utf8.ValidString(s) && !strings.ContainsAny(s, "\x00\r\n"), field, "must be one line of text")
}

func optPtrText(v *Validator, field string, s *string, max int) {
	if s != nil {
		optText(v, field, *s, max)
	}
}

// Validate checks the declaration and fills defaults (title from id, adapter http).
func (in *RegisterInput) Validate() error {
	in.ID, in.Title = strings.TrimSpace(in.ID), cleanText(in.Title)
	in.MachineIP, in.MachineName = strings.TrimSpace(in.MachineIP), cleanText(in.MachineName)
	in.LLMVersion, in.Email = cleanText(in.LLMVersion), strings.TrimSpace(in.Email)
	if in.AdapterType == "" {
		in.AdapterType = "http"
	}
	var v Validator
	v.Check(in.ID != "", "id", "is required")
	v.Check(in.ID == "" || ValidAgentID(in.ID), "id", AgentIDRule)
	optText(&v, "title", in.Title, 200)
	if in.MachineIP != "" {
		_, err := netip.ParseAddr(in.MachineIP)
		v.Check(err == nil, "machineIp", "must be an IPv4 or IPv6 address")
	}
	optText(&v, "machineName", in.MachineName, 255)
	optText(&v, "llmVersion", in.LLMVersion, 100)
	// Any single line: runtimes send what their host reports, not always an address.
	optText(&v, "email", in.Email, 254)
	v.Check(ValidAdapterType(in.AdapterType), "adapterType", "must be one of http, webhook, mcp, custom")
	optPtrText(&v, "osName", in.OSName, 100)
	optPtrText(&v, "osVersion", in.OSVersion, 100)
	optPtrText(&v, "storageType", in.StorageType, 32)
	v.Check(in.RAMBytes == nil || *in.RAMBytes >= 0, "ramBytes", "must not be negative")
	v.Check(in.StorageBytes == nil || *in.StorageBytes >= 0, "storageBytes", "must not be negative")
	if in.Title == "" {
		in.Title = in.ID
	}
	return v.Err()
}

// RegisterAgent creates a pending agent (pickup off) in a team of org. An id
// already used in the org is a 409 agent_exists; an id an active invite
// reserves, or a pending join request waits for, is a 409
// name_reserved_by_invite (agents and invites share one name space). The caller announces the
// new agent (EventAgentList) once this returns: registrations are frequent,
// and notifying inside the transaction would make them commit one at a time.
func RegisterAgent(ctx context.Context, db bun.IDB, org, team uuid.UUID, in RegisterInput, by Actor) (*Agent, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	a := &Agent{
		OrgID: org, ID: in.ID, TeamID: team, Title: in.Title, Status: StatusPending,
		MachineIP: in.MachineIP, MachineName: in.MachineName, LLMVersion: in.LLMVersion, Email: in.Email,
		OSName: in.OSName, OSVersion: in.OSVersion, RAMBytes: in.RAMBytes, StorageBytes: in.StorageBytes,
		StorageType: in.StorageType, AdapterType: in.AdapterType, JoinedVia: "register",
	}
	err := InTx(ctx, db, func(tx bun.Tx) error {
		// The invite name lock orders this against invite creation: one of the
		// two sees the other's row.
		if err := lockInviteNames(ctx, tx, org, []string{in.ID}); err != nil {
			return err
		}
		if err := checkNameReserved(ctx, tx, org, in.ID); err != nil {
			return err
		}
		if err := insertAgent(ctx, tx, a); err != nil {
			return err
		}
		if err := Audit(ctx, tx, org, by, "agent.registered", "agent", a.ID, map[string]any{"teamId": team.String(), "title": a.Title}); err != nil {
			return err
		}
		if err := EnqueueNotification(ctx, tx, org, NotifyAgentPending,
			map[string]any{"agentId": a.ID, "title": a.Title, "teamId": team.String(), "path": "/agents/" + a.ID}); err != nil {
			return err
		}
		return nil
	})
	var se *StateError
	if errors.Is(err, ErrConflict) && !errors.As(err, &se) {
		return nil, Conflict("agent_exists", "an agent with this id already exists in the organization", map[string]any{"id": in.ID})
	}
	if err != nil {
		return nil, err
	}
	return a, nil
}

// checkNameReserved is the 409 name_reserved_by_invite when an active invite
// of org reserves name or a pending join request of org waits for it (its
// approval would create the agent). One statement reads both, so a join that
// uses an invite's last use is seen one way or the other. The caller holds the
// name's invite lock.
func checkNameReserved(ctx context.Context, tx bun.Tx, org uuid.UUID, name string) error {
	invite := tx.NewSelect().Model((*Invite)(nil)).ColumnExpr("1").
		Where("org_id = ? AND agent_name = ? AND revoked_at IS NULL AND uses < max_uses AND expires_at > now()", org, name)
	pending := tx.NewSelect().Model((*JoinRequest)(nil)).ColumnExpr("1").
		Where("org_id = ? AND agent_name = ? AND status = ?", org, name, JoinPending)
	var reserved bool
	if err := tx.NewSelect().ColumnExpr("EXISTS (?) OR EXISTS (?)", invite, pending).Scan(ctx, &reserved); err != nil {
		return translate(err, "check name reservation")
	}
	if reserved {
		return Conflict("name_reserved_by_invite", "an invite of the organization reserves this agent name",
			map[string]any{"id": name})
	}
	return nil
}

// Agent actions on the status state machine (SPEC §5).
const (
	ActionApprove = "approve"
	ActionStop    = "stop"
	ActionResume  = "resume"
)

type transition struct {
	from   []string
	to     string
	pickup bool
	event  string
}

var transitions = map[string]transition{
	ActionApprove: {from: []string{StatusPending, StatusStopped}, to: StatusApproved, pickup: true, event: "agent.approved"},
	ActionStop:    {from: []string{StatusApproved}, to: StatusStopped, pickup: false, event: "agent.stopped"},
	ActionResume:  {from: []string{StatusStopped}, to: StatusApproved, pickup: true, event: "agent.resumed"},
}

// Allowed reports whether action may be applied to an agent in status.
func Allowed(status, action string) bool {
	t, ok := transitions[action]
	return ok && slices.Contains(t.from, status)
}

// invalidTransition is the 409 for an action the current status refuses.
func invalidTransition(status, action string) error {
	return Conflict("invalid_transition", "cannot "+action+" an agent that is "+status,
		map[string]any{"status": status, "action": action})
}

// agentStatus returns the current status of an agent, or ErrNotFound.
func agentStatus(ctx context.Context, db bun.IDB, org uuid.UUID, id string) (string, error) {
	var status string
	err := db.NewSelect().Model((*Agent)(nil)).Column("status").Where("org_id = ? AND id = ?", org, id).Scan(ctx, &status)
	return status, translate(err, "get agent status")
}

// TransitionAgent applies approve, stop or resume in one conditional UPDATE.
// Stop also forces presence off; approve and resume turn pickup on, stop turns
// it off; resume leaves the agent offline. It returns ErrNotFound when the
// agent is not in org and a 409 invalid_transition (with the current status)
// when its status does not allow the action.
func TransitionAgent(ctx context.Context, db bun.IDB, org uuid.UUID, id, action string, by Actor) (*Agent, error) {
	t, ok := transitions[action]
	if !ok {
		return nil, Invalid("action", "must be approve, stop or resume")
	}
	a := new(Agent)
	err := InTx(ctx, db, func(tx bun.Tx) error {
		err := tx.NewUpdate().Model(a).
			Set("status = ?", t.to).Set("pickup_enabled = ?", t.pickup).Set("is_online = false").
			Where("org_id = ? AND id = ? AND status = ANY(?)", org, id, pgdialect.Array(t.from)).
			Returning("*").Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			status, err := agentStatus(ctx, tx, org, id)
			if err != nil {
				return err
			}
			return invalidTransition(status, action)
		}
		if err != nil {
			return translate(err, action+" agent")
		}
		return auditAgent(ctx, tx, org, by, t.event, id, map[string]any{"status": t.to})
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// auditAgent records an agent change and tells every server process that the
// agent's row changed, both in the caller's transaction.
func auditAgent(ctx context.Context, tx bun.IDB, org uuid.UUID, by Actor, action, id string, details map[string]any) error {
	if err := Audit(ctx, tx, org, by, action, "agent", id, details); err != nil {
		return err
	}
	return Publish(ctx, tx, Event{Org: org, Kind: EventAgent, ID: id})
}

// notApproved is the refusal of a runtime action for an agent in status.
func notApproved(status, action string) error {
	details := map[string]any{"status": status, "action": action}
	if status == StatusStopped {
		return &StateError{Kind: ErrForbidden, Code: "agent_stopped", Message: "agent stopped", Details: details}
	}
	return Conflict("agent_not_approved", "agent is not approved yet", details)
}

// CheckActive refuses runtime actions of an agent that is not approved:
// 403 agent_stopped for a stopped agent, 409 agent_not_approved for a pending one.
func CheckActive(a *Agent, action string) error {
	if a.Status == StatusApproved {
		return nil
	}
	return notApproved(a.Status, action)
}

// touchInterval is touchEvery as a PostgreSQL interval.
const touchInterval = "15 seconds"

// DeleteAgent removes an agent; its bound keys and grants go with it (foreign
// key cascade) and the audit log keeps its id. The unclaimed approved join
// requests of the agent are voided first, for good. It returns ErrNotFound
// when the agent is not in org.
func DeleteAgent(ctx context.Context, db bun.IDB, org uuid.UUID, id string, by Actor) error {
	return InTx(ctx, db, func(tx bun.Tx) error {
		voided, err := voidClaims(ctx, tx, org, id)
		if err != nil {
			return err
		}
		a := new(Agent)
		err = tx.NewDelete().Model(a).Where("org_id = ? AND id = ?", org, id).Returning("status, title").Scan(ctx)
		if err != nil {
			return translate(err, "delete agent")
		}
		details := map[string]any{"status": a.Status, "title": a.Title}
		if voided > 0 {
			details["voidedClaims"] = voided
		}
		if err := auditAgent(ctx, tx, org, by, "agent.deleted", id, details); err != nil {
			return err
		}
		return Publish(ctx, tx, Event{Org: org, Kind: EventAgentList, ID: id})
	})
}

// SetAgentPickup turns card pickup on (approved agents only) or off. Asking
// for the current value changes nothing and writes no event. It returns
// ErrNotFound, or a 409 invalid_transition when enabling a non-approved agent.
func SetAgentPickup(ctx context.Context, db bun.IDB, org uuid.UUID, id string, enabled bool, by Actor) (*Agent, error) {
	a := new(Agent)
	err := InTx(ctx, db, func(tx bun.Tx) error {
		q := tx.NewUpdate().Model(a).Set("pickup_enabled = ?", enabled).
			Where("org_id = ? AND id = ? AND pickup_enabled = ?", org, id, !enabled)
		if enabled {
			q.Where("status = ?", StatusApproved)
		}
		err := q.Returning("*").Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			if err := tx.NewSelect().Model(a).Where("org_id = ? AND id = ?", org, id).Scan(ctx); err != nil {
				return translate(err, "get agent")
			}
			if a.PickupEnabled == enabled {
				return nil
			}
			return invalidTransition(a.Status, "pickup")
		}
		if err != nil {
			return translate(err, "set agent pickup")
		}
		return auditAgent(ctx, tx, org, by, "agent.pickup_changed", id, map[string]any{"enabled": enabled})
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// AgentCursor is a position in the roster order (newest first).
type AgentCursor struct {
	CreatedAt time.Time
	ID        string
}

// String encodes the cursor for a URL: "<RFC 3339 with microseconds>,<id>".
func (c AgentCursor) String() string {
	return c.CreatedAt.UTC().Format("2006-01-02T15:04:05.000000Z07:00") + "," + c.ID
}

// ParseAgentCursor decodes AgentCursor.String.
func ParseAgentCursor(s string) (AgentCursor, error) {
	ts, id, ok := strings.Cut(s, ",")
	t, err := time.Parse(time.RFC3339Nano, ts)
	if !ok || err != nil || !agentIDRE.MatchString(id) {
		return AgentCursor{}, Invalid("after", "is not a valid page cursor")
	}
	return AgentCursor{CreatedAt: t, ID: id}, nil
}

// AgentFilter narrows the roster. Zero values match everything.
type AgentFilter struct {
	Org      uuid.UUID
	Status   string        // pending, approved or stopped
	Presence string        // online or offline (effective presence)
	Team     uuid.UUID     // uuid.Nil: every team
	Query    string        // id prefix or title substring, case-insensitive
	After    *AgentCursor  // keyset: agents after this position
	Limit    int           // default 50, at most 500
	Window   time.Duration // presence window (default PresenceWindowDefault)
}

// Validate checks the filter's enumerations.
func (f *AgentFilter) Validate() error {
	var v Validator
	v.Check(f.Status == "" || f.Status == StatusPending || f.Status == StatusApproved || f.Status == StatusStopped, "status", "must be pending, approved or stopped")
	v.Check(f.Presence == "" || f.Presence == "online" || f.Presence == "offline", "presence", "must be online or offline")
	v.Check(utf8.RuneCountInString(f.Query) <= 100, "q", "is too long")
	return v.Err()
}

// escapeLike escapes the LIKE wildcards of s (the escape character is \).
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// ListAgents returns one page of an org's agents, newest first, and the cursor
// of the next page (nil on the last page). It reads at most Limit+1 rows along
// agents_roster_idx (or a narrower index for a status or team filter).
func ListAgents(ctx context.Context, db bun.IDB, f AgentFilter) ([]Agent, *AgentCursor, error) {
	if err := f.Validate(); err != nil {
		return nil, nil, err
	}
	if f.Limit <= 0 {
		f.Limit = 50
	}
	f.Limit = min(f.Limit, 500)
	if f.Window <= 0 {
		f.Window = PresenceWindowDefault
	}
	var agents []Agent
	q := db.NewSelect().Model(&agents).Where("org_id = ?", f.Org).
		OrderExpr("created_at DESC, id DESC").Limit(int64(f.Limit + 1))
	if f.Status != "" {
		q.Where("status = ?", f.Status)
	}
	if f.Team != uuid.Nil {
		q.Where("team_id = ?", f.Team)
	}
	online := "is_online AND last_seen_at > now() - make_interval(secs => ?)"
	switch f.Presence {
	case "online":
		q.Where(online, f.Window.Seconds())
	case "offline":
		q.Where("NOT ("+online+")", f.Window.Seconds())
	}
	if s := strings.TrimSpace(f.Query); s != "" {
		e := escapeLike(s)
		q.WhereGroup(" AND ", func(q *bun.SelectQuery) *bun.SelectQuery {
			return q.Where(`id LIKE ? ESCAPE '\'`, strings.ToLower(e)+"%").WhereOr(`title ILIKE ? ESCAPE '\'`, "%"+e+"%")
		})
	}
	if f.After != nil {
		q.Where("(created_at, id) < (?, ?)", f.After.CreatedAt, f.After.ID)
	}
	if err := q.Scan(ctx); err != nil {
		return nil, nil, translate(err, "list agents")
	}
	var next *AgentCursor
	if len(agents) > f.Limit {
		agents = agents[:f.Limit]
		last := agents[len(agents)-1]
		next = &AgentCursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	return agents, next, nil
}

// TeamOrg returns the org a team belongs to, or ErrNotFound.
func TeamOrg(ctx context.Context, db bun.IDB, team uuid.UUID) (uuid.UUID, error) {
	var org uuid.UUID
	err := db.NewSelect().Table("teams").Column("org_id").Where("id = ?", team).Scan(ctx, &org)
	return org, translate(err, "get team org")
}

// BadgeCap bounds the nav's counts: a badge shows "99+" from there, and no
// page counts ten thousand rows to draw it.
const BadgeCap = 100

// CountPendingAgents returns how many agents of org await approval, at most
// BadgeCap.
func CountPendingAgents(ctx context.Context, db bun.IDB, org uuid.UUID) (int, error) {
	var n int
	err := db.NewRaw(`SELECT count(*) FROM (SELECT 1 FROM agents WHERE org_id = ? AND status = ? LIMIT ?) AS p`,
		org, StatusPending, BadgeCap).Scan(ctx, &n)
	return n, translate(err, "count pending agents")
}

// CountPending returns, in one query, how many join requests of org await a
// decision and how many agents of org await approval (the header's badges),
// each at most BadgeCap.
func CountPending(ctx context.Context, db bun.IDB, org uuid.UUID) (joins, agents int, err error) {
	err = db.NewRaw(`SELECT (SELECT count(*) FROM (SELECT 1 FROM join_requests WHERE org_id = ?0 AND status = 'PENDING' LIMIT ?2) AS j),
		(SELECT count(*) FROM (SELECT 1 FROM agents WHERE org_id = ?0 AND status = ?1 LIMIT ?2) AS a)`, org, StatusPending, BadgeCap).Scan(ctx, &joins, &agents)
	return joins, agents, translate(err, "count pending")
}
