package handlers

import (
	"time"

	"github.com/google/uuid"

	"github.com/agentroster/agentroster/models"
)

// apiTime is a time on the wire: RFC 3339 in UTC with second precision
// ("2026-05-02T10:14:22Z"), the form the seed documents.
type apiTime time.Time

func (t apiTime) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format(time.RFC3339) + `"`), nil
}

func optAPITime(t *time.Time) *apiTime {
	if t == nil {
		return nil
	}
	v := apiTime(*t)
	return &v
}

// agentSummary is what runtimes see of an agent: the register answer of the
// seed (telemetry only when reported), plus lastSeenAt once there is one.
type agentSummary struct {
	ID                 string   `json:"id"`
	Title              string   `json:"title"`
	Status             string   `json:"status"`
	AgentPickupEnabled bool     `json:"agentPickupEnabled"`
	IsOnline           bool     `json:"isOnline"`
	LastSeenAt         *apiTime `json:"lastSeenAt,omitempty"`
	models.Telemetry
	CreatedAt apiTime `json:"createdAt"`
}

func (h *Handler) summary(a *models.Agent) agentSummary {
	return agentSummary{
		ID: a.ID, Title: a.Title, Status: a.Status, AgentPickupEnabled: a.PickupEnabled,
		IsOnline: a.EffectiveOnline(time.Now(), h.cfg.PresenceWindow), LastSeenAt: optAPITime(a.LastSeenAt),
		Telemetry: a.Telemetry(), CreatedAt: apiTime(a.CreatedAt),
	}
}

// agentDetail is the management view of an agent, private fields included.
type agentDetail struct {
	ID                 string    `json:"id"`
	OrgID              uuid.UUID `json:"orgId"`
	TeamID             uuid.UUID `json:"teamId"`
	Title              string    `json:"title"`
	Status             string    `json:"status"`
	AgentPickupEnabled bool      `json:"agentPickupEnabled"`
	IsOnline           bool      `json:"isOnline"`
	OnlineFlag         bool      `json:"onlineFlag"`
	LastSeenAt         *apiTime  `json:"lastSeenAt"`
	MachineIP          string    `json:"machineIp"`
	MachineName        string    `json:"machineName"`
	LLMVersion         string    `json:"llmVersion"`
	Email              string    `json:"email"`
	OSName             *string   `json:"osName"`
	OSVersion          *string   `json:"osVersion"`
	RAMBytes           *int64    `json:"ramBytes"`
	StorageBytes       *int64    `json:"storageBytes"`
	StorageType        *string   `json:"storageType"`
	AdapterType        string    `json:"adapterType"`
	JoinedVia          string    `json:"joinedVia"`
	CreatedAt          apiTime   `json:"createdAt"`
}

func (h *Handler) detail(a *models.Agent) agentDetail {
	return agentDetail{
		ID: a.ID, OrgID: a.OrgID, TeamID: a.TeamID, Title: a.Title, Status: a.Status,
		AgentPickupEnabled: a.PickupEnabled, IsOnline: a.EffectiveOnline(time.Now(), h.cfg.PresenceWindow),
		OnlineFlag: a.IsOnline, LastSeenAt: optAPITime(a.LastSeenAt),
		MachineIP: a.MachineIP, MachineName: a.MachineName, LLMVersion: a.LLMVersion, Email: a.Email,
		OSName: a.OSName, OSVersion: a.OSVersion, RAMBytes: a.RAMBytes, StorageBytes: a.StorageBytes,
		StorageType: a.StorageType, AdapterType: a.AdapterType, JoinedVia: a.JoinedVia, CreatedAt: apiTime(a.CreatedAt),
	}
}

// keyJSON is an API key on the wire (never its hash); RawKey only in the
// answer that creates it.
type keyJSON struct {
	ID         uuid.UUID `json:"id"`
	Name       string    `json:"name"`
	Prefix     string    `json:"prefix"`
	RawKey     string    `json:"rawKey,omitempty"`
	OrgID      uuid.UUID `json:"orgId"`
	TeamID     uuid.UUID `json:"teamId"`
	AgentID    *string   `json:"agentId"`
	CreatedAt  apiTime   `json:"createdAt"`
	ExpiresAt  *apiTime  `json:"expiresAt"`
	LastUsedAt *apiTime  `json:"lastUsedAt"`
	IsActive   bool      `json:"isActive"`
	RevokedAt  *apiTime  `json:"revokedAt"`
	State      string    `json:"state"`
}

func toKeyJSON(k *models.APIKey, raw string) keyJSON {
	return keyJSON{
		ID: k.ID, Name: k.Name, Prefix: k.Prefix, RawKey: raw, OrgID: k.OrgID, TeamID: k.TeamID, AgentID: k.AgentID,
		CreatedAt: apiTime(k.CreatedAt), ExpiresAt: optAPITime(k.ExpiresAt), LastUsedAt: optAPITime(k.LastUsedAt),
		IsActive: k.IsActive, RevokedAt: optAPITime(k.RevokedAt), State: k.State(time.Now()),
	}
}
