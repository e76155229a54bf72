package handlers

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/views"
)

// --- JSON: /organizations/{orgId}/teams ---

func (h *Handler) listTeams(c *gin.Context) {
	org := scopeOf(c).OrgID
	teams, err := models.ListTeams(c.Request.Context(), h.db, org)
	if err != nil {
		h.fail(c, err)
		return
	}
	ptrs := make([]*models.Team, len(teams))
	for i := range teams {
		ptrs[i] = &teams[i]
	}
	if err := h.fillOnboarding(c.Request.Context(), org, ptrs...); err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, jsonList(teams, toTeamJSON))
}

type teamRequest struct {
	Name       *string `json:"name"`
	Onboarding *string `json:"onboarding"`
}

func (h *Handler) createTeam(c *gin.Context) {
	org := scopeOf(c).OrgID
	var req teamRequest
	if err := decodeJSON(c, &req); err != nil {
		h.fail(c, err)
		return
	}
	team, err := models.CreateTeam(c.Request.Context(), h.db, org, deref(req.Name), h.actor(c))
	if errors.Is(err, models.ErrConflict) {
		err = models.Conflict("team_exists", "a team with that name already exists", nil)
	}
	if err != nil {
		h.fail(c, err)
		return
	}
	if req.Onboarding != nil && *req.Onboarding != "" {
		team, err = models.UpdateTeam(c.Request.Context(), h.db, org, team.ID, team.Name, *req.Onboarding, h.actor(c))
		if err != nil {
			h.fail(c, err)
			return
		}
	}
	h.answerTeam(c, http.StatusCreated, org, team)
}

func (h *Handler) updateTeam(c *gin.Context) {
	org := scopeOf(c).OrgID
	var req teamRequest
	team, err := h.readTeamChange(c, org, &req, nil)
	if err != nil {
		h.fail(c, err)
		return
	}
	name, onboarding := team.Name, team.Onboarding
	if req.Name != nil {
		name = *req.Name
	}
	if req.Onboarding != nil {
		onboarding = *req.Onboarding
	}
	team, err = models.UpdateTeam(c.Request.Context(), h.db, org, team.ID, name, onboarding, h.actor(c))
	if errors.Is(err, models.ErrConflict) {
		err = models.Conflict("team_exists", "a team with that name already exists", nil)
	}
	if err != nil {
		h.fail(c, err)
		return
	}
	h.answerTeam(c, http.StatusOK, org, team)
}

// readTeamChange reads a change to the team :teamId of org: the id, then the
// JSON body into req and its check (when not nil), then the team as it is;
// the first error wins.
func (h *Handler) readTeamChange(c *gin.Context, org uuid.UUID, req any, check func() error) (*models.Team, error) {
	id, err := pathUUID(c, "teamId")
	if err != nil {
		return nil, err
	}
	if err := decodeJSON(c, req); err != nil {
		return nil, err
	}
	if check != nil {
		if err := check(); err != nil {
			return nil, err
		}
	}
	return models.GetTeam(c.Request.Context(), h.db, org, id)
}

// answerTeam answers team with its onboarding document filled in.
func (h *Handler) answerTeam(c *gin.Context, status int, org uuid.UUID, team *models.Team) {
	if err := h.fillOnboarding(c.Request.Context(), org, team); err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(status, toTeamJSON(team))
}

// pathTeam is the team :teamId of org.
func (h *Handler) pathTeam(c *gin.Context, org uuid.UUID) (*models.Team, error) {
	id, err := pathUUID(c, "teamId")
	if err != nil {
		return nil, err
	}
	return models.GetTeam(c.Request.Context(), h.db, org, id)
}

// --- HTML: Settings → Teams ---

func (h *Handler) teamsPage(c *gin.Context) {
	s, n := h.page(c, "Teams", "settings")
	h.renderTeams(c, s, n, http.StatusOK, views.TeamForm{})
}

func (h *Handler) renderTeams(c *gin.Context, s scope, n views.Nav, status int, f views.TeamForm) {
	teams, err := models.ListTeams(c.Request.Context(), h.db, s.OrgID)
	if err != nil {
		h.fail(c, err)
		return
	}
	h.renderStatus(c, status, views.TeamsPage(n, teams, f))
}

func (h *Handler) teamsCreate(c *gin.Context) {
	s, n := h.page(c, "Teams", "settings")
	name := c.PostForm("name")
	_, err := models.CreateTeam(c.Request.Context(), h.db, s.OrgID, name, h.actor(c))
	if errors.Is(err, models.ErrConflict) {
		err = models.Invalid("name", "a team with that name already exists")
	}
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		h.renderTeams(c, s, n, http.StatusBadRequest, views.TeamForm{Name: name, Errors: ve.Fields})
		return
	}
	if err != nil {
		h.fail(c, err)
		return
	}
	seeOther(c, "/settings/teams")
}

func (h *Handler) teamEditPage(c *gin.Context) {
	s, n := h.page(c, "Team", "settings")
	t, err := h.pathTeam(c, s.OrgID)
	if err != nil {
		h.fail(c, err)
		return
	}
	if err := h.fillOnboarding(c.Request.Context(), s.OrgID, t); err != nil {
		h.fail(c, err)
		return
	}
	f := views.TeamForm{Name: t.Name, Onboarding: t.Onboarding, Preview: renderMarkdown(t.Onboarding)}
	h.render(c, views.TeamEditPage(n, *t, f, c.Query("saved") == "1"))
}

// teamPreview renders the posted onboarding document as the team page's
// preview (an htmx fragment): sanitized HTML, nothing stored.
func (h *Handler) teamPreview(c *gin.Context) {
	if _, err := h.pathTeam(c, scopeOf(c).OrgID); err != nil {
		h.fail(c, err)
		return
	}
	h.render(c, views.OnboardingPreview(renderMarkdown(c.PostForm("onboarding"))))
}

func (h *Handler) teamUpdate(c *gin.Context) {
	s, n := h.page(c, "Team", "settings")
	t, err := h.pathTeam(c, s.OrgID)
	if err != nil {
		h.fail(c, err)
		return
	}
	f := views.TeamForm{Name: c.PostForm("name"), Onboarding: c.PostForm("onboarding")}
	f.Preview = renderMarkdown(f.Onboarding)
	_, err = models.UpdateTeam(c.Request.Context(), h.db, s.OrgID, t.ID, f.Name, f.Onboarding, h.actor(c))
	if errors.Is(err, models.ErrConflict) {
		err = models.Invalid("name", "a team with that name already exists")
	}
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		f.Errors = ve.Fields
		h.renderStatus(c, http.StatusBadRequest, views.TeamEditPage(n, *t, f, false))
		return
	}
	if err != nil {
		h.fail(c, err)
		return
	}
	seeOther(c, "/settings/teams/"+t.ID.String()+"?saved=1")
}
