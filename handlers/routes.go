package handlers

import (
	"io/fs"
	"net/http"
	"strconv"
	"strings"

	"github.com/a-h/templ"
	"github.com/gin-gonic/gin"

	"github.com/agentroster/agentroster/static"
	"github.com/agentroster/agentroster/views"
)

// Routes returns the whole route table.
func (h *Handler) Routes() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.RedirectTrailingSlash = false
	// Handlers pass the gin context to the models as their context.Context:
	// it must carry the request's cancellation and deadline.
	r.ContextWithFallback = true
	if err := r.SetTrustedProxies(h.cfg.TrustedProxies); err != nil {
		h.log.Warn("invalid TRUSTED_PROXIES; trusting none", "err", err)
		r.SetTrustedProxies(nil)
	}
	r.Use(h.requestContext, h.recoverPanics, securityHeaders, h.limitBody, h.crossOrigin(), h.rejectBadText, h.announceAfter)
	r.NoRoute(func(c *gin.Context) { h.fail(c, errNotFound) })
	r.NoMethod(func(c *gin.Context) {
		h.fail(c, newErr(http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed"))
	})

	// Operational.
	r.GET("/healthz", h.healthz)
	r.GET("/readyz", h.readyz)
	r.StaticFileFS("/favicon.ico", "favicon.svg", http.FS(static.FS))
	r.GET("/static/*path", h.serveStatic)

	// Operator pages (session cookie).
	r.GET("/", func(c *gin.Context) { c.Redirect(http.StatusSeeOther, "/agents") })
	r.GET("/login", noStore, h.loginPage)
	r.POST("/login", noStore, h.loginSubmit)
	r.POST("/logout", h.logout)
	ui := r.Group("/", noStore, h.requireUser)
	ui.POST("/orgs/switch", h.switchOrg)
	ui.GET("/events", h.events)
	ui.GET("/nav/pending-badge", h.pendingBadge)
	ui.GET("/settings/teams", h.teamsPage)
	ui.POST("/settings/teams", h.teamsCreate)
	ui.GET("/settings/teams/:teamId", h.teamEditPage)
	ui.POST("/settings/teams/:teamId", h.teamUpdate)

	// JSON API.
	api := r.Group("/api/v1", noStore)
	api.POST("/auth/login", h.apiLogin)

	// Management: session cookie or bearer token.
	mg := api.Group("", h.requireUser)
	mg.GET("/organizations", h.listOrgs)
	mg.POST("/organizations", h.createOrg)
	mg.GET("/organizations/:orgId/teams", h.listTeams)
	mg.POST("/organizations/:orgId/teams", h.createTeam)
	mg.PATCH("/organizations/:orgId/teams/:teamId", h.updateTeam)

	// Agents, runtime API, API keys and board columns (issue 4).
	ui.GET("/agents", h.rosterPage)
	ui.GET("/agents/:agentId", h.agentDetailPage)
	ui.GET("/agents/:agentId/row", h.agentRowHTML)
	for _, action := range []string{"approve", "stop", "resume", "delete"} {
		ui.POST("/agents/:agentId/"+action, h.agentActionHTML(action))
	}
	ui.POST("/agents/:agentId/pickup", h.setPickupHTML)
	ui.POST("/agents/:agentId/permissions", h.setPermissionsHTML)
	ui.GET("/settings/api-keys", h.keysPage)
	ui.POST("/settings/api-keys", h.keysCreate)
	for _, action := range []string{"disable", "enable", "revoke"} {
		ui.POST("/settings/api-keys/:id/"+action, h.keyActionHTML(action))
	}
	ui.GET("/settings/columns", h.columnsPage)
	ui.POST("/settings/columns", h.columnsCreate)
	ui.POST("/settings/columns/:columnId", h.columnActionHTML("save"))
	for _, action := range []string{"up", "down", "delete"} {
		ui.POST("/settings/columns/:columnId/"+action, h.columnActionHTML(action))
	}
	rt := api.Group("", h.requireKey)
	rt.POST("/teams/:teamId/agents/register", h.registerAgent)
	rt.GET("/agents/:agentId/status", h.agentStatus)
	rt.GET("/agents/:agentId/permissions", h.agentPermissions)
	rt.POST("/agents/:agentId/online", h.agentOnline)
	rt.POST("/agents/:agentId/offline", h.agentOffline)
	rt.GET("/agent/orgs", h.requireLiveAgentKey, h.agentOrgs)
	rt.GET("/organizations/:orgId/agents/mcp/list", h.requireLiveAgentKey, h.agentList)
	api.GET("/teams/:teamId/onboarding", h.requireKeyOrUser, h.requireLiveAgentKey, h.teamOnboarding)
	for _, action := range []string{"approve", "stop", "resume"} {
		mg.PATCH("/agents/:agentId/"+action, h.agentActionAPI(action))
	}
	mg.DELETE("/agents/:agentId", h.deleteAgentAPI)
	mg.PATCH("/agents/:agentId/pickup", h.setPickupAPI)
	mg.PUT("/agents/:agentId/permissions", h.setPermissionsAPI)
	mg.GET("/organizations/:orgId/agents", h.listOrgAgents)
	mg.GET("/settings/api-keys", h.listKeysAPI)
	mg.POST("/settings/api-keys", h.createKeyAPI)
	mg.PATCH("/settings/api-keys/:id", h.updateKeyAPI)
	mg.DELETE("/settings/api-keys/:id", h.revokeKeyAPI)
	mg.GET("/organizations/:orgId/columns", h.listColumnsAPI)
	mg.POST("/organizations/:orgId/columns", h.createColumnAPI)
	mg.PATCH("/organizations/:orgId/columns/:columnId", h.updateColumnAPI)
	mg.DELETE("/organizations/:orgId/columns/:columnId", h.deleteColumnAPI)

	// Administration and operations (issue 10): members and roles, account,
	// set-password links, platform admin, audit, metrics, notifications.
	r.GET("/set-password/:token", noStore, h.setPasswordPage)
	r.POST("/set-password/:token", noStore, h.setPasswordSubmit)
	ui.GET("/settings/members", h.membersPage)
	ui.POST("/settings/members", h.membersAdd)
	ui.POST("/settings/members/:userId/role", h.memberAction("role"))
	ui.POST("/settings/members/:userId/remove", h.memberAction("remove"))
	ui.GET("/account", h.accountPage)
	ui.POST("/account/password", h.accountPassword)
	ui.GET("/platform", h.platformPage)
	ui.POST("/platform/orgs", h.platformCreateOrg)
	ui.POST("/platform/orgs/:orgId", h.platformUpdateOrg)
	ui.POST("/platform/users/:userId/sa", h.platformUserAction("sa"))
	ui.POST("/platform/users/:userId/disable", h.platformUserAction("disable"))
	mg.GET("/organizations/:orgId/members", h.listMembersAPI)
	mg.POST("/organizations/:orgId/members", h.addMemberAPI)
	mg.PATCH("/organizations/:orgId/members/:userId", h.updateMemberAPI)
	mg.DELETE("/organizations/:orgId/members/:userId", h.removeMemberAPI)
	mg.POST("/account/password", h.accountPasswordAPI)
	mg.PATCH("/organizations/:orgId", h.updateOrgAPI)
	mg.GET("/users", h.listUsersAPI)
	mg.PATCH("/users/:userId", h.updateUserAPI)
	r.GET("/metrics", h.metricsEndpoint())
	ui.GET("/audit", h.auditPage)
	ui.GET("/audit/export", h.auditExport)
	mg.GET("/audit", h.auditAPI)
	mg.GET("/audit/export", h.auditExport)
	ui.GET("/settings/notifications", h.notificationsPage)
	ui.POST("/settings/notifications", h.notificationsCreate)
	ui.GET("/settings/notifications/:endpointId", h.webhookLogPage)
	for _, action := range []string{"test", "enable", "disable", "delete"} {
		ui.POST("/settings/notifications/:endpointId/"+action, h.webhookActionHTML(action))
	}
	mg.GET("/organizations/:orgId/webhooks", h.listWebhooksAPI)
	mg.POST("/organizations/:orgId/webhooks", h.createWebhookAPI)
	mg.PATCH("/organizations/:orgId/webhooks/:endpointId", h.updateWebhookAPI)
	mg.DELETE("/organizations/:orgId/webhooks/:endpointId", h.deleteWebhookAPI)
	mg.POST("/organizations/:orgId/webhooks/:endpointId/test", h.testWebhookAPI)
	mg.GET("/organizations/:orgId/webhooks/:endpointId/deliveries", h.webhookDeliveriesAPI)
	// Invites and join requests (issue 3). The invite token or claim secret is
	// the runtime's credential; the management routes need an org admin.
	api.GET("/invites/:token", h.getInviteAPI)
	api.POST("/invites/:token/join", h.joinInviteAPI)
	api.POST("/join-requests/:id/claim", h.claimAPI)
	mg.GET("/internal/invites", h.listInvitesAPI)
	mg.POST("/internal/invites", h.createInviteAPI)
	mg.DELETE("/internal/invites/:id", h.deleteInviteAPI)
	mg.GET("/internal/join-requests", h.listJoinRequestsAPI)
	mg.POST("/internal/join-requests/:id/approve", h.decideJoinRequestAPI("approve"))
	mg.POST("/internal/join-requests/:id/reject", h.decideJoinRequestAPI("reject"))
	ui.GET("/agents/invites", h.invitesPage)
	ui.POST("/agents/invites", h.invitesCreate)
	ui.GET("/agents/invites/new", h.inviteFormHTML)
	ui.POST("/agents/invites/bulk", h.invitesBulk)
	ui.POST("/agents/invites/:id/delete", h.inviteDeleteHTML)
	ui.GET("/agents/join-requests", h.joinRequestsPage)
	for _, action := range []string{"approve", "reject", "reject-revoke"} {
		ui.POST("/agents/join-requests/:id/"+action, h.joinDecisionHTML(action))
	}
	r.GET("/invite/:token", noStore, h.invitePage)
	r.POST("/invite/:token", noStore, h.inviteJoinHTML)

	// OpenAPI contract and API reference (issue 7).
	api.GET("/openapi.json", h.openAPI)
	r.GET("/docs/api", h.apiDocsPage)

	return r
}

// serveStatic serves embedded assets; a request carrying the content hash
// (?v=) may be cached for a year.
func (h *Handler) serveStatic(c *gin.Context) {
	name := strings.TrimPrefix(c.Param("path"), "/")
	if !fs.ValidPath(name) || strings.Contains(name, "..") {
		h.fail(c, errNotFound)
		return
	}
	if fi, err := fs.Stat(static.FS, name); err != nil || fi.IsDir() {
		h.fail(c, errNotFound)
		return
	}
	if c.Query("v") != "" {
		c.Header("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		c.Header("Cache-Control", "public, max-age=300")
	}
	c.FileFromFS(name, http.FS(static.FS))
}

// errorPage is the full-page rendering of an error for a browser.
func errorPage(c *gin.Context, h *Handler, status int, message string) templ.Component {
	if p := currentPrincipal(c); p != nil {
		s, err := h.currentScope(c)
		if err == nil {
			return views.ErrorPage(h.nav(c, s, strconv.Itoa(status), ""), status, message)
		}
	}
	return views.BareError(status, message)
}

func itoa(n int) string { return strconv.Itoa(n) }
