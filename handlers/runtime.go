package handlers

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/agentroster/agentroster/models"
)

// registerRequest is the seed's register body.
type registerRequest struct {
	ID          string `json:"id"`
	Title       string `json:"title"`
	MachineIP   string `json:"machineIp"`
	MachineName string `json:"machineName"`
	LLMVersion  string `json:"llmVersion"`
	Email       string `json:"email"`
	AdapterType string `json:"adapterType"`
	models.Telemetry
}

var errTeamForbidden = newErr(http.StatusForbidden, "forbidden", "this API key cannot act on that team")

// registerAgent creates a pending agent in :teamId, which must be in the key's org.
func (h *Handler) registerAgent(c *gin.Context) {
	k := currentKey(c)
	team, err := pathUUID(c, "teamId")
	if err != nil {
		h.fail(c, err)
		return
	}
	if team != k.TeamID {
		if _, err := models.GetTeam(c.Request.Context(), h.db, k.OrgID, team); errors.Is(err, models.ErrNotFound) {
			h.fail(c, errTeamForbidden)
			return
		} else if err != nil {
			h.fail(c, err)
			return
		}
	}
	var req registerRequest
	if err := decodeJSON(c, &req); err != nil {
		h.fail(c, err)
		return
	}
	if k.AgentID != nil && *k.AgentID != req.ID {
		h.fail(c, errKeyBound)
		return
	}
	a, err := models.RegisterAgent(c.Request.Context(), h.db, k.OrgID, team, models.RegisterInput{
		ID: req.ID, Title: req.Title, MachineIP: req.MachineIP, MachineName: req.MachineName,
		LLMVersion: req.LLMVersion, Email: req.Email, AdapterType: req.AdapterType, Telemetry: req.Telemetry,
	}, h.actor(c))
	if err != nil {
		h.fail(c, err)
		return
	}
	h.announcer.Announce(models.Event{Org: k.OrgID, Kind: models.EventAgentList})
	c.JSON(http.StatusOK, h.summary(a))
}

// agentStatus is polled by runtimes, also while pending or stopped.
func (h *Handler) agentStatus(c *gin.Context) {
	a, err := h.keyAgent(c)
	if err != nil {
		h.fail(c, err)
		return
	}
	h.writer.Touch(a)
	s := h.summary(a)
	c.JSON(http.StatusOK, statusJSON{Status: s.Status, AgentPickupEnabled: s.AgentPickupEnabled, IsOnline: s.IsOnline, LastSeenAt: s.LastSeenAt})
}

// statusJSON is the answer of GET /agents/{id}/status, in the seed's order.
type statusJSON struct {
	Status             string   `json:"status"`
	AgentPickupEnabled bool     `json:"agentPickupEnabled"`
	IsOnline           bool     `json:"isOnline"`
	LastSeenAt         *apiTime `json:"lastSeenAt"`
}

// agentPermissions answers the resolved permission set of an approved agent.
func (h *Handler) agentPermissions(c *gin.Context) {
	a, err := h.keyAgent(c)
	if err == nil {
		err = models.CheckActive(a, "permissions")
	}
	if err == nil {
		h.writer.Touch(a)
	}
	var p models.Permissions
	if err == nil {
		p, err = models.AgentPermissions(c.Request.Context(), h.db, a.OrgID, a.ID)
	}
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, p)
}

// agentOnline flags an approved agent online. When it already is and was heard
// from recently, nothing is written.
func (h *Handler) agentOnline(c *gin.Context) { h.setPresence(c, true) }

// agentOffline clears the online flag; always allowed, idempotent.
func (h *Handler) agentOffline(c *gin.Context) { h.setPresence(c, false) }

// setPresence sends the change to the writer, which commits it together with
// those of concurrent requests; the key must be allowed to act on the agent.
func (h *Handler) setPresence(c *gin.Context, online bool) {
	k := currentKey(c)
	id := c.Param("agentId")
	var err error
	if k.AgentID != nil && *k.AgentID != id {
		err = errKeyBound
	} else if !models.ValidAgentID(id) {
		err = errNotFound
	}
	var a *models.Agent
	if err == nil {
		a, err = h.writer.SetPresence(c.Request.Context(), k.OrgID, id, online, h.actor(c))
	}
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, h.summary(a))
}

type orgJSON struct {
	ID    uuid.UUID `json:"id"`
	Title string    `json:"title"`
	Color string    `json:"color"`
}

// agentOrgs lists the orgs the key can see: its own.
func (h *Handler) agentOrgs(c *gin.Context) {
	org, err := models.GetOrg(c.Request.Context(), h.db, currentKey(c).OrgID)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, []orgJSON{{ID: org.ID, Title: org.Title, Color: org.Color}})
}

// agentList lists the agents of the key's org (another org: 403).
func (h *Handler) agentList(c *gin.Context) {
	k := currentKey(c)
	if org, err := uuid.Parse(c.Param("orgId")); err != nil || org != k.OrgID {
		h.fail(c, newErr(http.StatusForbidden, "forbidden", "this API key belongs to another organization"))
		return
	}
	agents, next, err := h.listAgentsPage(c, k.OrgID)
	if err != nil {
		h.fail(c, err)
		return
	}
	out := make([]agentSummary, len(agents))
	for i := range agents {
		out[i] = h.summary(&agents[i])
	}
	setNextLink(c, next)
	c.JSON(http.StatusOK, out)
}

// listAgentsPage reads the roster filters of a JSON listing: status, presence,
// teamId, q, after and limit (default 100, at most 500).
func (h *Handler) listAgentsPage(c *gin.Context, org uuid.UUID) ([]models.Agent, *models.AgentCursor, error) {
	f := models.AgentFilter{Org: org, Status: c.Query("status"), Presence: c.Query("presence"), Query: c.Query("q"),
		Limit: 100, Window: h.cfg.PresenceWindow}
	if s := c.Query("limit"); s != "" {
		n, err := parsePositive(s)
		if err != nil || n > 500 {
			return nil, nil, models.Invalid("limit", "must be a number from 1 to 500")
		}
		f.Limit = n
	}
	if s := c.Query("teamId"); s != "" {
		id, err := uuid.Parse(s)
		if err != nil {
			return nil, nil, models.Invalid("teamId", "must be a UUID")
		}
		f.Team = id
	}
	if s := c.Query("after"); s != "" {
		cur, err := models.ParseAgentCursor(s)
		if err != nil {
			return nil, nil, err
		}
		f.After = &cur
	}
	return models.ListAgents(c.Request.Context(), h.db, f)
}

// setNextLink points to the next page of a listing in a Link header.
func setNextLink(c *gin.Context, next *models.AgentCursor) {
	if next == nil {
		return
	}
	q := c.Request.URL.Query()
	q.Set("after", next.String())
	u := url.URL{Path: c.Request.URL.Path, RawQuery: q.Encode()}
	c.Header("Link", "<"+u.String()+`>; rel="next"`)
}

func parsePositive(s string) (int, error) {
	n := 0
	if s == "" || len(s) > 6 {
		return 0, errors.New("not a number")
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, errors.New("not a number")
		}
		n = n*10 + int(r-'0')
	}
	if n == 0 {
		return 0, errors.New("zero")
	}
	return n, nil
}

// teamOnboarding answers a team's onboarding document to a key of its org or
// to an operator who can see the org.
func (h *Handler) teamOnboarding(c *gin.Context) {
	id, err := pathUUID(c, "teamId")
	if err != nil {
		h.fail(c, err)
		return
	}
	team, err := models.GetTeam(c.Request.Context(), h.db, scopeOf(c).OrgID, id)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"teamId": team.ID, "teamName": team.Name, "content": team.Onboarding})
}
