package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/agentroster/agentroster/models"
)

// Authorization is decided in one place. Every route in routes.go declares an
// access: who may call it (need) and where its organization comes from
// (orgFrom). authorize resolves the caller and the organization once, before
// the handler runs; handlers read currentPrincipal, currentKey and scopeOf.

// need is who may call a route.
type need uint8

const (
	// needNone: anyone. The route checks its own credential (a password, an
	// invite token, a claim secret, the metrics token) or needs none.
	needNone need = iota
	// needUser: any signed-in operator (session cookie or bearer token).
	needUser
	// needViewer: a member of the route's organization, in any role.
	needViewer
	// needAdmin: an admin of the route's organization.
	needAdmin
	// needPlatformAdmin: a platform admin.
	needPlatformAdmin
	// needKey: a live API key, a team key or one bound to an agent; the
	// organization is the key's.
	needKey
	// needLiveKey: needKey, and a key bound to an agent needs that agent
	// approved (a stopped agent keeps only its status and offline routes).
	needLiveKey
	// needKeyOrViewer: a live API key (as needLiveKey), or an operator who is
	// a member of the route's organization.
	needKeyOrViewer
)

var needNames = [...]string{"anyone", "operator", "viewer", "admin", "platform admin", "API key", "live API key", "API key or viewer"}

func (n need) String() string { return needNames[n] }

// orgFrom is where a route's organization comes from.
type orgFrom uint8

const (
	orgNone orgFrom = iota
	// orgPath: the :orgId path parameter.
	orgPath
	// orgCurrent: ?orgId= when given, else the session's current
	// organization, else the caller's first.
	orgCurrent
	// orgBody: the body's orgId (JSON or form field), else as orgCurrent.
	orgBody
	// orgOfAgent: the organization holding :agentId among those the caller
	// may act in (?orgId= narrows). Several: 409 ambiguous_agent, except that
	// a page prefers the session's current organization.
	orgOfAgent
	// orgOfInvite, orgOfJoinRequest, orgOfKey: the organization of the
	// invite, join request or API key :id.
	orgOfInvite
	orgOfJoinRequest
	orgOfKey
	// orgOfTeam: the organization of the team :teamId.
	orgOfTeam
)

var orgFromNames = [...]string{"none", ":orgId", "current", "body orgId", ":agentId's org", ":id invite's org", ":id join request's org", ":id key's org", ":teamId's org"}

func (o orgFrom) String() string { return orgFromNames[o] }

// access is a route's declared policy.
type access struct {
	need need
	org  orgFrom
}

func (a access) String() string {
	if a.org == orgNone {
		return a.need.String()
	}
	return a.need.String() + " of " + a.org.String()
}

var (
	public        = access{need: needNone}
	operator      = access{need: needUser}
	platformAdmin = access{need: needPlatformAdmin}
	runtimeKey    = access{need: needKey}
	liveKey       = access{need: needLiveKey}
)

func viewerOf(o orgFrom) access      { return access{need: needViewer, org: o} }
func adminOf(o orgFrom) access       { return access{need: needAdmin, org: o} }
func keyOrViewerOf(o orgFrom) access { return access{need: needKeyOrViewer, org: o} }

// scope is the organization a request works in and the caller's role there
// (platform admins are admins of every organization; an API key has no role).
type scope struct {
	OrgID uuid.UUID
	Role  string
}

func (s scope) admin() bool { return s.Role == models.RoleAdmin }

const ctxScope = "scope"

// scopeOf is the scope authorize resolved for the request.
func scopeOf(c *gin.Context) scope {
	s, _ := c.Get(ctxScope)
	sc, _ := s.(scope)
	return sc
}

var (
	errViewer           = newErr(http.StatusForbidden, "forbidden", "this needs the admin role in the organization")
	errNotPlatformAdmin = newErr(http.StatusForbidden, "forbidden", "only platform admins may do this")
	errNoOrganization   = newErr(http.StatusNotFound, "no_organization", "you are not a member of any organization")
)

// authorize is the middleware of a route with access a.
func (h *Handler) authorize(a access) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := h.resolve(c, a); err != nil {
			h.fail(c, err)
			c.Abort()
			return
		}
		c.Next()
	}
}

// resolve authenticates the caller a needs and works out the organization.
func (h *Handler) resolve(c *gin.Context, a access) error {
	switch a.need {
	case needNone:
		return nil
	case needKey, needLiveKey:
		return h.resolveKey(c, a.need == needLiveKey)
	case needKeyOrViewer:
		if _, ok := apiKeyFrom(c); ok {
			return h.resolveKey(c, true)
		}
	}
	p, err := h.authenticate(c)
	if err != nil {
		return err
	}
	c.Set(ctxPrincipal, p)
	switch a.need {
	case needUser:
		return nil
	case needPlatformAdmin:
		if !p.User.IsSA {
			return errNotPlatformAdmin
		}
		return nil
	}
	s, err := h.resolveOrg(c, p, a)
	if err != nil {
		return err
	}
	if a.need == needAdmin && !s.admin() {
		return errViewer
	}
	c.Set(ctxScope, s)
	return nil
}

// resolveKey checks the request's API key (see checkKey) and, when live is
// set, that an agent-bound key's agent is approved.
func (h *Handler) resolveKey(c *gin.Context, live bool) error {
	k, err := h.checkKey(c)
	if err != nil {
		return err
	}
	c.Set(ctxKey, k)
	c.Set(ctxScope, scope{OrgID: k.OrgID})
	if !live {
		return nil
	}
	return h.keyLive(c.Request.Context(), k, c.Request.Method+" "+c.FullPath())
}

// keyLive refuses action to a key bound to an agent that is not approved
// (see models.CheckActive); team keys are always live.
func (h *Handler) keyLive(ctx context.Context, k *models.APIKey, action string) error {
	if k.AgentID == nil {
		return nil
	}
	ag, err := h.cache.Agent(ctx, h.db, k.OrgID, *k.AgentID)
	if err != nil {
		return err
	}
	return models.CheckActive(ag, action)
}

// resolveOrg works out the organization of an operator's request from a.org
// and p's role there. An organization p cannot see is a 404, as if it did not
// exist.
func (h *Handler) resolveOrg(c *gin.Context, p *principal, a access) (scope, error) {
	switch a.org {
	case orgPath:
		org, err := pathUUID(c, "orgId")
		if err != nil {
			return scope{}, err
		}
		return h.roleIn(c, p, org)
	case orgCurrent:
		return h.currentOrg(c, p)
	case orgBody:
		raw, err := bodyOrgID(c)
		if err != nil {
			return scope{}, err
		}
		if raw == "" {
			return h.currentOrg(c, p)
		}
		org, err := uuid.Parse(raw)
		if err != nil {
			return scope{}, models.Invalid("orgId", "must be a UUID")
		}
		return h.roleIn(c, p, org)
	case orgOfAgent:
		return h.agentOrg(c, p, a.need)
	case orgOfInvite:
		return h.objectOrg(c, p, "id", models.InviteOrg)
	case orgOfJoinRequest:
		return h.objectOrg(c, p, "id", models.JoinRequestOrg)
	case orgOfKey:
		return h.objectOrg(c, p, "id", models.APIKeyOrgRole)
	case orgOfTeam:
		team, err := pathUUID(c, "teamId")
		if err != nil {
			return scope{}, err
		}
		org, err := models.TeamOrg(c.Request.Context(), h.db, team)
		if err != nil {
			return scope{}, err
		}
		return h.roleIn(c, p, org)
	}
	return scope{}, errors.New("authorize: route declares no organization")
}

// member turns p's role in an existing org into a scope: platform admins are
// admins everywhere, a non-member gets a 404.
func member(p *principal, org uuid.UUID, role string) (scope, error) {
	if p.User.IsSA {
		return scope{OrgID: org, Role: models.RoleAdmin}, nil
	}
	if role == "" {
		return scope{}, errNotFound
	}
	return scope{OrgID: org, Role: role}, nil
}

// roleIn is p's scope in org.
func (h *Handler) roleIn(c *gin.Context, p *principal, org uuid.UUID) (scope, error) {
	role, err := models.RoleIn(c.Request.Context(), h.db, p.User.ID, org)
	if err != nil {
		return scope{}, err
	}
	return member(p, org, role)
}

// currentOrg is the org of ?orgId= when given; else the session's current
// org while p may still see it; else p's first org by title.
func (h *Handler) currentOrg(c *gin.Context, p *principal) (scope, error) {
	if q := c.Query("orgId"); q != "" {
		org, err := uuid.Parse(q)
		if err != nil {
			return scope{}, models.Invalid("orgId", "must be a UUID")
		}
		return h.roleIn(c, p, org)
	}
	if p.Session != nil && p.Session.OrgID != nil {
		s, err := h.roleIn(c, p, *p.Session.OrgID)
		if err == nil || !errors.Is(err, models.ErrNotFound) && err != errNotFound {
			return s, err
		}
	}
	orgs, err := h.visibleOrgs(c, p)
	if err != nil {
		return scope{}, err
	}
	if len(orgs) == 0 {
		return scope{}, errNoOrganization
	}
	return h.roleIn(c, p, orgs[0].ID)
}

// objectOrg is the scope of the object named by the path parameter param,
// read with p's role by orgOf. ?orgId= other than the object's is a 404.
func (h *Handler) objectOrg(c *gin.Context, p *principal, param string,
	orgOf func(ctx context.Context, db bun.IDB, id, user uuid.UUID) (uuid.UUID, string, error)) (scope, error) {
	id, err := pathUUID(c, param)
	if err != nil {
		return scope{}, err
	}
	org, role, err := orgOf(c.Request.Context(), h.db, id, p.User.ID)
	if err != nil {
		return scope{}, err
	}
	if q := c.Query("orgId"); q != "" && q != org.String() {
		return scope{}, errNotFound
	}
	return member(p, org, role)
}

// agentOrg finds the org of :agentId among those p may act in with need:
// one match is the scope; several are 409 ambiguous_agent naming them (a
// page prefers the session's current org); an agent p sees only as a viewer
// is a 403 for an admin route; none is a 404.
func (h *Handler) agentOrg(c *gin.Context, p *principal, n need) (scope, error) {
	id := c.Param("agentId")
	if !models.ValidAgentID(id) {
		return scope{}, errNotFound
	}
	if q := c.Query("orgId"); q != "" {
		org, err := uuid.Parse(q)
		if err != nil {
			return scope{}, models.Invalid("orgId", "must be a UUID")
		}
		return h.roleIn(c, p, org)
	}
	found, err := models.AgentOrgs(c.Request.Context(), h.db, id, p.User.ID, p.User.IsSA)
	if err != nil {
		return scope{}, err
	}
	var able []scope
	for _, f := range found {
		s, _ := member(p, f.OrgID, f.Role)
		if n != needAdmin || s.admin() {
			able = append(able, s)
		}
	}
	switch {
	case len(able) == 1:
		return able[0], nil
	case len(able) == 0 && len(found) > 0:
		return scope{}, errViewer
	case len(able) == 0:
		return scope{}, errNotFound
	}
	if !isAPI(c) && p.Session != nil && p.Session.OrgID != nil {
		for _, s := range able {
			if s.OrgID == *p.Session.OrgID {
				return s, nil
			}
		}
	}
	ids := make([]string, len(able))
	for i, s := range able {
		ids[i] = s.OrgID.String()
	}
	return scope{}, &apiError{Status: http.StatusConflict, Code: "ambiguous_agent",
		Message: "agents of this id exist in several of your organizations; name one with ?orgId=",
		Details: map[string]any{"orgIds": ids}}
}

// bodyOrgID reads the orgId a form or a JSON body names (any body that is
// not a form is read as decodeJSON would), leaving the body for the handler
// to read again.
func bodyOrgID(c *gin.Context) (string, error) {
	switch c.ContentType() {
	case "application/x-www-form-urlencoded", "multipart/form-data":
		return c.PostForm("orgId"), nil
	}
	body, err := io.ReadAll(c.Request.Body)
	c.Request.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	var v struct {
		OrgID any `json:"orgId"`
	}
	if json.Unmarshal(body, &v) != nil {
		return "", nil // the handler's own decoding names the problem
	}
	switch id := v.OrgID.(type) {
	case nil:
		return "", nil
	case string:
		return id, nil
	}
	return "", models.Invalid("orgId", "must be a UUID")
}

// bodyOrgMatches refuses a body whose orgId is not the org authorize
// resolved from it: a second line of defence should the two readings of the
// body ever disagree.
func bodyOrgMatches(orgID string, s scope) error {
	if orgID == "" {
		return nil
	}
	if id, err := uuid.Parse(orgID); err != nil || id != s.OrgID {
		return models.Invalid("orgId", "does not name the organization this request works in")
	}
	return nil
}
