package handlers

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/views"
)

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
