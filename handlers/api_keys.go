package handlers

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/views"
)

func keyRows(keys []models.APIKey, teams map[uuid.UUID]string) []views.KeyRow {
	now := time.Now()
	rows := make([]views.KeyRow, len(keys))
	for i, k := range keys {
		rows[i] = views.KeyRow{Key: k, TeamName: teams[k.TeamID], State: k.State(now)}
	}
	return rows
}

// --- JSON ---

// listKeysAPI serves GET /settings/api-keys?orgId=.
func (h *Handler) listKeysAPI(c *gin.Context) {
	s := scopeOf(c)
	keys, err := models.ListAPIKeys(c.Request.Context(), h.db, models.KeyFilter{Org: s.OrgID, Agent: c.Query("agentId")})
	if err != nil {
		h.fail(c, err)
		return
	}
	out := make([]keyJSON, len(keys))
	for i := range keys {
		out[i] = toKeyJSON(&keys[i], "")
	}
	c.JSON(http.StatusOK, out)
}

type createKeyRequest struct {
	Name      string     `json:"name"`
	OrgID     string     `json:"orgId"`
	TeamID    string     `json:"teamId"`
	ExpiresAt *time.Time `json:"expiresAt"`
}

// createKeyAPI serves POST /settings/api-keys {name, orgId, teamId?, expiresAt?}
// → 201 with the plaintext key, the only time it is shown.
func (h *Handler) createKeyAPI(c *gin.Context) {
	var req createKeyRequest
	if err := decodeJSON(c, &req); err != nil {
		h.fail(c, err)
		return
	}
	s := scopeOf(c)
	if err := bodyOrgMatches(req.OrgID, s); err != nil {
		h.fail(c, err)
		return
	}
	team, err := h.keyTeam(c, s.OrgID, req.TeamID)
	if err != nil {
		h.fail(c, err)
		return
	}
	k, raw, err := models.CreateTeamKey(c.Request.Context(), h.db, s.OrgID, models.KeyInput{Name: req.Name, Team: team, ExpiresAt: req.ExpiresAt}, h.actor(c))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, toKeyJSON(k, raw))
}

// keyTeam is the team a new key belongs to: the given one, or the org's default.
func (h *Handler) keyTeam(c *gin.Context, org uuid.UUID, teamID string) (uuid.UUID, error) {
	if teamID == "" {
		t, err := models.DefaultTeam(c.Request.Context(), h.db, org)
		if err != nil {
			return uuid.Nil, err
		}
		return t.ID, nil
	}
	id, err := uuid.Parse(teamID)
	if err != nil {
		return uuid.Nil, models.Invalid("teamId", "must be a UUID")
	}
	return id, nil
}

// updateKeyAPI serves PATCH /settings/api-keys/{id} {isActive}.
func (h *Handler) updateKeyAPI(c *gin.Context) {
	var req struct {
		IsActive *bool `json:"isActive"`
	}
	if err := decodeJSON(c, &req); err != nil {
		h.fail(c, err)
		return
	}
	if req.IsActive == nil {
		h.fail(c, models.Invalid("isActive", "is required (true or false)"))
		return
	}
	k, err := h.keyAction(c, *req.IsActive, false)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toKeyJSON(k, ""))
}

// revokeKeyAPI serves DELETE /settings/api-keys/{id}: revoke, idempotent.
func (h *Handler) revokeKeyAPI(c *gin.Context) {
	if _, err := h.keyAction(c, false, true); err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"success": true})
}

// keyAction revokes the key :id of the request's org, or turns it on or off:
// the logic behind the JSON routes and the key list's buttons.
func (h *Handler) keyAction(c *gin.Context, active, revoke bool) (*models.APIKey, error) {
	org := scopeOf(c).OrgID
	id, err := pathUUID(c, "id")
	if err != nil {
		return nil, err
	}
	defer h.forget(org, models.EventAPIKey, id.String())
	if revoke {
		return models.RevokeAPIKey(c.Request.Context(), h.db, org, id, h.actor(c))
	}
	return models.SetAPIKeyActive(c.Request.Context(), h.db, org, id, active, h.actor(c))
}

// --- HTML ---

func (h *Handler) keysData(c *gin.Context, s scope) (views.APIKeysData, error) {
	d := views.APIKeysData{CanWrite: s.admin()}
	teams, err := models.ListTeams(c.Request.Context(), h.db, s.OrgID)
	if err != nil {
		return d, err
	}
	keys, err := models.ListAPIKeys(c.Request.Context(), h.db, models.KeyFilter{Org: s.OrgID})
	if err != nil {
		return d, err
	}
	d.Teams, d.Rows = teams, keyRows(keys, teamNames(teams))
	return d, nil
}

// keysPage serves GET /settings/api-keys.
func (h *Handler) keysPage(c *gin.Context) {
	s, n := h.page(c, "API keys", "settings")
	d, err := h.keysData(c, s)
	if err != nil {
		h.fail(c, err)
		return
	}
	h.render(c, views.APIKeysPage(n, d))
}

// expiryFromPreset turns the form's preset (days or "never") into a time.
func expiryFromPreset(p string) (*time.Time, error) {
	if p == "never" {
		return nil, nil
	}
	for _, e := range views.ExpiryPresets {
		if e.Value == p {
			days, _ := strconv.Atoi(p)
			t := time.Now().AddDate(0, 0, days)
			return &t, nil
		}
	}
	return nil, models.Invalid("expiry", "choose one of the offered lifetimes")
}

// keysCreate serves POST /settings/api-keys. The answer carries the plaintext
// key once: htmx gets the section, a plain post the whole page (no redirect,
// so the key is never in a URL and a reload shows the list without it).
func (h *Handler) keysCreate(c *gin.Context) {
	s, n := h.page(c, "API keys", "settings")
	f := views.KeyForm{Name: c.PostForm("name"), TeamID: c.PostForm("teamId"), Expiry: c.PostForm("expiry")}
	k, raw, err := h.createKeyHTML(c, s, f)
	var ve *models.ValidationError
	if err != nil && !errors.As(err, &ve) {
		h.fail(c, err)
		return
	}
	d, derr := h.keysData(c, s)
	if derr != nil {
		h.fail(c, derr)
		return
	}
	status := http.StatusOK
	if ve != nil {
		f.Errors = ve.Fields
		d.Form = f
		if !isHTMX(c) {
			status = http.StatusBadRequest
		}
	} else {
		d.NewKey = &views.NewKey{Raw: raw, Name: k.Name, Prefix: k.Prefix}
	}
	if isHTMX(c) {
		h.render(c, views.APIKeysSection(d))
		return
	}
	h.renderStatus(c, status, views.APIKeysPage(n, d))
}

// createKeyHTML creates the key the form describes.
func (h *Handler) createKeyHTML(c *gin.Context, s scope, f views.KeyForm) (*models.APIKey, string, error) {
	exp, err := expiryFromPreset(f.Expiry)
	if err != nil {
		return nil, "", err
	}
	team, err := h.keyTeam(c, s.OrgID, f.TeamID)
	if err != nil {
		return nil, "", err
	}
	return models.CreateTeamKey(c.Request.Context(), h.db, s.OrgID, models.KeyInput{Name: f.Name, Team: team, ExpiresAt: exp}, h.actor(c))
}

// keyActionHTML serves POST /settings/api-keys/{id}/disable|enable|revoke.
// htmx gets the updated row; a plain post goes back to the list (or to the
// agent page when the button was there).
func (h *Handler) keyActionHTML(action string) gin.HandlerFunc {
	return func(c *gin.Context) {
		org := scopeOf(c).OrgID
		k, err := h.keyAction(c, action == "enable", action == "revoke")
		if err != nil {
			h.fail(c, err)
			return
		}
		agent, fromAgent := strings.CutPrefix(c.PostForm("from"), "agent:")
		if isHTMX(c) {
			name := ""
			if t, err := models.GetTeam(c.Request.Context(), h.db, org, k.TeamID); err == nil {
				name = t.Name
			}
			row := views.KeyRow{Key: *k, TeamName: name, State: k.State(time.Now())}
			h.render(c, views.KeyRowView(row, true, !fromAgent))
			return
		}
		if fromAgent && models.ValidAgentID(agent) {
			seeOther(c, "/agents/"+url.PathEscape(agent))
			return
		}
		seeOther(c, "/settings/api-keys")
	}
}
