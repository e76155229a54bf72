package handlers

import (
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/a-h/templ"
	"github.com/gin-gonic/gin"

	"github.com/agentroster/agentroster/static"
	"github.com/agentroster/agentroster/views"
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

	// Browser: the operator screens (session cookie).
	ui := root.group("/", noStore)
	ui.GET("/", public, func(c *gin.Context) { c.Redirect(http.StatusSeeOther, "/agents") })
	ui.GET("/login", public, h.loginPage)
	ui.POST("/login", public, h.loginSubmit)
	ui.POST("/logout", public, h.logout)
	ui.POST("/orgs/switch", viewerOf(orgBody), h.switchOrg)
	ui.GET("/events", viewerOf(orgCurrent), h.events)
	ui.GET("/nav/pending-badge", viewerOf(orgCurrent), h.pendingBadge)
	ui.GET("/account", operator, h.accountPage)
	ui.POST("/account/password", operator, h.accountPassword)
	ui.POST("/account/invitations/:id/accept", operator, h.decideInvitationHTML("accept"))
	ui.POST("/account/invitations/:id/decline", operator, h.decideInvitationHTML("decline"))
	// Agents.
	ui.GET("/agents", viewerOf(orgCurrent), h.rosterPage)
	ui.GET("/agents/:agentId", viewerOf(orgOfAgent), h.agentDetailPage)
	ui.GET("/agents/:agentId/row", viewerOf(orgCurrent), h.agentRowHTML) // the roster page's org: a deleted agent's row empties
	for _, action := range []string{"approve", "stop", "resume", "delete"} {
		ui.POST("/agents/:agentId/"+action, adminOf(orgOfAgent), h.agentActionHTML(action))
	}
	ui.POST("/agents/:agentId/pickup", adminOf(orgOfAgent), h.setPickupHTML)
	ui.POST("/agents/:agentId/permissions", adminOf(orgOfAgent), h.setPermissionsHTML)
	// Invites and join requests.
	ui.GET("/agents/invites", viewerOf(orgCurrent), h.invitesPage)
	ui.POST("/agents/invites", adminOf(orgCurrent), h.invitesCreate)
	ui.GET("/agents/invites/new", adminOf(orgCurrent), h.inviteFormHTML)
	ui.POST("/agents/invites/bulk", adminOf(orgCurrent), h.invitesBulk)
	ui.POST("/agents/invites/:id/delete", adminOf(orgOfInvite), h.inviteDeleteHTML)
	ui.GET("/agents/join-requests", viewerOf(orgCurrent), h.joinRequestsPage)
	for _, action := range []string{"approve", "reject", "reject-revoke"} {
		ui.POST("/agents/join-requests/:id/"+action, adminOf(orgOfJoinRequest), h.joinDecisionHTML(action))
	}
	ui.POST("/agents/join-requests/:id/reissue", adminOf(orgOfJoinRequest), h.reissueClaimHTML)
	// Settings.
	ui.GET("/settings/teams", viewerOf(orgCurrent), h.teamsPage)
	ui.POST("/settings/teams", adminOf(orgCurrent), h.teamsCreate)
	ui.GET("/settings/teams/:teamId", viewerOf(orgCurrent), h.teamEditPage)
	ui.POST("/settings/teams/:teamId", adminOf(orgCurrent), h.teamUpdate)
	ui.POST("/settings/teams/:teamId/preview", viewerOf(orgCurrent), h.teamPreview)
	ui.GET("/settings/api-keys", viewerOf(orgCurrent), h.keysPage)
	ui.POST("/settings/api-keys", adminOf(orgCurrent), h.keysCreate)
	for _, action := range []string{"disable", "enable", "revoke"} {
		ui.POST("/settings/api-keys/:id/"+action, adminOf(orgOfKey), h.keyActionHTML(action))
	}
	ui.GET("/settings/columns", viewerOf(orgCurrent), h.columnsPage)
	ui.POST("/settings/columns", adminOf(orgCurrent), h.columnsCreate)
	ui.POST("/settings/columns/:columnId", adminOf(orgCurrent), h.columnActionHTML("save"))
	for _, action := range []string{"up", "down", "delete"} {
		ui.POST("/settings/columns/:columnId/"+action, adminOf(orgCurrent), h.columnActionHTML(action))
	}
	ui.GET("/settings/members", viewerOf(orgCurrent), h.membersPage)
	ui.POST("/settings/members", adminOf(orgCurrent), h.membersAdd)
	ui.POST("/settings/members/:userId/role", adminOf(orgCurrent), h.memberAction("role"))
	ui.POST("/settings/members/:userId/remove", adminOf(orgCurrent), h.memberAction("remove"))
	ui.POST("/settings/members/:userId/password-link", adminOf(orgCurrent), h.membersResendLink)
	ui.POST("/settings/members/invitations/:id/withdraw", adminOf(orgCurrent), h.membersWithdraw)
	ui.GET("/settings/notifications", viewerOf(orgCurrent), h.notificationsPage)
	ui.POST("/settings/notifications", adminOf(orgCurrent), h.notificationsCreate)
	ui.GET("/settings/notifications/:endpointId", viewerOf(orgCurrent), h.webhookLogPage)
	for _, action := range []string{"test", "enable", "disable", "delete"} {
		ui.POST("/settings/notifications/:endpointId/"+action, adminOf(orgCurrent), h.webhookActionHTML(action))
	}
	ui.GET("/audit", viewerOf(orgCurrent), h.auditPage)
	ui.GET("/audit/export", viewerOf(orgCurrent), h.auditExport)
	// Platform administration.
	ui.GET("/platform", platformAdmin, h.platformPage)
	ui.POST("/platform/orgs", platformAdmin, h.platformCreateOrg)
	ui.POST("/platform/orgs/:orgId", platformAdmin, h.platformUpdateOrg)
	ui.POST("/platform/users/:userId/sa", platformAdmin, h.platformUserAction("sa"))
	ui.POST("/platform/users/:userId/disable", platformAdmin, h.platformUserAction("disable"))
	ui.POST("/platform/users/:userId/reset-password", platformAdmin, h.platformResetPassword)

	// Management JSON API: session cookie or bearer token.
	api := root.group("/api/v1", noStore)
	api.POST("/auth/login", public, h.apiLogin)
	api.POST("/account/password", operator, h.accountPasswordAPI)
	api.GET("/account/invitations", operator, h.listInvitationsAPI)
	api.POST("/account/invitations/:id/accept", operator, h.decideInvitationAPI("accept"))
	api.POST("/account/invitations/:id/decline", operator, h.decideInvitationAPI("decline"))
	// Organizations, teams, members.
	api.GET("/organizations", operator, h.listOrgs)
	api.POST("/organizations", platformAdmin, h.createOrg)
	api.PATCH("/organizations/:orgId", platformAdmin, h.updateOrgAPI)
	api.GET("/organizations/:orgId/teams", viewerOf(orgPath), h.listTeams)
	api.POST("/organizations/:orgId/teams", adminOf(orgPath), h.createTeam)
	api.PATCH("/organizations/:orgId/teams/:teamId", adminOf(orgPath), h.updateTeam)
	api.PATCH("/organizations/:orgId/teams/:teamId/onboarding", adminOf(orgPath), h.updateOnboarding)
	api.GET("/organizations/:orgId/members", viewerOf(orgPath), h.listMembersAPI)
	api.POST("/organizations/:orgId/members", adminOf(orgPath), h.addMemberAPI)
	api.PATCH("/organizations/:orgId/members/:userId", adminOf(orgPath), h.updateMemberAPI)
	api.DELETE("/organizations/:orgId/members/:userId", adminOf(orgPath), h.removeMemberAPI)
	api.POST("/organizations/:orgId/members/:userId/password-link", adminOf(orgPath), h.resendLinkAPI)
	api.GET("/organizations/:orgId/members/pending", viewerOf(orgPath), h.pendingMembersAPI)
	api.DELETE("/organizations/:orgId/members/pending/:id", adminOf(orgPath), h.withdrawInvitationAPI)
	api.GET("/users", platformAdmin, h.listUsersAPI)
	api.PATCH("/users/:userId", platformAdmin, h.updateUserAPI)
	api.POST("/users/:userId/reset-password", platformAdmin, h.resetPasswordAPI)
	// Agents, by id alone (searched across the caller's orgs) or by org.
	for _, action := range []string{"approve", "stop", "resume"} {
		api.PATCH("/agents/:agentId/"+action, adminOf(orgOfAgent), h.agentActionAPI(action))
	}
	api.DELETE("/agents/:agentId", adminOf(orgOfAgent), h.deleteAgentAPI)
	api.PATCH("/agents/:agentId/pickup", adminOf(orgOfAgent), h.setPickupAPI)
	api.PUT("/agents/:agentId/permissions", adminOf(orgOfAgent), h.setPermissionsAPI)
	api.GET("/organizations/:orgId/agents", viewerOf(orgPath), h.listOrgAgents)
	// Invites and join requests.
	api.GET("/internal/invites", viewerOf(orgCurrent), h.listInvitesAPI)
	api.POST("/internal/invites", adminOf(orgBody), h.createInviteAPI)
	api.DELETE("/internal/invites/:id", adminOf(orgOfInvite), h.deleteInviteAPI)
	api.GET("/internal/join-requests", viewerOf(orgCurrent), h.listJoinRequestsAPI)
	api.POST("/internal/join-requests/:id/approve", adminOf(orgOfJoinRequest), h.decideJoinRequestAPI("approve"))
	api.POST("/internal/join-requests/:id/reject", adminOf(orgOfJoinRequest), h.decideJoinRequestAPI("reject"))
	api.POST("/internal/join-requests/:id/reissue", adminOf(orgOfJoinRequest), h.reissueClaimAPI)
	// API keys, board columns, webhooks, audit.
	api.GET("/settings/api-keys", viewerOf(orgCurrent), h.listKeysAPI)
	api.POST("/settings/api-keys", adminOf(orgBody), h.createKeyAPI)
	api.PATCH("/settings/api-keys/:id", adminOf(orgOfKey), h.updateKeyAPI)
	api.DELETE("/settings/api-keys/:id", adminOf(orgOfKey), h.revokeKeyAPI)
	api.GET("/organizations/:orgId/columns", viewerOf(orgPath), h.listColumnsAPI)
	api.POST("/organizations/:orgId/columns", adminOf(orgPath), h.createColumnAPI)
	api.PATCH("/organizations/:orgId/columns/:columnId", adminOf(orgPath), h.updateColumnAPI)
	api.DELETE("/organizations/:orgId/columns/:columnId", adminOf(orgPath), h.deleteColumnAPI)
	api.GET("/organizations/:orgId/webhooks", viewerOf(orgPath), h.listWebhooksAPI)
	api.POST("/organizations/:orgId/webhooks", adminOf(orgPath), h.createWebhookAPI)
	api.PATCH("/organizations/:orgId/webhooks/:endpointId", adminOf(orgPath), h.updateWebhookAPI)
	api.DELETE("/organizations/:orgId/webhooks/:endpointId", adminOf(orgPath), h.deleteWebhookAPI)
	api.POST("/organizations/:orgId/webhooks/:endpointId/test", adminOf(orgPath), h.testWebhookAPI)
	api.GET("/organizations/:orgId/webhooks/:endpointId/deliveries", viewerOf(orgPath), h.webhookDeliveriesAPI)
	api.GET("/audit", viewerOf(orgCurrent), h.auditAPI)
	api.GET("/audit/export", viewerOf(orgCurrent), h.auditExport)

	// Runtime JSON API: an API key (team key or one bound to an agent).
	api.POST("/teams/:teamId/agents/register", runtimeKey, h.registerAgent)
	api.GET("/agents/:agentId/status", runtimeKey, h.agentStatus)
	api.GET("/agents/:agentId/permissions", runtimeKey, h.agentPermissions)
	api.POST("/agents/:agentId/online", runtimeKey, h.agentOnline)
	api.POST("/agents/:agentId/offline", runtimeKey, h.agentOffline)
	api.GET("/agent/orgs", liveKey, h.agentOrgs)
	api.GET("/organizations/:orgId/agents/mcp/list", liveKey, h.agentList)
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
	api.GET("/invites/:token", public, h.getInviteAPI)
	api.POST("/invites/:token/join", public, h.joinInviteAPI)
	api.POST("/join-requests/:id/claim", public, h.claimAPI)
	api.GET("/openapi.json", public, h.openAPI)
	pages := root.group("/", noStore)
	pages.GET("/invite/:token", public, h.invitePage)
	pages.POST("/invite/:token", public, h.inviteJoinHTML)
	pages.POST("/join-requests/:id/status", public, h.joinWaitHTML)
	pages.GET("/set-password/:token", public, h.setPasswordPage)
	pages.POST("/set-password/:token", public, h.setPasswordSubmit)
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

func (h *Handler) favicon(c *gin.Context) {
	c.Header("Cache-Control", "public, max-age=86400")
	c.FileFromFS("favicon.svg", http.FS(static.FS))
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
	if currentPrincipal(c) != nil {
		return views.ErrorPage(h.nav(c, strconv.Itoa(status), ""), status, message)
	}
	return views.BareError(status, message)
}

func itoa(n int) string { return strconv.Itoa(n) }
