package handlers

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/views"
)

// --- JSON: /organizations/{orgId}/columns ---

func (h *Handler) listColumnsAPI(c *gin.Context) {
	org := scopeOf(c).OrgID
	cols, err := models.ListColumns(c.Request.Context(), h.db, org)
	if err != nil {
		h.fail(c, err)
		return
	}
	if cols == nil {
		cols = []models.BoardColumn{}
	}
	c.JSON(http.StatusOK, jsonList(cols, toColumnJSON))
}

type columnRequest struct {
	ID               string  `json:"id"`
	Name             *string `json:"name"`
	AgentCanRead     *bool   `json:"agentCanRead"`
	AgentCanModerate *bool   `json:"agentCanModerate"`
	Position         *int    `json:"position"`
}

func (h *Handler) createColumnAPI(c *gin.Context) {
	org := scopeOf(c).OrgID
	var req columnRequest
	if err := decodeJSON(c, &req); err != nil {
		h.fail(c, err)
		return
	}
	col, err := models.CreateColumn(c.Request.Context(), h.db, org, models.ColumnInput{
		ID: req.ID, Name: deref(req.Name), AgentCanRead: derefBool(req.AgentCanRead), AgentCanModerate: derefBool(req.AgentCanModerate),
	}, h.actor(c))
	if err != nil {
		h.fail(c, err)
		return
	}
	if req.Position != nil {
		if col, err = models.UpdateColumn(c.Request.Context(), h.db, org, col.ID, models.ColumnPatch{Position: req.Position}, h.actor(c)); err != nil {
			h.fail(c, err)
			return
		}
	}
	c.JSON(http.StatusCreated, toColumnJSON(col))
}

func (h *Handler) updateColumnAPI(c *gin.Context) {
	org := scopeOf(c).OrgID
	var req columnRequest
	if err := decodeJSON(c, &req); err != nil {
		h.fail(c, err)
		return
	}
	col, err := models.UpdateColumn(c.Request.Context(), h.db, org, c.Param("columnId"), models.ColumnPatch{
		Name: req.Name, AgentCanRead: req.AgentCanRead, AgentCanModerate: req.AgentCanModerate, Position: req.Position,
	}, h.actor(c))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toColumnJSON(col))
}

func (h *Handler) deleteColumnAPI(c *gin.Context) {
	org := scopeOf(c).OrgID
	err := models.DeleteColumn(c.Request.Context(), h.db, org, c.Param("columnId"), h.actor(c))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"success": true})
}

// --- HTML: /settings/columns ---

func (h *Handler) columnsData(c *gin.Context, s scope) (views.ColumnsData, error) {
	cols, err := models.ListColumns(c.Request.Context(), h.db, s.OrgID)
	return views.ColumnsData{Columns: cols, CanWrite: s.admin()}, err
}

func (h *Handler) columnsPage(c *gin.Context) {
	s, n := h.page(c, "Board columns", "settings")
	d, err := h.columnsData(c, s)
	if err != nil {
		h.fail(c, err)
		return
	}
	h.render(c, views.ColumnsPage(n, d))
}

func (h *Handler) columnsCreate(c *gin.Context) {
	s, n := h.page(c, "Board columns", "settings")
	f := views.ColumnForm{ID: c.PostForm("id"), Name: c.PostForm("name"), Read: c.PostForm("agentCanRead") == "true", Moderate: c.PostForm("agentCanModerate") == "true"}
	_, err := models.CreateColumn(c.Request.Context(), h.db, s.OrgID, models.ColumnInput{ID: f.ID, Name: f.Name, AgentCanRead: f.Read, AgentCanModerate: f.Moderate}, h.actor(c))
	var se *models.StateError
	if errors.As(err, &se) && se.Code == "column_exists" {
		err = models.Invalid("id", "a column with this id already exists; choose another id")
	}
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		d, derr := h.columnsData(c, s)
		if derr != nil {
			h.fail(c, derr)
			return
		}
		f.Errors = ve.Fields
		d.Form = f
		h.renderStatus(c, http.StatusBadRequest, views.ColumnsPage(n, d))
		return
	}
	if err != nil {
		h.fail(c, err)
		return
	}
	seeOther(c, "/settings/columns")
}

// columnActionHTML serves POST /settings/columns/{columnId}[/up|/down|/delete]:
// save (name and defaults), move, delete. htmx gets the table, a plain post 303.
func (h *Handler) columnActionHTML(action string) gin.HandlerFunc {
	return func(c *gin.Context) {
		s := scopeOf(c)
		var err error
		id := c.Param("columnId")
		switch action {
		case "save":
			name := c.PostForm("name")
			read, moderate := c.PostForm("agentCanRead") == "true", c.PostForm("agentCanModerate") == "true"
			_, err = models.UpdateColumn(c.Request.Context(), h.db, s.OrgID, id, models.ColumnPatch{Name: &name, AgentCanRead: &read, AgentCanModerate: &moderate}, h.actor(c))
		case "up":
			err = models.MoveColumn(c.Request.Context(), h.db, s.OrgID, id, -1, h.actor(c))
		case "down":
			err = models.MoveColumn(c.Request.Context(), h.db, s.OrgID, id, +1, h.actor(c))
		case "delete":
			err = models.DeleteColumn(c.Request.Context(), h.db, s.OrgID, id, h.actor(c))
		}
		if err != nil {
			h.fail(c, err)
			return
		}
		if isHTMX(c) {
			d, err := h.columnsData(c, s)
			if err != nil {
				h.fail(c, err)
				return
			}
			toast(c, "Saved.", "success")
			h.render(c, views.ColumnsTable(d))
			return
		}
		seeOther(c, "/settings/columns")
	}
}
