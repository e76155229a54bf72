package handlers

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/views"
)

// --- Members: JSON ---

func (h *Handler) listMembersAPI(c *gin.Context) {
	org := scopeOf(c).OrgID
	ms, err := models.ListMembers(c.Request.Context(), h.db, org)
	if err != nil {
		h.fail(c, err)
		return
	}
	out := make([]memberJSON, len(ms))
	for i := range ms {
		out[i] = toMemberJSON(&ms[i])
	}
	c.JSON(http.StatusOK, out)
}

type memberRequest struct {
	Email string `json:"email"`
	Role  string `json:"role"`
}

// addedJSON is the answer to adding an email: the same keys and status
// whether or not the email belonged to a user. setPasswordUrl is set only
// when the call created the user; an existing user got an invitation.
type addedJSON struct {
	Email          string  `json:"email"`
	Role           string  `json:"role"`
	Status         string  `json:"status"`
	SetPasswordURL *string `json:"setPasswordUrl"`
}

// addMemberAPI serves POST /organizations/{orgId}/members {email, role} → 202
// (see models.AddMemberByEmail); a new user's set-password link is in the
// answer, the only time it is shown.
func (h *Handler) addMemberAPI(c *gin.Context) {
	org := scopeOf(c).OrgID
	var req memberRequest
	if err := decodeJSON(c, &req); err != nil {
		h.fail(c, err)
		return
	}
	res, err := models.AddMemberByEmail(c.Request.Context(), h.db, org, req.Email, req.Role, h.actor(c))
	if err != nil {
		h.fail(c, err)
		return
	}
	out := addedJSON{Email: res.Email, Role: res.Role, Status: res.Status}
	if res.Token != "" {
		u := h.setPasswordURL(res.Token)
		out.SetPasswordURL = &u
	}
	c.JSON(http.StatusAccepted, out)
}

// pendingMembersAPI serves GET /organizations/{orgId}/members/pending: the
// invitations awaiting their invitee's decision (email and role only).
func (h *Handler) pendingMembersAPI(c *gin.Context) {
	org := scopeOf(c).OrgID
	ps, err := models.ListPendingMembers(c.Request.Context(), h.db, org)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, jsonList(ps, toPendingMemberJSON))
}

// withdrawInvitationAPI serves DELETE /organizations/{orgId}/members/pending/{id}.
func (h *Handler) withdrawInvitationAPI(c *gin.Context) {
	org := scopeOf(c).OrgID
	id, err := pathUUID(c, "id")
	if err != nil {
		h.fail(c, err)
		return
	}
	if err := models.WithdrawInvitation(c.Request.Context(), h.db, org, id, h.actor(c)); err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"success": true})
}

// resendLinkAPI serves POST /organizations/{orgId}/members/{userId}/password-link:
// a new link for a member this org created who has no password yet.
func (h *Handler) resendLinkAPI(c *gin.Context) {
	org := scopeOf(c).OrgID
	user, err := pathUUID(c, "userId")
	if err != nil {
		h.fail(c, err)
		return
	}
	token, email, err := models.ResendPasswordLink(c.Request.Context(), h.db, org, user, h.actor(c))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, passwordLinkJSON{Email: email, SetPasswordURL: h.setPasswordURL(token)})
}

// updateMemberAPI serves PATCH /organizations/{orgId}/members/{userId} {role}.
func (h *Handler) updateMemberAPI(c *gin.Context) {
	org := scopeOf(c).OrgID
	user, err := pathUUID(c, "userId")
	if err != nil {
		h.fail(c, err)
		return
	}
	var req memberRequest
	if err := decodeJSON(c, &req); err != nil {
		h.fail(c, err)
		return
	}
	m, err := models.ChangeMemberRole(c.Request.Context(), h.db, org, user, req.Role, h.actor(c))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toMemberJSON(m))
}

// removeMemberAPI serves DELETE /organizations/{orgId}/members/{userId}.
func (h *Handler) removeMemberAPI(c *gin.Context) {
	org := scopeOf(c).OrgID
	user, err := pathUUID(c, "userId")
	if err != nil {
		h.fail(c, err)
		return
	}
	if err := models.RemoveMember(c.Request.Context(), h.db, org, user, h.actor(c)); err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"success": true})
}

// --- Members: HTML ---

var memberNotices = map[string]string{
	"role":      "Role changed.",
	"removed":   "Member removed: they no longer see this organization.",
	"withdrawn": "Invitation withdrawn.",
}

func (h *Handler) membersData(c *gin.Context, s scope) (views.MembersData, error) {
	ms, err := models.ListMembers(c.Request.Context(), h.db, s.OrgID)
	if err != nil {
		return views.MembersData{}, err
	}
	pending, err := models.ListPendingMembers(c.Request.Context(), h.db, s.OrgID)
	if err != nil {
		return views.MembersData{}, err
	}
	return views.MembersData{Members: ms, Pending: pending, CanWrite: s.admin(), Self: currentPrincipal(c).User.ID,
		Notice: memberNotices[c.Query("done")], Form: views.MemberForm{Role: models.RoleViewer}}, nil
}

func (h *Handler) membersPage(c *gin.Context) {
	s, n := h.page(c, "Members", "settings")
	d, err := h.membersData(c, s)
	if err != nil {
		h.fail(c, err)
		return
	}
	h.render(c, views.MembersPage(n, d))
}

// membersAdd serves POST /settings/members. The page it answers carries a new
// user's set-password link once (no redirect, so the link is never in a URL).
func (h *Handler) membersAdd(c *gin.Context) {
	s, n := h.page(c, "Members", "settings")
	f := views.MemberForm{Email: c.PostForm("email"), Role: c.PostForm("role")}
	res, err := models.AddMemberByEmail(c.Request.Context(), h.db, s.OrgID, f.Email, f.Role, h.actor(c))
	var ve *models.ValidationError
	var se *models.StateError
	status := http.StatusOK
	switch {
	case errors.As(err, &ve):
		f.Errors, status = ve.Fields, http.StatusBadRequest
	case errors.As(err, &se) && se.Code == "already_member":
		f.Errors, status = map[string]string{"email": "is already a member"}, http.StatusConflict
	case errors.As(err, &se) && se.Code == "already_invited":
		f.Errors, status = map[string]string{"email": "is already invited"}, http.StatusConflict
	case err != nil:
		h.fail(c, err)
		return
	}
	d, derr := h.membersData(c, s)
	if derr != nil {
		h.fail(c, derr)
		return
	}
	if err != nil {
		d.Form = f
	} else {
		d.Notice = res.Email + " was invited as " + res.Role + "."
		if res.Token != "" {
			d.NewLink = &views.NewLink{Email: res.Email, URL: h.setPasswordURL(res.Token)}
		}
	}
	h.renderStatus(c, status, views.MembersPage(n, d))
}

// membersResendLink serves POST /settings/members/{userId}/password-link: the
// page it answers carries the new link once.
func (h *Handler) membersResendLink(c *gin.Context) {
	s, n := h.page(c, "Members", "settings")
	user, err := pathUUID(c, "userId")
	if err != nil {
		h.fail(c, err)
		return
	}
	token, email, err := models.ResendPasswordLink(c.Request.Context(), h.db, s.OrgID, user, h.actor(c))
	if err != nil {
		h.fail(c, err)
		return
	}
	d, err := h.membersData(c, s)
	if err != nil {
		h.fail(c, err)
		return
	}
	d.NewLink = &views.NewLink{Email: email, URL: h.setPasswordURL(token), Resent: true}
	h.render(c, views.MembersPage(n, d))
}

// membersWithdraw serves POST /settings/members/invitations/{id}/withdraw.
func (h *Handler) membersWithdraw(c *gin.Context) {
	s := scopeOf(c)
	id, err := pathUUID(c, "id")
	if err != nil {
		h.fail(c, err)
		return
	}
	if err := models.WithdrawInvitation(c.Request.Context(), h.db, s.OrgID, id, h.actor(c)); err != nil {
		h.fail(c, err)
		return
	}
	seeOther(c, "/settings/members?done=withdrawn")
}

// memberAction serves POST /settings/members/{userId}/role|remove.
func (h *Handler) memberAction(action string) gin.HandlerFunc {
	return func(c *gin.Context) {
		s := scopeOf(c)
		user, err := pathUUID(c, "userId")
		if err != nil {
			h.fail(c, err)
			return
		}
		if action == "remove" {
			err = models.RemoveMember(c.Request.Context(), h.db, s.OrgID, user, h.actor(c))
		} else {
			_, err = models.ChangeMemberRole(c.Request.Context(), h.db, s.OrgID, user, c.PostForm("role"), h.actor(c))
		}
		if err != nil {
			h.fail(c, err)
			return
		}
		done := "role"
		if action == "remove" {
			done = "removed"
		}
		seeOther(c, "/settings/members?done="+done)
	}
}
