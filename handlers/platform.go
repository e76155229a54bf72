package handlers

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/views"
)

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
	c.JSON(http.StatusOK, jsonList(users, toUserJSON))
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
	c.JSON(http.StatusOK, toUserJSON(u))
}
