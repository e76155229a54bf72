package handlers

import (
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/views"
)

// --- Members: JSON ---

func (h *Handler) setPasswordURL(token string) string {
	return h.cfg.PublicURL + "/set-password/" + token
}

// memberJSON is a member with the one-time set-password link of a new user.
type memberJSON struct {
	*models.Member
	State          string `json:"state"`
	SetPasswordURL string `json:"setPasswordUrl,omitempty"`
}

func (h *Handler) listMembersAPI(c *gin.Context) {
	org := scopeOf(c).OrgID
	ms, err := models.ListMembers(c.Request.Context(), h.db, org)
	if err != nil {
		h.fail(c, err)
		return
	}
	out := make([]memberJSON, len(ms))
	for i := range ms {
		out[i] = memberJSON{Member: &ms[i], State: ms[i].State()}
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
	c.JSON(http.StatusOK, ps)
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

// passwordLinkJSON is a freshly issued set-password link.
type passwordLinkJSON struct {
	Email          string `json:"email"`
	SetPasswordURL string `json:"setPasswordUrl"`
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
	c.JSON(http.StatusOK, memberJSON{Member: m, State: m.State()})
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

// --- Account ---

var accountNotices = map[string]string{
	"accepted": "Invitation accepted: the organization is in your switcher.",
	"declined": "Invitation declined.",
}

func (h *Handler) accountPage(c *gin.Context) {
	// The Account page works for a user in no organization yet too: an
	// invitee accepts their first invitation there.
	n := h.nav(c, "Account", "settings")
	invs, err := models.ListInvitations(c.Request.Context(), h.db, currentPrincipal(c).User.ID)
	if err != nil {
		h.fail(c, err)
		return
	}
	h.render(c, views.AccountPage(n, views.AccountForm{Saved: c.Query("saved") == "1", Invitations: invs, Notice: accountNotices[c.Query("done")]}))
}

// listInvitationsAPI serves GET /account/invitations: the caller's pending
// membership invitations.
func (h *Handler) listInvitationsAPI(c *gin.Context) {
	invs, err := models.ListInvitations(c.Request.Context(), h.db, currentPrincipal(c).User.ID)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, invs)
}

// decideInvitation accepts or declines the caller's own invitation :id.
func (h *Handler) decideInvitation(c *gin.Context, accept bool) (*models.Invitation, error) {
	id, err := pathUUID(c, "id")
	if err != nil {
		return nil, err
	}
	return models.DecideInvitation(c.Request.Context(), h.db, currentPrincipal(c).User.ID, id, accept, h.actor(c))
}

// decideInvitationAPI serves POST /account/invitations/{id}/accept|decline.
func (h *Handler) decideInvitationAPI(action string) gin.HandlerFunc {
	return func(c *gin.Context) {
		inv, err := h.decideInvitation(c, action == "accept")
		if err != nil {
			h.fail(c, err)
			return
		}
		status := "declined"
		if action == "accept" {
			status = "accepted"
		}
		c.JSON(http.StatusOK, gin.H{"id": inv.ID, "orgId": inv.OrgID, "orgTitle": inv.OrgTitle, "role": inv.Role, "status": status})
	}
}

// decideInvitationHTML serves POST /account/invitations/{id}/accept|decline.
func (h *Handler) decideInvitationHTML(action string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if _, err := h.decideInvitation(c, action == "accept"); err != nil {
			h.fail(c, err)
			return
		}
		seeOther(c, "/account?done="+action+"ed")
	}
}

// changePassword checks the current password and sets the new one; every
// other session and bearer token of the user ends. Wrong current passwords
// use up a budget of their own per user and address (not the sign-in one);
// the right one refills it.
func (h *Handler) changePassword(c *gin.Context, current, password string) (*models.User, error) {
	p := currentPrincipal(c)
	key := p.User.ID.String() + "\x00" + c.ClientIP()
	if err := limit(h.password, key); err != nil {
		return nil, err
	}
	var keep []byte
	if p.Session != nil {
		keep = p.Session.ID
	}
	u, err := models.ChangePassword(c.Request.Context(), h.db, p.User.ID, current, password, keep, h.actor(c))
	var ve *models.ValidationError
	if err == nil || errors.As(err, &ve) && ve.Fields["currentPassword"] == "" {
		h.password.reset(key) // the current password was right
	}
	return u, err
}

func (h *Handler) accountPassword(c *gin.Context) {
	n := h.nav(c, "Account", "settings")
	_, err := h.changePassword(c, c.PostForm("currentPassword"), c.PostForm("password"))
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		h.renderStatus(c, http.StatusBadRequest, views.AccountPage(n, views.AccountForm{Errors: ve.Fields}))
		return
	}
	if err != nil {
		h.fail(c, err)
		return
	}
	seeOther(c, "/account?saved=1")
}

// accountPasswordAPI serves POST /account/password {currentPassword, password}.
// A bearer-token caller's token stops working too, so the answer carries a new one.
func (h *Handler) accountPasswordAPI(c *gin.Context) {
	var req struct {
		CurrentPassword string `json:"currentPassword"`
		Password        string `json:"password"`
	}
	if err := decodeJSON(c, &req); err != nil {
		h.fail(c, err)
		return
	}
	u, err := h.changePassword(c, req.CurrentPassword, req.Password)
	if err != nil {
		h.fail(c, err)
		return
	}
	out := gin.H{"success": true}
	if currentPrincipal(c).Session == nil {
		tok, err := h.tokens.Encode("bearer", bearerClaims{U: u.ID.String(), E: u.AuthEpoch})
		if err != nil {
			h.fail(c, err)
			return
		}
		out["token"] = bearerPrefix + tok
		out["expiresAt"] = time.Now().Add(h.cfg.TokenTTL).UTC().Truncate(time.Second)
	}
	c.JSON(http.StatusOK, out)
}

// --- Set-password links (public) ---

func (h *Handler) setPasswordPage(c *gin.Context) {
	if err := limit(h.linkIP, c.ClientIP()); err != nil {
		h.fail(c, err)
		return
	}
	tok := c.Param("token")
	email, err := models.PasswordTokenEmail(c.Request.Context(), h.db, tok)
	if err != nil {
		h.setPasswordError(c, err)
		return
	}
	h.render(c, views.SetPasswordPage(views.SetPasswordForm{Token: tok, Email: email}))
}

func (h *Handler) setPasswordError(c *gin.Context, err error) {
	status, _, message, _ := classify(err)
	if status >= 500 || status == http.StatusTooManyRequests {
		h.fail(c, err)
		return
	}
	if status == http.StatusNotFound {
		message = "This link is not valid. Ask an admin of your organization for a new one."
	}
	h.renderStatus(c, status, views.SetPasswordPage(views.SetPasswordForm{Error: message}))
}

func (h *Handler) setPasswordSubmit(c *gin.Context) {
	if err := limit(h.linkIP, c.ClientIP()); err != nil {
		h.fail(c, err)
		return
	}
	tok := c.Param("token")
	_, err := models.SetPasswordWithToken(c.Request.Context(), h.db, tok, c.PostForm("password"), h.actor(c))
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		email, lerr := models.PasswordTokenEmail(c.Request.Context(), h.db, tok)
		if lerr != nil {
			h.setPasswordError(c, lerr)
			return
		}
		h.renderStatus(c, http.StatusBadRequest, views.SetPasswordPage(views.SetPasswordForm{Token: tok, Email: email, Errors: ve.Fields}))
		return
	}
	if err != nil {
		h.setPasswordError(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/login")
}

// --- Platform (platform admins) ---

var platformNotices = map[string]string{
	"org":     "Organization saved.",
	"created": "Organization created.",
	"user":    "User updated.",
}

func (h *Handler) platformRender(c *gin.Context, status int, f views.OrgForm) {
	h.platformRenderAll(c, status, f, nil)
}

func (h *Handler) platformRenderLink(c *gin.Context, link *views.NewLink) {
	h.platformRenderAll(c, http.StatusOK, views.OrgForm{}, link)
}

func (h *Handler) platformRenderAll(c *gin.Context, status int, f views.OrgForm, link *views.NewLink) {
	_, n := h.page(c, "Platform", "platform")
	orgs, err := models.ListOrgs(c.Request.Context(), h.db)
	if err != nil {
		h.fail(c, err)
		return
	}
	users, err := models.ListUsers(c.Request.Context(), h.db)
	if err != nil {
		h.fail(c, err)
		return
	}
	h.renderStatus(c, status, views.PlatformPage(n, views.PlatformData{
		Orgs: orgs, Users: users, Self: currentPrincipal(c).User.ID, OrgForm: f, Notice: platformNotices[c.Query("done")], NewLink: link,
	}))
}

func (h *Handler) platformPage(c *gin.Context) { h.platformRender(c, http.StatusOK, views.OrgForm{}) }

func (h *Handler) platformCreateOrg(c *gin.Context) {
	f := views.OrgForm{Title: c.PostForm("title"), Color: c.PostForm("color")}
	_, err := models.CreateOrg(c.Request.Context(), h.db, f.Title, f.Color, &currentPrincipal(c).User.ID, h.actor(c))
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		f.Errors = ve.Fields
		h.platformRender(c, http.StatusBadRequest, f)
		return
	}
	if isOrgExists(err) {
		f.Errors = map[string]string{"title": orgTitleTaken}
		h.platformRender(c, http.StatusConflict, f)
		return
	}
	if err != nil {
		h.fail(c, err)
		return
	}
	seeOther(c, "/platform?done=created")
}

// orgTitleTaken is the platform form's field error for a title in use.
const orgTitleTaken = "is already the title of another organization"

// isOrgExists reports whether err is the 409 org_exists of a title in use.
func isOrgExists(err error) bool {
	var se *models.StateError
	return errors.As(err, &se) && se.Code == "org_exists"
}

// platformUpdateOrg renames or recolours an org; a title in use answers 409
// with the message on the error page.
func (h *Handler) platformUpdateOrg(c *gin.Context) {
	org, err := pathUUID(c, "orgId")
	if err != nil {
		h.fail(c, err)
		return
	}
	if _, err := models.UpdateOrg(c.Request.Context(), h.db, org, c.PostForm("title"), c.PostForm("color"), h.actor(c)); err != nil {
		h.fail(c, err)
		return
	}
	seeOther(c, "/platform?done=org")
}

// platformUserAction serves POST /platform/users/{userId}/sa|disable with value=true|false.
func (h *Handler) platformUserAction(action string) gin.HandlerFunc {
	return func(c *gin.Context) {
		user, err := pathUUID(c, "userId")
		if err != nil {
			h.fail(c, err)
			return
		}
		value := c.PostForm("value")
		if value != "true" && value != "false" {
			h.fail(c, models.Invalid("value", "must be true or false"))
			return
		}
		if err := h.changeUser(c, user, action, value == "true"); err != nil {
			h.fail(c, err)
			return
		}
		seeOther(c, "/platform?done=user")
	}
}

// platformResetPassword serves POST /platform/users/{userId}/reset-password:
// the page it answers carries the new link once.
func (h *Handler) platformResetPassword(c *gin.Context) {
	email, link, err := h.resetPassword(c)
	if err != nil {
		h.fail(c, err)
		return
	}
	h.platformRenderLink(c, &views.NewLink{Email: email, URL: link, Resent: true})
}

// resetPasswordAPI serves POST /users/{userId}/reset-password (platform admins).
func (h *Handler) resetPasswordAPI(c *gin.Context) {
	email, link, err := h.resetPassword(c)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, passwordLinkJSON{Email: email, SetPasswordURL: link})
}

// resetPassword issues a platform admin's set-password link for :userId.
func (h *Handler) resetPassword(c *gin.Context) (email, link string, err error) {
	user, err := pathUUID(c, "userId")
	if err != nil {
		return "", "", err
	}
	token, email, err := models.ResetPasswordLink(c.Request.Context(), h.db, user, h.actor(c))
	if err != nil {
		return "", "", err
	}
	return email, h.setPasswordURL(token), nil
}

var errSelf = models.Conflict("own_account", "you cannot change your own platform role or disable yourself", nil)

func (h *Handler) changeUser(c *gin.Context, user uuid.UUID, action string, value bool) error {
	if user == currentPrincipal(c).User.ID {
		return errSelf
	}
	var err error
	if action == "sa" {
		_, err = models.SetUserSA(c.Request.Context(), h.db, user, value, h.actor(c))
	} else {
		_, err = models.SetUserDisabled(c.Request.Context(), h.db, user, value, h.actor(c))
	}
	return err
}

// listUsersAPI serves GET /users (platform admins).
func (h *Handler) listUsersAPI(c *gin.Context) {
	users, err := models.ListUsers(c.Request.Context(), h.db)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, users)
}

// updateUserAPI serves PATCH /users/{userId} {isSa?, disabled?} (platform admins).
func (h *Handler) updateUserAPI(c *gin.Context) {
	user, err := pathUUID(c, "userId")
	if err != nil {
		h.fail(c, err)
		return
	}
	var req struct {
		IsSA     *bool `json:"isSa"`
		Disabled *bool `json:"disabled"`
	}
	if err := decodeJSON(c, &req); err != nil {
		h.fail(c, err)
		return
	}
	if req.IsSA == nil && req.Disabled == nil {
		h.fail(c, models.Invalid("body", "give isSa or disabled"))
		return
	}
	if req.IsSA != nil {
		if err := h.changeUser(c, user, "sa", *req.IsSA); err != nil {
			h.fail(c, err)
			return
		}
	}
	if req.Disabled != nil {
		if err := h.changeUser(c, user, "disable", *req.Disabled); err != nil {
			h.fail(c, err)
			return
		}
	}
	u, err := models.GetUser(c.Request.Context(), h.db, user)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, u)
}

// updateOrgAPI serves PATCH /organizations/{orgId} {title?, color?} (platform admins).
func (h *Handler) updateOrgAPI(c *gin.Context) {
	id, err := pathUUID(c, "orgId")
	if err != nil {
		h.fail(c, err)
		return
	}
	var req struct {
		Title *string `json:"title"`
		Color *string `json:"color"`
	}
	if err := decodeJSON(c, &req); err != nil {
		h.fail(c, err)
		return
	}
	org, err := models.GetOrg(c.Request.Context(), h.db, id)
	if err != nil {
		h.fail(c, err)
		return
	}
	title, color := org.Title, org.Color
	if req.Title != nil {
		title = *req.Title
	}
	if req.Color != nil {
		color = *req.Color
	}
	org, err = models.UpdateOrg(c.Request.Context(), h.db, id, title, color, h.actor(c))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, org)
}
