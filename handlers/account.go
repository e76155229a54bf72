package handlers

import (
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/views"
)

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
	c.JSON(http.StatusOK, jsonList(invs, toInvitationJSON))
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

func (h *Handler) setPasswordURL(token string) string {
	return h.cfg.PublicURL + "/set-password/" + token
}

// passwordLinkJSON is a freshly issued set-password link.
type passwordLinkJSON struct {
	Email          string `json:"email"`
	SetPasswordURL string `json:"setPasswordUrl"`
}

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
