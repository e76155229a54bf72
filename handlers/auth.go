package handlers

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/views"
)

const (
	sessionCookie = "agentroster_session"
	bearerPrefix  = "ag_bt_"
)

// principal is the signed-in operator of a request.
type principal struct {
	User    *models.User
	Session *models.Session // nil when authenticated by a bearer token
	token   string          // the session token, to end or re-scope it
}

type bearerClaims struct {
	U string // user id
	E int    // auth epoch at issue
}

func (h *Handler) sessionTTL() models.SessionTTL {
	return models.SessionTTL{Idle: h.cfg.SessionIdle, Absolute: h.cfg.SessionMaxAge}
}

// authenticate finds the operator behind a bearer token or the session cookie.
func (h *Handler) authenticate(c *gin.Context) (*principal, error) {
	if auth := c.GetHeader("Authorization"); auth != "" {
		scheme, tok, _ := strings.Cut(auth, " ")
		tok = strings.TrimSpace(tok)
		if !strings.EqualFold(scheme, "Bearer") || !strings.HasPrefix(tok, bearerPrefix) {
			return nil, errBadCredential
		}
		var claims bearerClaims
		if err := h.tokens.Decode("bearer", strings.TrimPrefix(tok, bearerPrefix), &claims); err != nil {
			return nil, errBadCredential
		}
		id, err := uuid.Parse(claims.U)
		if err != nil {
			return nil, errBadCredential
		}
		u, err := models.GetUser(c.Request.Context(), h.db, id)
		if errors.Is(err, models.ErrNotFound) || (err == nil && (u.DisabledAt != nil || u.AuthEpoch != claims.E)) {
			return nil, errBadCredential
		}
		if err != nil {
			return nil, err
		}
		return &principal{User: u}, nil
	}
	sess, _ := h.cookie.Get(c.Request, sessionCookie)
	tok, _ := sess.Values["sid"].(string)
	if tok == "" {
		return nil, errUnauthenticated
	}
	s, u, err := models.LookupSession(c.Request.Context(), h.db, tok, h.sessionTTL())
	if errors.Is(err, models.ErrUnauthorized) {
		return nil, errUnauthenticated
	}
	if err != nil {
		return nil, err
	}
	return &principal{User: u, Session: s, token: tok}, nil
}

func currentPrincipal(c *gin.Context) *principal {
	p, _ := c.Get(ctxPrincipal)
	pr, _ := p.(*principal)
	return pr
}

// actor describes the caller for the audit log.
func (h *Handler) actor(c *gin.Context) models.Actor {
	a := models.Actor{IP: c.ClientIP(), RequestID: c.GetString(ctxRequestID)}
	if p := currentPrincipal(c); p != nil {
		a.Type, a.ID, a.Label = "user", p.User.ID.String(), p.User.Email
	} else if k := currentKey(c); k != nil {
		a.Type, a.ID, a.Label = "runtime", k.ID.String(), k.Prefix
		if k.AgentID != nil {
			a.Type, a.Label = "agent", *k.AgentID
		}
	} else {
		a.Type, a.ID, a.Label = "runtime", "anonymous", "anonymous"
	}
	return a
}

// visibleOrgs lists the orgs p may see, by title: read once per request (a
// page's authorization and its header both need it; handlers that change
// orgs or memberships redirect rather than render).
func (h *Handler) visibleOrgs(c *gin.Context, p *principal) ([]models.Organization, error) {
	if orgs, ok := c.Get(ctxVisibleOrgs); ok {
		return orgs.([]models.Organization), nil
	}
	var orgs []models.Organization
	var err error
	if p.User.IsSA {
		orgs, err = models.ListOrgs(c.Request.Context(), h.db)
	} else {
		orgs, err = models.ListUserOrgs(c.Request.Context(), h.db, p.User.ID)
	}
	if err != nil {
		return nil, err
	}
	c.Set(ctxVisibleOrgs, orgs)
	return orgs, nil
}

const ctxVisibleOrgs = "visibleOrgs"

// limit takes a token from l for key, failing with 429 when none is left.
func limit(l *limiter, key string) error {
	if ok, retry := l.allow(key); !ok {
		return &rateLimited{retry: retry}
	}
	return nil
}

// login checks credentials. Failures spend the address's budget (against
// password spraying; correct passwords, say many people behind one NAT, do
// not), and attempts in flight count against it, so concurrent guesses cannot
// outrun it. A failure also spends the budget of that address and email,
// which a success refills. Neither budget is shared with other addresses, so
// failures from one client never refuse the right password from another.
func (h *Handler) login(c *gin.Context, email, password string) (*models.User, error) {
	ip := c.ClientIP()
	ok, retry, done := h.loginIP.attempt(ip)
	if !ok {
		return nil, &rateLimited{retry: retry}
	}
	failed := false
	defer func() { done(failed) }()
	key := ip + "\x00" + strings.ToLower(strings.TrimSpace(email))
	if err := limit(h.loginIPEmail, key); err != nil {
		return nil, err
	}
	u, err := models.Authenticate(c.Request.Context(), h.db, email, password, h.actor(c))
	if errors.Is(err, models.ErrUnauthorized) {
		failed = true
		h.metrics.loginFailed.Inc()
		return nil, newErr(http.StatusUnauthorized, "invalid_credentials", "invalid email or password")
	}
	if err != nil {
		return nil, err
	}
	h.loginIPEmail.reset(key)
	return u, nil
}

func (h *Handler) loginPage(c *gin.Context) {
	if p, err := h.authenticate(c); err == nil && p.Session != nil {
		c.Redirect(http.StatusSeeOther, "/agents")
		return
	}
	h.render(c, views.LoginPage(views.LoginForm{Next: c.Query("next")}))
}

func (h *Handler) loginSubmit(c *gin.Context) {
	form := views.LoginForm{Email: c.PostForm("email"), Next: c.PostForm("next")}
	u, err := h.login(c, form.Email, c.PostForm("password"))
	if err != nil {
		status, _, message, _ := classify(err)
		if status >= 500 {
			h.fail(c, err)
			return
		}
		var rl *rateLimited
		if errors.As(err, &rl) {
			c.Header("Retry-After", itoa(retrySeconds(rl.retry)))
			message = "Too many sign-in attempts. Try again in a minute."
		} else {
			message = "Invalid email or password."
		}
		form.Error = message
		h.renderStatus(c, status, views.LoginPage(form))
		return
	}
	// A fresh session id at every login (no fixation); the old one ends.
	sess, _ := h.cookie.Get(c.Request, sessionCookie)
	if old, _ := sess.Values["sid"].(string); old != "" {
		models.DeleteSession(c.Request.Context(), h.db, old)
	}
	tok, err := models.CreateSession(c.Request.Context(), h.db, u, nil, c.ClientIP(), c.Request.UserAgent(), h.sessionTTL())
	if err != nil {
		h.fail(c, err)
		return
	}
	sess.Values = map[any]any{"sid": tok}
	if err := sess.Save(c.Request, c.Writer); err != nil {
		h.fail(c, err)
		return
	}
	next := form.Next
	if !safeNext(next) {
		next = "/agents"
	}
	c.Redirect(http.StatusSeeOther, next)
}

func (h *Handler) logout(c *gin.Context) {
	sess, _ := h.cookie.Get(c.Request, sessionCookie)
	if tok, _ := sess.Values["sid"].(string); tok != "" {
		if err := models.DeleteSession(c.Request.Context(), h.db, tok); err != nil {
			h.fail(c, err)
			return
		}
	}
	sess.Values = map[any]any{}
	sess.Options.MaxAge = -1
	sess.Save(c.Request, c.Writer)
	seeOther(c, "/login")
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// apiLogin exchanges credentials for a short-lived signed bearer token.
func (h *Handler) apiLogin(c *gin.Context) {
	var req loginRequest
	if err := decodeJSON(c, &req); err != nil {
		h.fail(c, err)
		return
	}
	u, err := h.login(c, req.Email, req.Password)
	if err != nil {
		h.fail(c, err)
		return
	}
	tok, err := h.tokens.Encode("bearer", bearerClaims{U: u.ID.String(), E: u.AuthEpoch})
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{
		"token":     bearerPrefix + tok,
		"expiresAt": time.Now().Add(h.cfg.TokenTTL).UTC().Truncate(time.Second),
		"user":      u,
	})
}

// switchOrg changes the session's current org to the form's orgId (which
// authorize checked the caller may see).
func (h *Handler) switchOrg(c *gin.Context) {
	p := currentPrincipal(c)
	if p.Session != nil {
		if err := models.SetSessionOrg(c.Request.Context(), h.db, p.token, scopeOf(c).OrgID); err != nil {
			h.fail(c, err)
			return
		}
	}
	seeOther(c, "/agents")
}

func currentKey(c *gin.Context) *models.APIKey {
	k, _ := c.Get(ctxKey)
	key, _ := k.(*models.APIKey)
	return key
}
