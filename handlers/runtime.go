package handlers

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/agentroster/agentroster/models"
)

// registerRequest is the seed's register body.
type registerRequest struct {
	ID string `json:"id"`
	agentDeclaration
}

var errTeamForbidden = newErr(http.StatusForbidden, "forbidden", "this API key cannot act on that team")

// The runtime calls are implemented once, without gin, by the functions of a
// keyCall below: the JSON routes of this file and the MCP tools (mcp.go) both
// call them, so the rules, rate limits, presence writer, cache and audit are
// the same whichever way a runtime comes in. Their errors are classified by
// classify into the JSON routes' status and code.

// keyCall is the runtime behind a call: its live API key and how its changes
// are audited.
type keyCall struct {
	key   *models.APIKey
	actor models.Actor
}

// runtimeCaller is the keyCall of a JSON runtime route.
func (h *Handler) runtimeCaller(c *gin.Context) keyCall {
	return keyCall{key: currentKey(c), actor: h.actor(c)}
}

// register creates a pending agent in team, which must be in the key's org; a
// key bound to an agent may register only that agent. decode fills the
// request (after the team is checked, so a foreign team is refused first).
func (h *Handler) register(ctx context.Context, cl keyCall, team uuid.UUID, decode func(*registerRequest) error) (*models.Agent, error) {
	k := cl.key
	if team != k.TeamID {
		if _, err := models.GetTeam(ctx, h.db, k.OrgID, team); errors.Is(err, models.ErrNotFound) {
			return nil, errTeamForbidden
		} else if err != nil {
			return nil, err
		}
	}
	var req registerRequest
	if err := decode(&req); err != nil {
		return nil, err
	}
	if k.AgentID != nil && *k.AgentID != req.ID {
		return nil, errKeyBound
	}
	a, err := models.RegisterAgent(ctx, h.db, k.OrgID, team, req.registerInput(req.ID), cl.actor)
	if err != nil {
		return nil, err
	}
	h.announcer.Announce(models.Event{Org: k.OrgID, Kind: models.EventAgentList})
	return a, nil
}

// status is an agent's status for its runtime, also while pending or stopped;
// asking counts as contact.
func (h *Handler) status(ctx context.Context, cl keyCall, id string) (statusJSON, error) {
	a, err := h.agentFor(ctx, cl.key, id)
	if err != nil {
		return statusJSON{}, err
	}
	h.writer.Touch(a)
	s := h.summary(a)
	return statusJSON{Status: s.Status, AgentPickupEnabled: s.AgentPickupEnabled, IsOnline: s.IsOnline, LastSeenAt: s.LastSeenAt}, nil
}

// permissions is the resolved permission set of an approved agent.
func (h *Handler) permissions(ctx context.Context, cl keyCall, id string) (models.Permissions, error) {
	a, err := h.agentFor(ctx, cl.key, id)
	if err != nil {
		return models.Permissions{}, err
	}
	if err := models.CheckActive(a, "permissions"); err != nil {
		return models.Permissions{}, err
	}
	h.writer.Touch(a)
	return models.AgentPermissions(ctx, h.db, a.OrgID, a.ID)
}

// presence sends an online or offline change to the writer, which commits it
// together with those of concurrent requests; the key must be allowed to act
// on the agent. Online needs an approved agent; offline is always allowed.
func (h *Handler) presence(ctx context.Context, cl keyCall, id string, online bool) (*models.Agent, error) {
	k := cl.key
	if k.AgentID != nil && *k.AgentID != id {
		return nil, errKeyBound
	}
	if !models.ValidAgentID(id) {
		return nil, errNotFound
	}
	return h.writer.SetPresence(ctx, k.OrgID, id, online, cl.actor)
}

// keyOrgs lists the orgs a key can see: its own.
func (h *Handler) keyOrgs(ctx context.Context, cl keyCall) ([]orgJSON, error) {
	org, err := models.GetOrg(ctx, h.db, cl.key.OrgID)
	if err != nil {
		return nil, err
	}
	return []orgJSON{{ID: org.ID, Title: org.Title, Color: org.Color}}, nil
}

var errOtherOrg = newErr(http.StatusForbidden, "forbidden", "this API key belongs to another organization")

// keyAgents lists a page of the agents of the key's org (org, when given,
// must be it: 403 otherwise).
func (h *Handler) keyAgents(ctx context.Context, cl keyCall, org string, q agentQuery) ([]agentSummary, *models.AgentCursor, error) {
	if id, err := uuid.Parse(org); org != "" && (err != nil || id != cl.key.OrgID) {
		return nil, nil, errOtherOrg
	}
	agents, next, err := h.agentsPage(ctx, cl.key.OrgID, q)
	if err != nil {
		return nil, nil, err
	}
	out := make([]agentSummary, len(agents))
	for i := range agents {
		out[i] = h.summary(&agents[i])
	}
	return out, next, nil
}

// registerAgent creates a pending agent in :teamId, which must be in the key's org.
func (h *Handler) registerAgent(c *gin.Context) {
	team, err := pathUUID(c, "teamId")
	if err != nil {
		h.fail(c, err)
		return
	}
	a, err := h.register(c.Request.Context(), h.runtimeCaller(c), team, func(r *registerRequest) error { return decodeJSON(c, r) })
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, h.summary(a))
}

// agentStatus is polled by runtimes, also while pending or stopped.
func (h *Handler) agentStatus(c *gin.Context) {
	s, err := h.status(c.Request.Context(), h.runtimeCaller(c), c.Param("agentId"))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, s)
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
	p, err := h.permissions(c.Request.Context(), h.runtimeCaller(c), c.Param("agentId"))
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

func (h *Handler) setPresence(c *gin.Context, online bool) {
	a, err := h.presence(c.Request.Context(), h.runtimeCaller(c), c.Param("agentId"), online)
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
	orgs, err := h.keyOrgs(c.Request.Context(), h.runtimeCaller(c))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, orgs)
}

// agentList lists the agents of the key's org (another org: 403).
func (h *Handler) agentList(c *gin.Context) {
	out, next, err := h.keyAgents(c.Request.Context(), h.runtimeCaller(c), c.Param("orgId"), agentQueryOf(c))
	if err != nil {
		h.fail(c, err)
		return
	}
	if next != nil {
		setNextLink(c, next.String())
	}
	c.JSON(http.StatusOK, out)
}

// agentQuery is the roster filters of a JSON listing, as given.
type agentQuery struct {
	Status, Presence, TeamID, Q, After, Limit string
}

func agentQueryOf(c *gin.Context) agentQuery {
	return agentQuery{Status: c.Query("status"), Presence: c.Query("presence"), TeamID: c.Query("teamId"),
		Q: c.Query("q"), After: c.Query("after"), Limit: c.Query("limit")}
}

// listAgentsPage reads the roster filters of a JSON listing from the query.
func (h *Handler) listAgentsPage(c *gin.Context, org uuid.UUID) ([]models.Agent, *models.AgentCursor, error) {
	return h.agentsPage(c.Request.Context(), org, agentQueryOf(c))
}

// agentsPage lists a page of org's agents: status, presence, teamId, q, after
// and limit (default 100, at most 500).
func (h *Handler) agentsPage(ctx context.Context, org uuid.UUID, q agentQuery) ([]models.Agent, *models.AgentCursor, error) {
	f := models.AgentFilter{Org: org, Status: q.Status, Presence: q.Presence, Query: q.Q,
		Limit: 100, Window: h.cfg.PresenceWindow}
	if s := q.Limit; s != "" {
		n, err := parsePositive(s)
		if err != nil || n > 500 {
			return nil, nil, models.Invalid("limit", "must be a number from 1 to 500")
		}
		f.Limit = n
	}
	if s := q.TeamID; s != "" {
		id, err := uuid.Parse(s)
		if err != nil {
			return nil, nil, models.Invalid("teamId", "must be a UUID")
		}
		f.Team = id
	}
	if s := q.After; s != "" {
		cur, err := models.ParseAgentCursor(s)
		if err != nil {
			return nil, nil, err
		}
		f.After = &cur
	}
	return models.ListAgents(ctx, h.db, f)
}

// setNextLink points to the next page of a listing in a Link header.
func setNextLink(c *gin.Context, after string) {
	q := c.Request.URL.Query()
	q.Set("after", after)
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
