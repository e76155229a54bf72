package handlers

import (
	"strconv"

	"github.com/a-h/templ"
	"github.com/gin-gonic/gin"

	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/views"
)

// nav builds the header of an HTML page: the caller's orgs and the request's
// org (on pages that have none, such as Account, the caller's current org)
// with its pending join requests.
func (h *Handler) nav(c *gin.Context, title, active string) views.Nav {
	p := currentPrincipal(c)
	n := views.Nav{Title: title, Active: active, UserEmail: p.User.Email, IsSA: p.User.IsSA}
	n.Orgs, _ = h.visibleOrgs(c, p)
	s, ok := c.Get(ctxScope)
	sc, _ := s.(scope)
	if !ok {
		sc, _ = h.currentOrg(c, p)
	}
	for i := range n.Orgs {
		if n.Orgs[i].ID == sc.OrgID {
			n.Org, n.Role = &n.Orgs[i], sc.Role
		}
	}
	if n.Org != nil {
		n.PendingJoins, n.PendingAgents, _ = models.CountPending(c.Request.Context(), h.db, n.Org.ID)
	}
	n.Invitations, _ = models.CountInvitations(c.Request.Context(), h.db, p.User.ID)
	return n
}

// page is the scope and header of an HTML page.
func (h *Handler) page(c *gin.Context, title, active string) (scope, views.Nav) {
	return scopeOf(c), h.nav(c, title, active)
}

// errorPage is the full-page rendering of an error for a browser.
func errorPage(c *gin.Context, h *Handler, status int, message string) templ.Component {
	if currentPrincipal(c) != nil {
		return views.ErrorPage(h.nav(c, strconv.Itoa(status), ""), status, message)
	}
	return views.BareError(status, message)
}
