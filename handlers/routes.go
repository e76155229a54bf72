package handlers

import (
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
)

// Routes returns the whole route table: each route with the access it needs
// (who may call it and where its organization comes from, see authz.go),
// ordered by audience, then resource.
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
	r.Use(h.requestContext, h.recoverPanics, h.securityHeaders, h.limitBody, h.crossOrigin(), h.rejectBadText, h.announceAfter)
	r.NoRoute(func(c *gin.Context) { h.fail(c, errNotFound) })
	r.NoMethod(func(c *gin.Context) {
		h.fail(c, newErr(http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed"))
	})
	h.policies = map[string]access{}
	root := routeGroup{h: h, g: &r.RouterGroup}

	// Browser: the operator screens (session cookie). Within each audience the
	// routes go by resource, in the same order, each naming its file.
	ui := root.group("/", noStore)
	// Sign-in, the org switcher and live updates (auth.go, events.go).
	ui.GET("/", public, func(c *gin.Context) { c.Redirect(http.StatusSeeOther, "/agents") })
	ui.GET("/login", public, h.loginPage)
	ui.POST("/login", public, h.loginSubmit)
	ui.POST("/logout", public, h.logout)
	ui.POST("/orgs/switch", viewerOf(orgBody), h.switchOrg)
	ui.GET("/events", viewerOf(orgCurrent), h.events)
	// Account (account.go).
	ui.GET("/account", operator, h.accountPage)
	ui.POST("/account/password", operator, h.accountPassword)
	ui.POST("/account/invitations/:id/accept", operator, h.decideInvitationHTML("accept"))
	ui.POST("/account/invitations/:id/decline", operator, h.decideInvitationHTML("decline"))
	// Agents (agents.go).
	ui.GET("/nav/pending-badge", viewerOf(orgCurrent), h.pendingBadge)
	ui.GET("/agents", viewerOf(orgCurrent), h.rosterPage)
	ui.GET("/agents/:agentId", viewerOf(orgOfAgent), h.agentDetailPage)
	ui.GET("/agents/:agentId/row", viewerOf(orgCurrent), h.agentRowHTML) // the roster page's org: a deleted agent's row empties
	for _, action := range []string{"approve", "stop", "resume", "delete"} {
		ui.POST("/agents/:agentId/"+action, adminOf(orgOfAgent), h.agentActionHTML(action))
	}
	ui.POST("/agents/:agentId/pickup", adminOf(orgOfAgent), h.setPickupHTML)
	ui.POST("/agents/:agentId/permissions", adminOf(orgOfAgent), h.setPermissionsHTML)
	// Invites (invites.go).
	ui.GET("/agents/invites", viewerOf(orgCurrent), h.invitesPage)
	ui.POST("/agents/invites", adminOf(orgCurrent), h.invitesCreate)
	ui.GET("/agents/invites/new", adminOf(orgCurrent), h.inviteFormHTML)
	ui.POST("/agents/invites/bulk", adminOf(orgCurrent), h.invitesBulk)
	ui.POST("/agents/invites/:id/delete", adminOf(orgOfInvite), h.inviteDeleteHTML)
	// Join requests (join_requests.go).
	ui.GET("/agents/join-requests", viewerOf(orgCurrent), h.joinRequestsPage)
	for _, action := range []string{"approve", "reject", "reject-revoke"} {
		ui.POST("/agents/join-requests/:id/"+action, adminOf(orgOfJoinRequest), h.joinDecisionHTML(action))
	}
	ui.POST("/agents/join-requests/:id/reissue", adminOf(orgOfJoinRequest), h.reissueClaimHTML)
	// Teams (teams.go).
	ui.GET("/settings/teams", viewerOf(orgCurrent), h.teamsPage)
	ui.POST("/settings/teams", adminOf(orgCurrent), h.teamsCreate)
	ui.GET("/settings/teams/:teamId", viewerOf(orgCurrent), h.teamEditPage)
	ui.POST("/settings/teams/:teamId", adminOf(orgCurrent), h.teamUpdate)
	ui.POST("/settings/teams/:teamId/preview", viewerOf(orgCurrent), h.teamPreview)
	// API keys (api_keys.go).
	ui.GET("/settings/api-keys", viewerOf(orgCurrent), h.keysPage)
	ui.POST("/settings/api-keys", adminOf(orgCurrent), h.keysCreate)
	for _, action := range []string{"disable", "enable", "revoke"} {
		ui.POST("/settings/api-keys/:id/"+action, adminOf(orgOfKey), h.keyActionHTML(action))
	}
	// Board columns (columns.go).
	ui.GET("/settings/columns", viewerOf(orgCurrent), h.columnsPage)
	ui.POST("/settings/columns", adminOf(orgCurrent), h.columnsCreate)
	ui.POST("/settings/columns/:columnId", adminOf(orgCurrent), h.columnActionHTML("save"))
	for _, action := range []string{"up", "down", "delete"} {
		ui.POST("/settings/columns/:columnId/"+action, adminOf(orgCurrent), h.columnActionHTML(action))
	}
	// Members (members.go).
	ui.GET("/settings/members", viewerOf(orgCurrent), h.membersPage)
	ui.POST("/settings/members", adminOf(orgCurrent), h.membersAdd)
	ui.POST("/settings/members/:userId/role", adminOf(orgCurrent), h.memberAction("role"))
	ui.POST("/settings/members/:userId/remove", adminOf(orgCurrent), h.memberAction("remove"))
	ui.POST("/settings/members/:userId/password-link", adminOf(orgCurrent), h.membersResendLink)
	ui.POST("/settings/members/invitations/:id/withdraw", adminOf(orgCurrent), h.membersWithdraw)
	// Webhooks, the Notifications screen (notifications.go).
	ui.GET("/settings/notifications", viewerOf(orgCurrent), h.notificationsPage)
	ui.POST("/settings/notifications", adminOf(orgCurrent), h.notificationsCreate)
	ui.GET("/settings/notifications/:endpointId", viewerOf(orgCurrent), h.webhookLogPage)
	for _, action := range []string{"test", "enable", "disable", "delete"} {
		ui.POST("/settings/notifications/:endpointId/"+action, adminOf(orgCurrent), h.webhookActionHTML(action))
	}
	// Audit (audit.go).
	ui.GET("/audit", viewerOf(orgCurrent), h.auditPage)
	ui.GET("/audit/export", viewerOf(orgCurrent), h.auditExport)
	// Organizations (orgs.go) and users (platform.go): platform administration.
	ui.GET("/platform", platformAdmin, h.platformPage)
	ui.POST("/platform/orgs", platformAdmin, h.platformCreateOrg)
	ui.POST("/platform/orgs/:orgId", platformAdmin, h.platformUpdateOrg)
	ui.POST("/platform/users/:userId/sa", platformAdmin, h.platformUserAction("sa"))
	ui.POST("/platform/users/:userId/disable", platformAdmin, h.platformUserAction("disable"))
	ui.POST("/platform/users/:userId/reset-password", platformAdmin, h.platformResetPassword)

	// Management JSON API: session cookie or bearer token.
	api := root.group("/api/v1", noStore)
	// Sign-in (auth.go) and account (account.go).
	api.POST("/auth/login", public, h.apiLogin)
	api.POST("/account/password", operator, h.accountPasswordAPI)
	api.GET("/account/invitations", operator, h.listInvitationsAPI)
	api.POST("/account/invitations/:id/accept", operator, h.decideInvitationAPI("accept"))
	api.POST("/account/invitations/:id/decline", operator, h.decideInvitationAPI("decline"))
	// Agents, by id alone (searched across the caller's orgs) or by org (agents.go).
	for _, action := range []string{"approve", "stop", "resume"} {
		api.PATCH("/agents/:agentId/"+action, adminOf(orgOfAgent), h.agentActionAPI(action))
	}
	api.DELETE("/agents/:agentId", adminOf(orgOfAgent), h.deleteAgentAPI)
	api.PATCH("/agents/:agentId/pickup", adminOf(orgOfAgent), h.setPickupAPI)
	api.PUT("/agents/:agentId/permissions", adminOf(orgOfAgent), h.setPermissionsAPI)
	api.GET("/organizations/:orgId/agents", viewerOf(orgPath), h.listOrgAgents)
	// Invites (invites.go).
	api.GET("/internal/invites", viewerOf(orgCurrent), h.listInvitesAPI)
	api.POST("/internal/invites", adminOf(orgBody), h.createInviteAPI)
	api.DELETE("/internal/invites/:id", adminOf(orgOfInvite), h.deleteInviteAPI)
	// Join requests (join_requests.go).
	api.GET("/internal/join-requests", viewerOf(orgCurrent), h.listJoinRequestsAPI)
	api.POST("/internal/join-requests/:id/approve", adminOf(orgOfJoinRequest), h.decideJoinRequestAPI("approve"))
	api.POST("/internal/join-requests/:id/reject", adminOf(orgOfJoinRequest), h.decideJoinRequestAPI("reject"))
	api.POST("/internal/join-requests/:id/reissue", adminOf(orgOfJoinRequest), h.reissueClaimAPI)
	// Teams (teams.go) and their onboarding document (onboarding.go).
	api.GET("/organizations/:orgId/teams", viewerOf(orgPath), h.listTeams)
	api.POST("/organizations/:orgId/teams", adminOf(orgPath), h.createTeam)
	api.PATCH("/organizations/:orgId/teams/:teamId", adminOf(orgPath), h.updateTeam)
	api.PATCH("/organizations/:orgId/teams/:teamId/onboarding", adminOf(orgPath), h.updateOnboarding)
	// API keys (api_keys.go).
	api.GET("/settings/api-keys", viewerOf(orgCurrent), h.listKeysAPI)
	api.POST("/settings/api-keys", adminOf(orgBody), h.createKeyAPI)
	api.PATCH("/settings/api-keys/:id", adminOf(orgOfKey), h.updateKeyAPI)
	api.DELETE("/settings/api-keys/:id", adminOf(orgOfKey), h.revokeKeyAPI)
	// Board columns (columns.go).
	api.GET("/organizations/:orgId/columns", viewerOf(orgPath), h.listColumnsAPI)
	api.POST("/organizations/:orgId/columns", adminOf(orgPath), h.createColumnAPI)
	api.PATCH("/organizations/:orgId/columns/:columnId", adminOf(orgPath), h.updateColumnAPI)
	api.DELETE("/organizations/:orgId/columns/:columnId", adminOf(orgPath), h.deleteColumnAPI)
	// Members (members.go).
	api.GET("/organizations/:orgId/members", viewerOf(orgPath), h.listMembersAPI)
	api.POST("/organizations/:orgId/members", adminOf(orgPath), h.addMemberAPI)
	api.PATCH("/organizations/:orgId/members/:userId", adminOf(orgPath), h.updateMemberAPI)
	api.DELETE("/organizations/:orgId/members/:userId", adminOf(orgPath), h.removeMemberAPI)
	api.POST("/organizations/:orgId/members/:userId/password-link", adminOf(orgPath), h.resendLinkAPI)
	api.GET("/organizations/:orgId/members/pending", viewerOf(orgPath), h.pendingMembersAPI)
	api.DELETE("/organizations/:orgId/members/pending/:id", adminOf(orgPath), h.withdrawInvitationAPI)
	// Webhooks (notifications.go).
	api.GET("/organizations/:orgId/webhooks", viewerOf(orgPath), h.listWebhooksAPI)
	api.POST("/organizations/:orgId/webhooks", adminOf(orgPath), h.createWebhookAPI)
	api.PATCH("/organizations/:orgId/webhooks/:endpointId", adminOf(orgPath), h.updateWebhookAPI)
	api.DELETE("/organizations/:orgId/webhooks/:endpointId", adminOf(orgPath), h.deleteWebhookAPI)
	api.POST("/organizations/:orgId/webhooks/:endpointId/test", adminOf(orgPath), h.testWebhookAPI)
	api.GET("/organizations/:orgId/webhooks/:endpointId/deliveries", viewerOf(orgPath), h.webhookDeliveriesAPI)
	// Audit (audit.go).
	api.GET("/audit", viewerOf(orgCurrent), h.auditAPI)
	api.GET("/audit/export", viewerOf(orgCurrent), h.auditExport)
	// Organizations (orgs.go) and users (platform.go).
	api.GET("/organizations", operator, h.listOrgs)
	api.POST("/organizations", platformAdmin, h.createOrg)
	api.PATCH("/organizations/:orgId", platformAdmin, h.updateOrgAPI)
	api.GET("/users", platformAdmin, h.listUsersAPI)
	api.PATCH("/users/:userId", platformAdmin, h.updateUserAPI)
	api.POST("/users/:userId/reset-password", platformAdmin, h.resetPasswordAPI)

	// Runtime JSON API: an API key (team key or one bound to an agent).
	// Agents (runtime.go).
	api.POST("/teams/:teamId/agents/register", runtimeKey, h.registerAgent)
	api.GET("/agents/:agentId/status", runtimeKey, h.agentStatus)
	api.GET("/agents/:agentId/permissions", runtimeKey, h.agentPermissions)
	api.POST("/agents/:agentId/online", runtimeKey, h.agentOnline)
	api.POST("/agents/:agentId/offline", runtimeKey, h.agentOffline)
	api.GET("/agent/orgs", liveKey, h.agentOrgs)
	api.GET("/organizations/:orgId/agents/mcp/list", liveKey, h.agentList)
	// Teams' onboarding document (onboarding.go).
	api.GET("/teams/:teamId/onboarding", keyOrViewerOf(orgOfTeam), h.teamOnboarding)
	// The same calls over MCP (mcp.go). A stopped agent's key keeps its
	// status and offline tools, so each tool checks what it needs.
	rpc := root.group("/", noStore, answerJSON)
	mcpHandler := h.mcpEndpoint()
	for _, method := range []string{http.MethodPost, http.MethodGet, http.MethodDelete} {
		rpc.handle(method, mcpPath, runtimeKey, mcpHandler)
	}

	// Public: the invite token, the claim secret or a set-password link is
	// the credential; operations and documentation need none.
	pages := root.group("/", noStore)
	// Joining through an invite, JSON and the landing page (join.go).
	api.GET("/invites/:token", public, h.getInviteAPI)
	api.POST("/invites/:token/join", public, h.joinInviteAPI)
	api.POST("/join-requests/:id/claim", public, h.claimAPI)
	pages.GET("/invite/:token", public, h.invitePage)
	pages.POST("/invite/:token", public, h.inviteJoinHTML)
	pages.POST("/join-requests/:id/status", public, h.joinWaitHTML)
	// Set-password links (account.go).
	pages.GET("/set-password/:token", public, h.setPasswordPage)
	pages.POST("/set-password/:token", public, h.setPasswordSubmit)
	// API documentation (openapi.go, api_docs.go), operations (health.go,
	// metrics.go) and assets (static.go).
	api.GET("/openapi.json", public, h.openAPI)
	root.GET("/docs/api", public, h.apiDocsPage)
	root.GET("/healthz", public, h.healthz)
	root.GET("/readyz", public, h.readyz)
	root.GET("/metrics", public, h.metricsEndpoint())
	root.GET("/favicon.ico", public, h.favicon)
	root.GET("/static/*path", public, h.serveStatic)

	return r
}

// routeGroup registers routes with their access and records it in
// h.policies, so the access of every route can be checked.
type routeGroup struct {
	h *Handler
	g *gin.RouterGroup
}

func (rg routeGroup) group(path string, mw ...gin.HandlerFunc) routeGroup {
	return routeGroup{h: rg.h, g: rg.g.Group(path, mw...)}
}

func (rg routeGroup) handle(method, relative string, a access, hs ...gin.HandlerFunc) {
	full := path.Join(rg.g.BasePath(), relative)
	rg.h.policies[method+" "+full] = a
	rg.g.Handle(method, relative, append([]gin.HandlerFunc{rg.h.authorize(a)}, hs...)...)
}

// GET registers a GET route; a page (not the JSON API, not the event
// stream) also answers HEAD, with the same declared access and handler (the
// server sends no body).
func (rg routeGroup) GET(p string, a access, hs ...gin.HandlerFunc) {
	rg.handle(http.MethodGet, p, a, hs...)
	if full := path.Join(rg.g.BasePath(), p); !strings.HasPrefix(full, "/api/") && full != "/events" {
		rg.handle(http.MethodHead, p, a, hs...)
	}
}
func (rg routeGroup) POST(p string, a access, hs ...gin.HandlerFunc) {
	rg.handle(http.MethodPost, p, a, hs...)
}
func (rg routeGroup) PUT(p string, a access, hs ...gin.HandlerFunc) {
	rg.handle(http.MethodPut, p, a, hs...)
}
func (rg routeGroup) PATCH(p string, a access, hs ...gin.HandlerFunc) {
	rg.handle(http.MethodPatch, p, a, hs...)
}
func (rg routeGroup) DELETE(p string, a access, hs ...gin.HandlerFunc) {
	rg.handle(http.MethodDelete, p, a, hs...)
}

// policy is the declared access of a route (gin's method and pattern).
func (h *Handler) policy(method, pattern string) (access, bool) {
	a, ok := h.policies[method+" "+pattern]
	return a, ok
}

func itoa(n int) string { return strconv.Itoa(n) }
