package handlers

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/views"
)

// --- JSON: /organizations ---

func (h *Handler) listOrgs(c *gin.Context) {
	orgs, err := h.visibleOrgs(c, currentPrincipal(c))
	if err != nil {
		h.fail(c, err)
		return
	}
	if orgs == nil {
		orgs = []models.Organization{}
	}
	c.JSON(http.StatusOK, jsonList(orgs, toOrganizationJSON))
}

type orgRequest struct {
	Title string `json:"title"`
	Color string `json:"color"`
}

// createOrg is for platform admins only.
func (h *Handler) createOrg(c *gin.Context) {
	p := currentPrincipal(c)
	if !p.User.IsSA {
		h.fail(c, newErr(http.StatusForbidden, "forbidden", "only platform admins create organizations"))
		return
	}
	var req orgRequest
	if err := decodeJSON(c, &req); err != nil {
		h.fail(c, err)
		return
	}
	// A title already in use (trimmed, any case) is a 409 org_exists, from
	// the unique index: two concurrent creates cannot both pass.
	org, err := models.CreateOrg(c.Request.Context(), h.db, req.Title, req.Color, &p.User.ID, h.actor(c))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, toOrganizationJSON(org))
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
	c.JSON(http.StatusOK, toOrganizationJSON(org))
}

// --- HTML: the Platform page's organization forms ---

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
