package handlers

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/views"
)

// joinRequestJSON is a join request on the wire for operators: everything the
// runtime declared and where the request came from (never the claim secret).
type joinRequestJSON struct {
	ID          uuid.UUID `json:"id"`
	OrgID       uuid.UUID `json:"orgId"`
	InviteID    uuid.UUID `json:"inviteId"`
	TeamID      uuid.UUID `json:"teamId"`
	AgentName   string    `json:"agentName"`
	AdapterType string    `json:"adapterType"`
	Status      string    `json:"status"`
	Title       string    `json:"title"`
	MachineName string    `json:"machineName"`
	MachineIP   string    `json:"machineIp"`
	reportedJSON
	SourceIP       string       `json:"sourceIp"`
	UserAgent      string       `json:"userAgent"`
	CreatedAt      apiTime      `json:"createdAt"`
	DecidedAt      *apiTime     `json:"decidedAt"`
	DecidedBy      *uuid.UUID   `json:"decidedBy"`
	ClaimedAt      *apiTime     `json:"claimedAt"`
	ClaimExpiresAt apiTime      `json:"claimExpiresAt"`
	ClaimVoidedAt  *apiTime     `json:"claimVoidedAt"`
	ClientSecret   bool         `json:"clientSecret"`
	AgentID        *string      `json:"agentId"`
	Agent          *agentDetail `json:"agent,omitempty"`
	Reregistered   *bool        `json:"reregistered,omitempty"`
}

func toJoinRequestJSON(j *models.JoinRequest) joinRequestJSON {
	return joinRequestJSON{
		ID: j.ID, OrgID: j.OrgID, InviteID: j.InviteID, TeamID: j.TeamID, AgentName: j.AgentName,
		AdapterType: j.AdapterType, Status: j.Status, Title: j.Title, MachineName: j.MachineName,
		MachineIP: j.MachineIP, reportedJSON: toReportedJSON(j.LLMVersion, j.Email, j.Telemetry()),
		SourceIP: j.SourceIP, UserAgent: j.UserAgent, CreatedAt: apiTime(j.CreatedAt),
		DecidedAt: optAPITime(j.DecidedAt), DecidedBy: j.DecidedBy, ClaimedAt: optAPITime(j.ClaimedAt),
		ClaimExpiresAt: apiTime(j.ClaimExpiresAt), ClaimVoidedAt: optAPITime(j.ClaimVoidedAt), ClientSecret: j.ClientSecret,
		AgentID: j.AgentID,
	}
}

// --- JSON: /internal/join-requests ---

// listJoinRequestsAPI serves GET /internal/join-requests?status=&orgId=
// (status: pending, approved, rejected or all; default all).
func (h *Handler) listJoinRequestsAPI(c *gin.Context) {
	s := scopeOf(c)
	status, err := models.ParseJoinStatus(c.Query("status"))
	if err != nil {
		h.fail(c, err)
		return
	}
	jrs, err := models.ListJoinRequests(c.Request.Context(), h.db, models.JoinFilter{Org: s.OrgID, Status: status})
	if err != nil {
		h.fail(c, err)
		return
	}
	out := make([]joinRequestJSON, len(jrs))
	for i := range jrs {
		out[i] = toJoinRequestJSON(&jrs[i])
	}
	c.JSON(http.StatusOK, out)
}

// decideJoinRequest approves, rejects or rejects and revokes the invite: the
// one piece of logic behind the JSON routes and the HTML buttons.
func (h *Handler) decideJoinRequest(c *gin.Context, org, id uuid.UUID, action string) (*models.JoinRequest, *models.Approval, error) {
	switch action {
	case "approve":
		ap, err := models.ApproveJoinRequest(c.Request.Context(), h.db, org, id, h.actor(c))
		if err != nil {
			return nil, nil, err
		}
		if ap.RevokedKeys > 0 {
			// A re-registration revoked the agent's earlier keys: refuse them
			// here at once, not when this replica's own event comes back.
			h.forget(org, models.EventAgent, ap.Agent.ID)
		}
		return ap.Request, ap, nil
	case "reject", "reject-revoke":
		jr, err := models.RejectJoinRequest(c.Request.Context(), h.db, org, id, action == "reject-revoke", h.actor(c))
		return jr, nil, err
	}
	return nil, nil, errNotFound
}

// decideJoinRequestAPI serves POST /internal/join-requests/{id}/approve and
// /reject (body {} or {"revokeInvite":true}). The loser of a race gets 409.
func (h *Handler) decideJoinRequestAPI(action string) gin.HandlerFunc {
	return func(c *gin.Context) {
		id, err := pathUUID(c, "id")
		if err != nil {
			h.fail(c, err)
			return
		}
		var body struct {
			RevokeInvite bool `json:"revokeInvite"`
		}
		if err := decodeJSON(c, &body); err != nil {
			h.fail(c, err)
			return
		}
		act := action
		if act == "reject" && body.RevokeInvite {
			act = "reject-revoke"
		}
		jr, ap, err := h.decideJoinRequest(c, scopeOf(c).OrgID, id, act)
		if err != nil {
			h.fail(c, err)
			return
		}
		out := toJoinRequestJSON(jr)
		if ap != nil {
			d := h.detail(ap.Agent)
			out.Agent, out.Reregistered = &d, &ap.Reregistered
		}
		c.JSON(http.StatusOK, out)
	}
}

// reissueClaimAPI serves POST /internal/join-requests/{id}/reissue: a new
// claim secret for an approved, unclaimed request, shown this once to the
// operator to hand to the runtime, with a new 7-day window.
func (h *Handler) reissueClaimAPI(c *gin.Context) {
	id, err := pathUUID(c, "id")
	if err != nil {
		h.fail(c, err)
		return
	}
	j, err := models.ReissueClaim(c.Request.Context(), h.db, scopeOf(c).OrgID, id, h.actor(c))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, h.joinAnswer(j))
}

// --- HTML: the Join requests tab ---

// joinRow is a join request as the Join Requests tab shows it. users caches
// decider emails across rows.
func (h *Handler) joinRow(c *gin.Context, j *models.JoinRequest, teams map[uuid.UUID]string, users map[uuid.UUID]string) views.JoinRow {
	r := views.JoinRow{Request: *j, TeamName: teams[j.TeamID]}
	if inv, ok := h.rowInvites(c)[j.InviteID]; ok {
		r.Invite = &inv
	} else if inv, err := models.GetInvite(c.Request.Context(), h.db, j.OrgID, j.InviteID); err == nil {
		r.Invite = inv
	}
	if _, ok := teams[j.TeamID]; !ok {
		if t, err := models.GetTeam(c.Request.Context(), h.db, j.OrgID, j.TeamID); err == nil {
			r.TeamName = t.Name
		}
	}
	if j.DecidedBy != nil {
		email, ok := users[*j.DecidedBy]
		if !ok {
			if u, err := models.GetUser(c.Request.Context(), h.db, *j.DecidedBy); err == nil {
				email = u.Email
			}
			users[*j.DecidedBy] = email
		}
		r.Decider = email
	}
	return r
}

// joinRequestsPage serves GET /agents/join-requests?status= (default pending).
func (h *Handler) joinRequestsPage(c *gin.Context) {
	s, n := h.page(c, "Join requests", "join-requests")
	filter := c.DefaultQuery("status", "pending")
	reissued, _ := c.Get(ctxClaimReissue)
	if reissued != nil {
		filter = "approved" // a plain re-issue post shows the list it was made from
	}
	status, err := models.ParseJoinStatus(filter)
	if err != nil {
		h.fail(c, err)
		return
	}
	if status == "" {
		filter = "all"
	} else {
		filter = lowerStatus(status)
	}
	jrs, err := models.ListJoinRequests(c.Request.Context(), h.db, models.JoinFilter{Org: s.OrgID, Status: status})
	if err != nil {
		h.fail(c, err)
		return
	}
	teams, err := models.ListTeams(c.Request.Context(), h.db, s.OrgID)
	if err != nil {
		h.fail(c, err)
		return
	}
	ids := make([]uuid.UUID, len(jrs))
	for i := range jrs {
		ids[i] = jrs[i].InviteID
	}
	invs, err := models.InvitesByID(c.Request.Context(), h.db, s.OrgID, ids)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.Set(ctxRowInvites, invs)
	names, users := teamNames(teams), map[uuid.UUID]string{}
	d := views.JoinRequestsData{Status: filter, SelfURL: "/agents/join-requests?status=" + filter, CanWrite: s.admin(),
		Rows: make([]views.JoinRow, len(jrs))}
	if reissued != nil {
		d.Reissued = reissued.(*views.ClaimReissue)
	}
	for i := range jrs {
		d.Rows[i] = h.joinRow(c, &jrs[i], names, users)
	}
	h.render(c, views.JoinRequestsPage(n, d))
}

// ctxRowInvites holds the invites of the listed join requests, by id.
const ctxRowInvites = "rowInvites"

func (h *Handler) rowInvites(c *gin.Context) map[uuid.UUID]models.Invite {
	m, _ := c.Get(ctxRowInvites)
	invs, _ := m.(map[uuid.UUID]models.Invite)
	return invs
}

func lowerStatus(s string) string {
	switch s {
	case models.JoinPending:
		return "pending"
	case models.JoinApproved:
		return "approved"
	case models.JoinRejected:
		return "rejected"
	}
	return "all"
}

// joinDecisionHTML serves the row buttons POST /agents/join-requests/{id}/
// approve|reject|reject-revoke: htmx gets the updated row (or, when someone
// decided first, the row as it is now with an error toast); a plain post
// goes back to the list.
func (h *Handler) joinDecisionHTML(action string) gin.HandlerFunc {
	return func(c *gin.Context) {
		org := scopeOf(c).OrgID
		id, err := pathUUID(c, "id")
		if err != nil {
			h.fail(c, err)
			return
		}
		jr, _, err := h.decideJoinRequest(c, org, id, action)
		var se *models.StateError
		if errors.As(err, &se) && isHTMX(c) {
			if cur, gerr := models.GetJoinRequest(c.Request.Context(), h.db, org, id); gerr == nil {
				toast(c, se.Message, "error")
				h.render(c, views.JoinRequestRow(h.joinRow(c, cur, nil, map[uuid.UUID]string{}), true))
				return
			}
		}
		if err != nil {
			h.fail(c, err)
			return
		}
		if isHTMX(c) {
			msg := map[string]string{"approve": "Approved " + jr.AgentName + ".", "reject": "Rejected " + jr.AgentName + ".",
				"reject-revoke": "Rejected " + jr.AgentName + " and revoked its invite."}[action]
			toast(c, msg, "success")
			h.render(c, views.JoinRequestRow(h.joinRow(c, jr, nil, map[uuid.UUID]string{}), true))
			return
		}
		seeOther(c, "/agents/join-requests")
	}
}

// ctxClaimReissue carries a re-issued claim from reissueClaimHTML to the page it renders.
const ctxClaimReissue = "claimReissue"

// reissueClaimHTML serves the row button POST /agents/join-requests/{id}/reissue:
// htmx gets the panel with the new secret (shown this once, outside the table
// so a live refresh keeps it); a plain post gets the approved list with it.
func (h *Handler) reissueClaimHTML(c *gin.Context) {
	org := scopeOf(c).OrgID
	id, err := pathUUID(c, "id")
	if err != nil {
		h.fail(c, err)
		return
	}
	j, err := models.ReissueClaim(c.Request.Context(), h.db, org, id, h.actor(c))
	var se *models.StateError
	if errors.As(err, &se) && isHTMX(c) {
		toast(c, se.Message, "error")
		c.Status(http.StatusNoContent)
		return
	}
	if err != nil {
		h.fail(c, err)
		return
	}
	r := &views.ClaimReissue{AgentName: j.Request.AgentName, RequestID: j.Request.ID.String(), ClaimSecret: j.ClaimSecret,
		ClaimURL: h.claimURL(j.Request.ID), ExpiresAt: j.Request.ClaimExpiresAt.UTC().Format("2006-01-02 15:04 UTC")}
	if isHTMX(c) {
		toast(c, "New claim secret for "+j.Request.AgentName+".", "success")
		h.render(c, views.ClaimReissuePanel(*r))
		return
	}
	c.Set(ctxClaimReissue, r)
	h.joinRequestsPage(c)
}
