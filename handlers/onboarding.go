package handlers

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/microcosm-cc/bluemonday"
	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"

	"github.com/agentroster/agentroster/handlers/mcpconfig"
	"github.com/agentroster/agentroster/models"
)

// A team's onboarding document tells a runtime how to join the team. A team
// whose document is empty (never edited, or cleared) has the default one,
// written on each read from PUBLIC_URL, the org and the team, so its URLs
// follow the deployment; saving an edited document stores it as written.

// defaultOnboarding is the default document of team in org.
func (h *Handler) defaultOnboarding(org *models.Organization, team *models.Team) string {
	base := strings.TrimRight(h.cfg.PublicURL, "/")
	api := base + "/api/v1"
	teamID := team.ID.String()
	var b strings.Builder
	fmt.Fprintf(&b, "# Joining %s, team %s\n\n", org.Title, team.Name)
	fmt.Fprintf(&b, "This document tells an agent runtime how to join the **%s** organization as a member of the "+
		"**%s** team on the Agent Roster server at %s. An operator approves every agent before it may work.\n\n", org.Title, team.Name, base)
	b.WriteString("## What the runtime does\n\n")
	b.WriteString("1. **Join or register.** With an invite link from an operator, run `byob join <invite-url>`, or call " +
		"`POST " + api + "/invites/{token}/join` and then claim the API key with `POST " + api + "/join-requests/{id}/claim` " +
		"until the request is approved. With a team API key, register instead: `POST " + api + "/teams/" + teamID + "/agents/register` " +
		"with `{\"id\": \"<agent-id>\", \"title\": \"<a name>\"}`.\n")
	b.WriteString("2. **Poll the status** until an operator approves the agent: `GET " + api + "/agents/{agentId}/status` " +
		"(`pending`, then `approved`; `stopped` means stop working).\n")
	fmt.Fprintf(&b, "3. **Go online** with `POST %s/agents/{agentId}/online`, and repeat it (or the status poll) well within %s "+
		"to stay online; `POST %s/agents/{agentId}/offline` when the runtime stops.\n", api, window(h.cfg.PresenceWindow), api)
	b.WriteString("4. **Read the permissions** of the agent (the board columns it may read or moderate): `GET " + api + "/agents/{agentId}/permissions`.\n")
	b.WriteString("5. **Read this document** again at any time: `GET " + api + "/teams/" + teamID + "/onboarding`.\n\n")
	b.WriteString("Every call sends the API key as `Authorization: ApiKey <key>` (or `Authorization: Bearer <key>`).\n\n")
	b.WriteString("## MCP\n\n")
	b.WriteString("Runtimes that speak the Model Context Protocol add one server instead: the endpoint is `" + mcpconfig.Endpoint(base) +
		"` (Streamable HTTP) with the same key. Its tools are `whoami`, `register_agent`, `get_status`, `go_online`, `go_offline`, " +
		"`get_permissions`, `get_onboarding` and `list_agents`; this document is the resource `onboarding://team/" + teamID + "`.\n\n")
	b.WriteString("```json\n" + mcpconfig.Block(base, "<your API key>") + "\n```\n\n")
	b.WriteString("Or on the command line: `" + mcpconfig.AddCommand(base, "<your API key>") + "`. " +
		"`byob mcp-config` prints this block with the key it keeps.\n")
	return b.String()
}

// window writes a presence window the way people do: 2m, 90s, 1h30m.
func window(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// onboardingJSON is the answer of GET /teams/{teamId}/onboarding.
type onboardingJSON struct {
	TeamID   uuid.UUID `json:"teamId"`
	TeamName string    `json:"teamName"`
	Content  string    `json:"content"`
}

// onboarding is the document of team in org (404 when the team is not in it).
func (h *Handler) onboarding(ctx context.Context, org, team uuid.UUID) (onboardingJSON, error) {
	t, err := models.GetTeam(ctx, h.db, org, team)
	if err != nil {
		return onboardingJSON{}, err
	}
	if err := h.fillOnboarding(ctx, org, t); err != nil {
		return onboardingJSON{}, err
	}
	return onboardingJSON{TeamID: t.ID, TeamName: t.Name, Content: t.Onboarding}, nil
}

// fillOnboarding gives the teams of org without a document the default one.
func (h *Handler) fillOnboarding(ctx context.Context, org uuid.UUID, teams ...*models.Team) error {
	var o *models.Organization
	for _, t := range teams {
		if t.Onboarding != "" {
			continue
		}
		if o == nil {
			var err error
			if o, err = models.GetOrg(ctx, h.db, org); err != nil {
				return err
			}
		}
		t.Onboarding = h.defaultOnboarding(o, t)
	}
	return nil
}

var (
	markdown = goldmark.New(goldmark.WithExtensions(extension.GFM))
	// sanitizer keeps what user-generated markdown may show: no script,
	// style, event handler or javascript: URL survives it.
	sanitizer = bluemonday.UGCPolicy()
)

// renderMarkdown renders an onboarding document to HTML safe to insert in a
// page: goldmark escapes raw HTML by default and bluemonday removes whatever
// could still run.
func renderMarkdown(src string) string {
	var buf bytes.Buffer
	if err := markdown.Convert([]byte(src), &buf); err != nil {
		return ""
	}
	return sanitizer.Sanitize(buf.String())
}

type onboardingRequest struct {
	Content *string `json:"content"`
}

// updateOnboarding replaces a team's onboarding document (the Agelo web
// app's call); an empty content restores the default document.
func (h *Handler) updateOnboarding(c *gin.Context) {
	org := scopeOf(c).OrgID
	var req onboardingRequest
	team, err := h.readTeamChange(c, org, &req, func() error {
		if req.Content == nil {
			return models.Invalid("content", "is required")
		}
		return nil
	})
	if err != nil {
		h.fail(c, err)
		return
	}
	if team, err = models.UpdateTeam(c.Request.Context(), h.db, org, team.ID, team.Name, *req.Content, h.actor(c)); err != nil {
		h.fail(c, err)
		return
	}
	h.answerTeam(c, http.StatusOK, org, team)
}

// teamOnboarding answers a team's onboarding document to a key of its org or
// to an operator who can see the org.
func (h *Handler) teamOnboarding(c *gin.Context) {
	id, err := pathUUID(c, "teamId")
	if err != nil {
		h.fail(c, err)
		return
	}
	doc, err := h.onboarding(c.Request.Context(), scopeOf(c).OrgID, id)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, doc)
}
