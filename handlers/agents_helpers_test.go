package handlers

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/agentroster/agentroster/models"
)

// teamKey creates a team key of org (its default team) and returns it with its plaintext.
func (e *env) teamKey(org uuid.UUID) (*models.APIKey, string) {
	e.t.Helper()
	team, err := models.DefaultTeam(e.t.Context(), e.db, org)
	if err != nil {
		e.t.Fatal(err)
	}
	k, raw, err := models.CreateTeamKey(e.t.Context(), e.db, org, models.KeyInput{Name: "test key", Team: team.ID}, e.actor)
	if err != nil {
		e.t.Fatal(err)
	}
	return k, raw
}

// boundKey inserts a key bound to agent (as an invite would issue it).
func (e *env) boundKey(org uuid.UUID, agent string) (*models.APIKey, string) {
	e.t.Helper()
	a, err := models.GetAgent(e.t.Context(), e.db, org, agent)
	if err != nil {
		e.t.Fatal(err)
	}
	raw := models.NewAPIKey()
	k := &models.APIKey{OrgID: org, TeamID: a.TeamID, AgentID: &agent, Name: "bound", Prefix: raw[:12], KeyHash: models.Hash(raw), IsActive: true}
	if _, err := e.db.NewInsert().Model(k).Returning("*").Exec(e.t.Context()); err != nil {
		e.t.Fatal(err)
	}
	return k, raw
}

// agentIn registers agent id in org's default team and brings it to status.
func (e *env) agentIn(org uuid.UUID, id, status string) *models.Agent {
	e.t.Helper()
	ctx := e.t.Context()
	team, err := models.DefaultTeam(ctx, e.db, org)
	if err != nil {
		e.t.Fatal(err)
	}
	a, err := models.RegisterAgent(ctx, e.db, org, team.ID, models.RegisterInput{ID: id, Title: "Agent " + id}, e.actor)
	if err != nil {
		e.t.Fatal(err)
	}
	steps := map[string][]string{models.StatusApproved: {"approve"}, models.StatusStopped: {"approve", "stop"}}[status]
	for _, s := range steps {
		if a, err = models.TransitionAgent(ctx, e.db, org, id, s, e.actor); err != nil {
			e.t.Fatal(err)
		}
	}
	return a
}

// dbAgent reads an agent straight from the database (nil when it is gone).
func (e *env) dbAgent(org uuid.UUID, id string) *models.Agent {
	e.t.Helper()
	a, err := models.GetAgent(e.t.Context(), e.db, org, id)
	if err != nil {
		return nil
	}
	return a
}

// otherOrg creates a second org with its own admin and returns the org and the admin's email.
func (e *env) otherOrg(title, adminEmail string) *models.Organization {
	e.t.Helper()
	u, err := models.CreateUser(e.t.Context(), e.db, adminEmail, testPassword, false, e.actor)
	if err != nil {
		e.t.Fatal(err)
	}
	org, err := models.CreateOrg(e.t.Context(), e.db, title, "", &u.ID, e.actor)
	if err != nil {
		e.t.Fatal(err)
	}
	return org
}

// htmx posts a same-origin form as htmx does and returns status, headers and body.
func (e *env) htmx(c *http.Client, path string, v url.Values) (int, http.Header, string) {
	e.t.Helper()
	return e.post(c, path, v, "HX-Request", "true")
}

// post posts a same-origin form with extra headers and returns status, headers and body.
func (e *env) post(c *http.Client, path string, v url.Values, headers ...string) (int, http.Header, string) {
	e.t.Helper()
	resp, err := c.Do(formRequest(e.srv.URL, path, v, headers...))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// errorBody decodes the SPEC error body.
type errorBody struct {
	Error struct {
		Code    string         `json:"code"`
		Details map[string]any `json:"details"`
	} `json:"error"`
}

func (r *result) errorDetails() map[string]any {
	r.t.Helper()
	var b errorBody
	r.decode(&b)
	return b.Error.Details
}

func isRFC3339UTCSeconds(t *testing.T, s string) {
	t.Helper()
	ts, err := time.Parse(time.RFC3339, s)
	if err != nil || !strings.HasSuffix(s, "Z") || strings.Contains(s, ".") || ts.Location() != time.UTC {
		t.Fatalf("time %q is not RFC 3339 UTC with second precision", s)
	}
}
