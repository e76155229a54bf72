package handlers

import (
	"time"

	"github.com/google/uuid"

	"github.com/agentroster/agentroster/models"
)

// The JSON answers of organizations, teams, members, users, columns, webhooks
// and the audit log: every answer goes through one of these types, never a
// model, so a new column of a table does not reach the wire by itself.
//
// Their times are time.Time as encoding/json writes it (RFC 3339 with the
// fractional seconds PostgreSQL stored), as these endpoints always answered;
// the agent, key, invite and join request answers use apiTime (whole seconds,
// UTC). Moving these to apiTime would change what clients receive, so it is
// left to a change of the contract.

// jsonList converts each model of ms; a nil list stays nil (null on the wire).
func jsonList[M, J any](ms []M, to func(*M) J) []J {
	if ms == nil {
		return nil
	}
	out := make([]J, len(ms))
	for i := range ms {
		out[i] = to(&ms[i])
	}
	return out
}

// organizationJSON is an organization for operators; runtimes get orgJSON.
type organizationJSON struct {
	ID        uuid.UUID `json:"id"`
	Title     string    `json:"title"`
	Color     string    `json:"color"`
	CreatedAt time.Time `json:"createdAt"`
}

func toOrganizationJSON(o *models.Organization) organizationJSON {
	return organizationJSON{ID: o.ID, Title: o.Title, Color: o.Color, CreatedAt: o.CreatedAt}
}

// teamJSON is a team with its onboarding document under both names the
// clients read: onboarding and onboardingDoc (the Agelo web app's).
type teamJSON struct {
	ID            uuid.UUID `json:"id"`
	OrgID         uuid.UUID `json:"orgId"`
	Name          string    `json:"name"`
	Onboarding    string    `json:"onboarding"`
	CreatedAt     time.Time `json:"createdAt"`
	OnboardingDoc string    `json:"onboardingDoc"`
}

func toTeamJSON(t *models.Team) teamJSON {
	return teamJSON{ID: t.ID, OrgID: t.OrgID, Name: t.Name, Onboarding: t.Onboarding, CreatedAt: t.CreatedAt, OnboardingDoc: t.Onboarding}
}

type columnJSON struct {
	ID               string `json:"id"`
	Name             string `json:"name"`
	Position         int    `json:"position"`
	AgentCanRead     bool   `json:"agentCanRead"`
	AgentCanModerate bool   `json:"agentCanModerate"`
}

func toColumnJSON(c *models.BoardColumn) columnJSON {
	return columnJSON{ID: c.ID, Name: c.Name, Position: c.Position, AgentCanRead: c.AgentCanRead, AgentCanModerate: c.AgentCanModerate}
}

// memberJSON is a member of an organization with its state (active, invited,
// disabled).
type memberJSON struct {
	UserID      uuid.UUID  `json:"userId"`
	Email       string     `json:"email"`
	Role        string     `json:"role"`
	IsSA        bool       `json:"isSa"`
	HasPassword bool       `json:"hasPassword"`
	LastLoginAt *time.Time `json:"lastLoginAt"`
	DisabledAt  *time.Time `json:"disabledAt"`
	AddedAt     time.Time  `json:"addedAt"`
	State       string     `json:"state"`
}

func toMemberJSON(m *models.Member) memberJSON {
	return memberJSON{UserID: m.UserID, Email: m.Email, Role: m.Role, IsSA: m.IsSA, HasPassword: m.HasPassword,
		LastLoginAt: m.LastLoginAt, DisabledAt: m.DisabledAt, AddedAt: m.AddedAt, State: m.State()}
}

// pendingMemberJSON is an invitation to an organization awaiting the invitee.
type pendingMemberJSON struct {
	ID        uuid.UUID `json:"invitationId"`
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	InvitedAt time.Time `json:"invitedAt"`
}

func toPendingMemberJSON(p *models.PendingMember) pendingMemberJSON {
	return pendingMemberJSON{ID: p.ID, Email: p.Email, Role: p.Role, InvitedAt: p.InvitedAt}
}

// invitationJSON is an invitation as its invitee sees it.
type invitationJSON struct {
	ID        uuid.UUID `json:"id"`
	OrgID     uuid.UUID `json:"orgId"`
	OrgTitle  string    `json:"orgTitle"`
	Role      string    `json:"role"`
	InvitedBy string    `json:"invitedBy"`
	InvitedAt time.Time `json:"invitedAt"`
}

func toInvitationJSON(i *models.Invitation) invitationJSON {
	return invitationJSON{ID: i.ID, OrgID: i.OrgID, OrgTitle: i.OrgTitle, Role: i.Role, InvitedBy: i.InvitedBy, InvitedAt: i.InvitedAt}
}

// userJSON is a user account as platform admins see it (never its password
// hash).
type userJSON struct {
	ID          uuid.UUID  `json:"id"`
	Email       string     `json:"email"`
	IsSA        bool       `json:"isSa"`
	DisabledAt  *time.Time `json:"disabledAt,omitempty"`
	LastLoginAt *time.Time `json:"lastLoginAt,omitempty"`
	CreatedAt   time.Time  `json:"createdAt"`
}

func toUserJSON(u *models.User) userJSON {
	return userJSON{ID: u.ID, Email: u.Email, IsSA: u.IsSA, DisabledAt: u.DisabledAt, LastLoginAt: u.LastLoginAt, CreatedAt: u.CreatedAt}
}

// webhookJSON is an endpoint as the API shows it; secret only at creation.
type webhookJSON struct {
	ID                  uuid.UUID  `json:"id"`
	OrgID               uuid.UUID  `json:"orgId"`
	URL                 string     `json:"url"`
	Events              []string   `json:"events"`
	SecretPrefix        string     `json:"secretPrefix"`
	Enabled             bool       `json:"enabled"`
	ConsecutiveFailures int        `json:"consecutiveFailures"`
	DisabledReason      string     `json:"disabledReason,omitempty"`
	DisabledAt          *time.Time `json:"disabledAt,omitempty"`
	CreatedBy           *uuid.UUID `json:"createdBy,omitempty"`
	CreatedAt           time.Time  `json:"createdAt"`
	Secret              string     `json:"secret,omitempty"`
}

func toWebhookJSON(w *models.WebhookEndpoint) webhookJSON {
	return webhookJSON{ID: w.ID, OrgID: w.OrgID, URL: w.URL, Events: w.Events, SecretPrefix: w.SecretPrefix, Enabled: w.Enabled,
		ConsecutiveFailures: w.ConsecutiveFailures, DisabledReason: w.DisabledReason, DisabledAt: w.DisabledAt,
		CreatedBy: w.CreatedBy, CreatedAt: w.CreatedAt}
}

// attemptJSON is one delivery attempt of a webhook.
type attemptJSON struct {
	ID         int64     `json:"id"`
	DeliveryID int64     `json:"deliveryId"`
	Event      string    `json:"event"`
	Attempt    int       `json:"attempt"`
	StatusCode int       `json:"statusCode"`
	LatencyMS  int       `json:"latencyMs"`
	Error      string    `json:"error,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
}

func toAttemptJSON(a *models.Attempt) attemptJSON {
	return attemptJSON{ID: a.ID, DeliveryID: a.DeliveryID, Event: a.Event, Attempt: a.Attempt, StatusCode: a.StatusCode,
		LatencyMS: a.LatencyMS, Error: a.Error, CreatedAt: a.CreatedAt}
}

// auditEventJSON is one row of the audit log.
type auditEventJSON struct {
	ID         int64          `json:"id"`
	OrgID      *uuid.UUID     `json:"orgId,omitempty"`
	ActorType  string         `json:"actorType"`
	ActorID    string         `json:"actorId"`
	ActorLabel string         `json:"actorLabel"`
	Action     string         `json:"action"`
	TargetType string         `json:"targetType"`
	TargetID   string         `json:"targetId"`
	IP         string         `json:"ip"`
	RequestID  string         `json:"requestId"`
	Details    map[string]any `json:"details"`
	CreatedAt  time.Time      `json:"createdAt"`
}

func toAuditEventJSON(e *models.AuditEvent) auditEventJSON {
	return auditEventJSON{ID: e.ID, OrgID: e.OrgID, ActorType: e.ActorType, ActorID: e.ActorID, ActorLabel: e.ActorLabel,
		Action: e.Action, TargetType: e.TargetType, TargetID: e.TargetID, IP: e.IP, RequestID: e.RequestID,
		Details: e.Details, CreatedAt: e.CreatedAt}
}
