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

// agentDeclaration is what a runtime declares about an agent and its machine
// when it registers (JSON or MCP) or joins through an invite; every field is
// optional. The jsonschema descriptions show in the MCP tool's input schema.
type agentDeclaration struct {
	Title       string `json:"title,omitempty" jsonschema:"a display name"`
	MachineIP   string `json:"machineIp,omitempty"`
	MachineName string `json:"machineName,omitempty"`
	LLMVersion  string `json:"llmVersion,omitempty"`
	Email       string `json:"email,omitempty"`
	AdapterType string `json:"adapterType,omitempty" jsonschema:"the runtime's adapter type, as in the JSON register call"`
	models.Telemetry
}

// registerInput is the declaration of an agent registered under id.
func (d agentDeclaration) registerInput(id string) models.RegisterInput {
	return models.RegisterInput{
		ID: id, Title: d.Title, MachineIP: d.MachineIP, MachineName: d.MachineName,
		LLMVersion: d.LLMVersion, Email: d.Email, AdapterType: d.AdapterType, Telemetry: d.Telemetry,
	}
}

// joinInput is the declaration of a join request.
func (d agentDeclaration) joinInput() models.JoinInput {
	return models.JoinInput{
		AdapterType: d.AdapterType, Title: d.Title, MachineName: d.MachineName, MachineIP: d.MachineIP,
		LLMVersion: d.LLMVersion, Email: d.Email, Telemetry: d.Telemetry,
	}
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

// reportedJSON is what a runtime reported about its agent's machine, as
// operators read it (agents and join requests): every field present, null
// when the runtime did not say. The machine's name and address come before it,
// in the order each answer has always had them.
type reportedJSON struct {
	LLMVersion   string  `json:"llmVersion"`
	Email        string  `json:"email"`
	OSName       *string `json:"osName"`
	OSVersion    *string `json:"osVersion"`
	RAMBytes     *int64  `json:"ramBytes"`
	StorageBytes *int64  `json:"storageBytes"`
	StorageType  *string `json:"storageType"`
}

func toReportedJSON(llmVersion, email string, t models.Telemetry) reportedJSON {
	return reportedJSON{LLMVersion: llmVersion, Email: email, OSName: t.OSName, OSVersion: t.OSVersion,
		RAMBytes: t.RAMBytes, StorageBytes: t.StorageBytes, StorageType: t.StorageType}
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
	reportedJSON
	AdapterType string  `json:"adapterType"`
	JoinedVia   string  `json:"joinedVia"`
	CreatedAt   apiTime `json:"createdAt"`
}

func (h *Handler) detail(a *models.Agent) agentDetail {
	return agentDetail{
		ID: a.ID, OrgID: a.OrgID, TeamID: a.TeamID, Title: a.Title, Status: a.Status,
		AgentPickupEnabled: a.PickupEnabled, IsOnline: a.EffectiveOnline(time.Now(), h.cfg.PresenceWindow),
		OnlineFlag: a.IsOnline, LastSeenAt: optAPITime(a.LastSeenAt), MachineIP: a.MachineIP, MachineName: a.MachineName,
		reportedJSON: toReportedJSON(a.LLMVersion, a.Email, a.Telemetry()),
		AdapterType:  a.AdapterType, JoinedVia: a.JoinedVia, CreatedAt: apiTime(a.CreatedAt),
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
