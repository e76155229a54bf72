package models

import (
	"context"
	"regexp"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
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
