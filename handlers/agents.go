package handlers

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/views"
)

// changeAgent applies a status action (approve, stop, resume) or delete in
// the caller's org: the one piece of logic behind the JSON routes and the
// roster buttons. For delete the returned agent is nil.
func (h *Handler) changeAgent(c *gin.Context, org uuid.UUID, id, action string) (*models.Agent, error) {
	defer h.forget(org, models.EventAgent, id)
	if action == "delete" {
		return nil, models.DeleteAgent(c.Request.Context(), h.db, org, id, h.actor(c))
	}
	return models.TransitionAgent(c.Request.Context(), h.db, org, id, action, h.actor(c))
}

// --- JSON management routes ---

// agentActionAPI serves PATCH /agents/{id}/approve|stop|resume (body {}).
func (h *Handler) agentActionAPI(action string) gin.HandlerFunc {
	return func(c *gin.Context) {
		var body struct{}
		if err := decodeJSON(c, &body); err != nil {
			h.fail(c, err)
			return
		}
		a, err := h.changeAgent(c, scopeOf(c).OrgID, c.Param("agentId"), action)
		if err != nil {
			h.fail(c, err)
			return
		}
		c.JSON(http.StatusOK, h.detail(a))
	}
}

// deleteAgentAPI serves DELETE /agents/{id}.
func (h *Handler) deleteAgentAPI(c *gin.Context) {
	if _, err := h.changeAgent(c, scopeOf(c).OrgID, c.Param("agentId"), "delete"); err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"success": true})
}

// listOrgAgents serves GET /organizations/{orgId}/agents with private fields.
func (h *Handler) listOrgAgents(c *gin.Context) {
	org := scopeOf(c).OrgID
	agents, next, err := h.listAgentsPage(c, org)
	if err != nil {
		h.fail(c, err)
		return
	}
	out := make([]agentDetail, len(agents))
	for i := range agents {
		out[i] = h.detail(&agents[i])
	}
	if next != nil {
		setNextLink(c, next.String())
	}
	c.JSON(http.StatusOK, out)
}

// setPickupAPI serves PATCH /agents/{id}/pickup {enabled}.
func (h *Handler) setPickupAPI(c *gin.Context) {
	var req struct {
		Enabled *bool `json:"enabled"`
	}
	if err := decodeJSON(c, &req); err != nil {
		h.fail(c, err)
		return
	}
	if req.Enabled == nil {
		h.fail(c, models.Invalid("enabled", "is required (true or false)"))
		return
	}
	a, err := h.setPickup(c, c.Param("agentId"), *req.Enabled)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, h.detail(a))
}

// setPickup turns card pickup on or off: the logic behind the JSON route and
// the agent page's toggle.
func (h *Handler) setPickup(c *gin.Context, id string, enabled bool) (*models.Agent, error) {
	org := scopeOf(c).OrgID
	defer h.forget(org, models.EventAgent, id)
	return models.SetAgentPickup(c.Request.Context(), h.db, org, id, enabled, h.actor(c))
}

type columnGrantJSON struct {
	ColumnID    string `json:"columnId"`
	CanRead     bool   `json:"canRead"`
	CanModerate bool   `json:"canModerate"`
}

type permissionsRequest struct {
	Columns     []columnGrantJSON `json:"columns"`
	Transitions []string          `json:"transitions"`
}

// permissionsAnswer is the grants as stored and the permissions they resolve to.
func permissionsAnswer(g models.Grants, p models.Permissions) gin.H {
	cols := make([]columnGrantJSON, len(g.Columns))
	for i, c := range g.Columns {
		cols[i] = columnGrantJSON{ColumnID: c.ColumnID, CanRead: c.CanRead, CanModerate: c.CanModerate}
	}
	trs := make([]string, len(g.Transitions))
	for i, t := range g.Transitions {
		trs[i] = t.String()
	}
	return gin.H{"columns": cols, "transitions": trs, "resolved": p}
}

// setPermissionsAPI serves PUT /agents/{id}/permissions: it replaces the grants.
func (h *Handler) setPermissionsAPI(c *gin.Context) {
	var req permissionsRequest
	if err := decodeJSON(c, &req); err != nil {
		h.fail(c, err)
		return
	}
	g, err := grantsFromRequest(req)
	if err != nil {
		h.fail(c, err)
		return
	}
	org, id := scopeOf(c).OrgID, c.Param("agentId")
	if g, err = models.SetGrants(c.Request.Context(), h.db, org, id, g, h.actor(c)); err != nil {
		h.fail(c, err)
		return
	}
	p, err := models.AgentPermissions(c.Request.Context(), h.db, org, id)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, permissionsAnswer(g, p))
}

func grantsFromRequest(req permissionsRequest) (models.Grants, error) {
	var g models.Grants
	var v models.Validator
	for i, c := range req.Columns {
		v.Check(models.ValidColumnID(c.ColumnID), "columns["+itoa(i)+"].columnId", models.ColumnIDRule)
		g.Columns = append(g.Columns, models.ColumnGrant{ColumnID: c.ColumnID, CanRead: c.CanRead, CanModerate: c.CanModerate})
	}
	for i, s := range req.Transitions {
		t, ok := models.ParseTransition(s)
		v.Check(ok, "transitions["+itoa(i)+"]", "must be two different column ids like col_a->col_b")
		g.Transitions = append(g.Transitions, t)
	}
	return g, v.Err()
}

// --- HTML: roster, detail and inline actions ---

func (h *Handler) rosterRow(c *gin.Context, a *models.Agent, teams map[uuid.UUID]string) views.RosterRow {
	name, ok := teams[a.TeamID]
	if !ok {
		if t, err := models.GetTeam(c.Request.Context(), h.db, a.OrgID, a.TeamID); err == nil {
			name = t.Name
		}
	}
	return views.RosterRow{Agent: *a, TeamName: name, Online: a.EffectiveOnline(time.Now(), h.cfg.PresenceWindow)}
}

func teamNames(teams []models.Team) map[uuid.UUID]string {
	m := make(map[uuid.UUID]string, len(teams))
	for _, t := range teams {
		m[t.ID] = t.Name
	}
	return m
}

// rosterPageSize is how many agents one roster page shows.
const rosterPageSize = 50

// rosterPage serves GET /agents: filters, search and keyset pages of 50.
func (h *Handler) rosterPage(c *gin.Context) {
	s, n := h.page(c, "Agents", "agents")
	fv := views.RosterFilter{Status: c.Query("status"), Presence: c.Query("presence"), Team: c.Query("team"), Q: strings.TrimSpace(c.Query("q"))}
	f := models.AgentFilter{Org: s.OrgID, Status: fv.Status, Presence: fv.Presence, Query: fv.Q, Limit: rosterPageSize, Window: h.cfg.PresenceWindow}
	var err error
	if fv.Team != "" {
		if f.Team, err = uuid.Parse(fv.Team); err != nil {
			h.fail(c, models.Invalid("team", "must be a team id"))
			return
		}
	}
	if after := c.Query("after"); after != "" {
		cur, err := models.ParseAgentCursor(after)
		if err != nil {
			h.fail(c, err)
			return
		}
		f.After = &cur
	}
	agents, next, err := models.ListAgents(c.Request.Context(), h.db, f)
	if err != nil {
		h.fail(c, err)
		return
	}
	teams, err := models.ListTeams(c.Request.Context(), h.db, s.OrgID)
	if err != nil {
		h.fail(c, err)
		return
	}
	names := teamNames(teams)
	d := views.RosterData{Teams: teams, Filter: fv, CanWrite: s.admin(), Rows: make([]views.RosterRow, len(agents))}
	for i := range agents {
		d.Rows[i] = h.rosterRow(c, &agents[i], names)
	}
	q := fv.Query()
	if next != nil {
		q.Set("after", next.String())
		d.NextURL = "/agents?" + q.Encode()
		q.Del("after")
	}
	d.SelfURL = c.Request.URL.RequestURI()
	if f.After != nil {
		d.FirstURL = "/agents"
		if len(q) > 0 {
			d.FirstURL += "?" + q.Encode()
		}
	}
	h.render(c, views.RosterPage(n, d))
}

// agentActionHTML serves the roster buttons POST /agents/{id}/approve|stop|
// resume|delete. htmx gets the updated row (an empty body for delete, which
// removes the row); a plain form post is sent back with 303.
func (h *Handler) agentActionHTML(action string) gin.HandlerFunc {
	return func(c *gin.Context) {
		s, id := scopeOf(c), c.Param("agentId")
		a, err := h.changeAgent(c, s.OrgID, id, action)
		var se *models.StateError
		if errors.As(err, &se) && isHTMX(c) {
			// Someone else changed the agent first: show the row as it is now.
			if cur, gerr := models.GetAgent(c.Request.Context(), h.db, s.OrgID, id); gerr == nil {
				toast(c, se.Message, "error")
				h.render(c, views.AgentRow(h.rosterRow(c, cur, nil), true))
				return
			}
		}
		if err != nil {
			h.fail(c, err)
			return
		}
		if isHTMX(c) {
			if a == nil {
				toast(c, "Agent "+id+" deleted.", "success")
				c.Data(http.StatusOK, "text/html; charset=utf-8", nil)
				return
			}
			h.render(c, views.AgentRow(h.rosterRow(c, a, nil), true))
			return
		}
		if c.PostForm("from") == "detail" && a != nil {
			seeOther(c, "/agents/"+url.PathEscape(id))
			return
		}
		seeOther(c, "/agents")
	}
}

// agentRowHTML serves GET /agents/{id}/row: the roster row as it is now, which
// the page fetches when a live update names the agent. A deleted agent's row
// is empty, so the swap removes it.
func (h *Handler) agentRowHTML(c *gin.Context) {
	s, id := scopeOf(c), c.Param("agentId")
	var a *models.Agent
	err := models.ErrNotFound // an impossible id has no row
	if models.ValidAgentID(id) {
		a, err = models.GetAgent(c.Request.Context(), h.db, s.OrgID, id)
	}
	if errors.Is(err, models.ErrNotFound) {
		c.Data(http.StatusOK, "text/html; charset=utf-8", nil)
		return
	}
	if err != nil {
		h.fail(c, err)
		return
	}
	h.render(c, views.AgentRow(h.rosterRow(c, a, nil), s.admin()))
}

// pendingBadge serves the nav's pending join request count.
func (h *Handler) pendingBadge(c *gin.Context) {
	s := scopeOf(c)
	if c.Query("kind") == "agents" {
		n, err := models.CountPendingAgents(c.Request.Context(), h.db, s.OrgID)
		if err != nil {
			h.fail(c, err)
			return
		}
		h.render(c, views.AgentsBadge(n))
		return
	}
	n, err := models.CountPendingJoinRequests(c.Request.Context(), h.db, s.OrgID)
	if err != nil {
		h.fail(c, err)
		return
	}
	h.render(c, views.PendingBadge(n))
}

// agentDetailPage serves GET /agents/{id}.
func (h *Handler) agentDetailPage(c *gin.Context) {
	s := scopeOf(c)
	// A link may name an agent of another of the caller's orgs: the page
	// shows it in that org, and a navigation of the user's own (typed, a
	// bookmark, a link of this site) also switches the session to it. A link
	// from another site (a chat message) does not change the session.
	site := c.GetHeader("Sec-Fetch-Site")
	if p := currentPrincipal(c); p.Session != nil && (site == "same-origin" || site == "none") &&
		(p.Session.OrgID == nil || *p.Session.OrgID != s.OrgID) {
		if err := models.SetSessionOrg(c.Request.Context(), h.db, p.token, s.OrgID); err != nil {
			h.fail(c, err)
			return
		}
		p.Session.OrgID = &s.OrgID
	}
	id := c.Param("agentId")
	d, err := h.agentDetail(c, s, id)
	if err != nil {
		h.fail(c, err)
		return
	}
	d.Perms.Saved = c.Query("saved") == "permissions"
	h.render(c, views.AgentDetailPage(h.nav(c, id, "agents"), d))
}

// agentDetail is the agent page's data for agent id of the scope's org.
func (h *Handler) agentDetail(c *gin.Context, s scope, id string) (views.AgentDetailData, error) {
	a, err := models.GetAgent(c.Request.Context(), h.db, s.OrgID, id)
	if err != nil {
		return views.AgentDetailData{}, err
	}
	return h.agentDetailData(c, s, a)
}

func (h *Handler) agentDetailData(c *gin.Context, s scope, a *models.Agent) (views.AgentDetailData, error) {
	d := views.AgentDetailData{CanWrite: s.admin()}
	teams, err := models.ListTeams(c.Request.Context(), h.db, s.OrgID)
	if err != nil {
		return d, err
	}
	names := teamNames(teams)
	row := h.rosterRow(c, a, names)
	d.Agent, d.TeamName, d.Online = *a, row.TeamName, row.Online
	keys, err := models.ListAPIKeys(c.Request.Context(), h.db, models.KeyFilter{Org: s.OrgID, Agent: a.ID})
	if err != nil {
		return d, err
	}
	d.Keys = keyRows(keys, names)
	if d.Perms, err = h.permissionsData(c, s, a.ID); err != nil {
		return d, err
	}
	d.Audit, err = models.ListAudit(c.Request.Context(), h.db, models.AuditFilter{Org: s.OrgID, TargetType: "agent", TargetID: a.ID, Limit: 20})
	return d, err
}

func (h *Handler) permissionsData(c *gin.Context, s scope, agent string) (views.PermissionsData, error) {
	p := views.PermissionsData{AgentID: agent, CanWrite: s.admin()}
	var err error
	if p.Columns, err = models.ListColumns(c.Request.Context(), h.db, s.OrgID); err != nil {
		return p, err
	}
	if p.Grants, err = models.GetGrants(c.Request.Context(), h.db, s.OrgID, agent); err != nil {
		return p, err
	}
	p.Resolved = models.Resolve(p.Columns, p.Grants)
	p.Transitions = views.TransitionsText(p.Grants.Transitions)
	return p, nil
}

// setPickupHTML serves the pickup toggle POST /agents/{id}/pickup (enabled=true|false).
func (h *Handler) setPickupHTML(c *gin.Context) {
	id, enabled := c.Param("agentId"), c.PostForm("enabled")
	if enabled != "true" && enabled != "false" {
		h.fail(c, models.Invalid("enabled", "must be true or false"))
		return
	}
	a, err := h.setPickup(c, id, enabled == "true")
	if err != nil {
		h.fail(c, err)
		return
	}
	if isHTMX(c) {
		h.render(c, views.PickupSection(*a, true))
		return
	}
	seeOther(c, "/agents/"+url.PathEscape(id))
}

// setGrantsFromForm replaces the grants of agent id with the permissions
// editor's; it returns the transitions as typed, to show them again.
func (h *Handler) setGrantsFromForm(c *gin.Context, org uuid.UUID, id string) (string, error) {
	g, text, err := grantsFromForm(c.Request.PostForm)
	if err != nil {
		return text, err
	}
	_, err = models.SetGrants(c.Request.Context(), h.db, org, id, g, h.actor(c))
	return text, err
}

// setPermissionsHTML serves the permissions editor POST /agents/{id}/permissions:
// read=<col>… moderate=<col>… transitions=<lines>. A validation error shows in
// the section (htmx: 200 so it is swapped in; plain: 400 with the whole page).
func (h *Handler) setPermissionsHTML(c *gin.Context) {
	s, id := scopeOf(c), c.Param("agentId")
	if err := parseForm(c); err != nil {
		h.fail(c, err)
		return
	}
	text, err := h.setGrantsFromForm(c, s.OrgID, id)
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		p, perr := h.permissionsData(c, s, id)
		if perr != nil {
			h.fail(c, perr)
			return
		}
		p.Transitions, p.Errors = text, formErrors(ve.Fields)
		if isHTMX(c) {
			h.render(c, views.PermissionsSection(p))
			return
		}
		d, err := h.agentDetail(c, s, id)
		if err != nil {
			h.fail(c, err)
			return
		}
		d.Perms = p
		h.renderStatus(c, http.StatusBadRequest, views.AgentDetailPage(h.nav(c, id, "agents"), d))
		return
	}
	if err != nil {
		h.fail(c, err)
		return
	}
	if isHTMX(c) {
		p, err := h.permissionsData(c, s, id)
		if err != nil {
			h.fail(c, err)
			return
		}
		p.Saved = true
		h.render(c, views.PermissionsSection(p))
		return
	}
	seeOther(c, "/agents/"+url.PathEscape(id)+"?saved=permissions#permissions-section")
}

// grantsFromForm reads the editor's checkboxes and transitions text.
func grantsFromForm(form url.Values) (models.Grants, string, error) {
	var g models.Grants
	byCol := map[string]*models.ColumnGrant{}
	var order []string
	add := func(col string, moderate bool) {
		gr := byCol[col]
		if gr == nil {
			gr = &models.ColumnGrant{ColumnID: col}
			byCol[col] = gr
			order = append(order, col)
		}
		gr.CanRead = true
		gr.CanModerate = gr.CanModerate || moderate
	}
	var v models.Validator
	for _, col := range form["read"] {
		v.Check(models.ValidColumnID(col), "form", "unknown column in the form; reload the page")
		add(col, false)
	}
	for _, col := range form["moderate"] {
		v.Check(models.ValidColumnID(col), "form", "unknown column in the form; reload the page")
		add(col, true)
	}
	for _, col := range order {
		g.Columns = append(g.Columns, *byCol[col])
	}
	text := form.Get("transitions")
	for i, line := range strings.Split(text, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		t, ok := models.ParseTransition(line)
		v.Check(ok, "transitions", "line "+itoa(i+1)+" is not two different column ids like col_a->col_b")
		g.Transitions = append(g.Transitions, t)
	}
	return g, text, v.Err()
}

// formErrors folds the model's indexed field names onto the editor's fields.
func formErrors(fields map[string]string) map[string]string {
	out := map[string]string{}
	for k, msg := range fields {
		switch {
		case strings.HasPrefix(k, "transitions"):
			if _, ok := out["transitions"]; !ok {
				out["transitions"] = msg
			}
		default:
			if _, ok := out["form"]; !ok {
				out["form"] = msg
			}
		}
	}
	return out
}
