package handlers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/agentroster/agentroster/models"
)

const (
	ctxLogger    = "logger"
	ctxRequestID = "requestID"
	ctxPrincipal = "principal"
	ctxOrg       = "org"
	ctxKey       = "apiKey"
	ctxJSON      = "answerJSON"
)

// requestTimeout bounds a request's work, database waits included.
const requestTimeout = 10 * time.Second

// exportTimeout bounds an audit export: a million rows take about 10 s to a
// client on the same machine, minutes over a slow link.
const exportTimeout = 10 * time.Minute

// deadlineOf is how long the request may take: none for the event streams
// (ours, and MCP's GET), exportTimeout for audit exports, else requestTimeout.
func deadlineOf(c *gin.Context) time.Duration {
	switch c.FullPath() {
	case "/events":
		return 0
	case mcpPath:
		if c.Request.Method == http.MethodGet {
			return 0
		}
	case "/audit/export", "/api/v1/audit/export":
		return exportTimeout
	}
	return requestTimeout
}

var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9._-]{8,64}$`)

// requestContext gives every request an id (kept from X-Request-ID when it is
// sane), a logger carrying it, and one log line when it ends.
func (h *Handler) requestContext(c *gin.Context) {
	id := c.GetHeader("X-Request-ID")
	if !requestIDRE.MatchString(id) {
		b := make([]byte, 8)
		rand.Read(b)
		id = hex.EncodeToString(b)
	}
	c.Set(ctxRequestID, id)
	c.Header("X-Request-ID", id)
	c.Set(ctxLogger, h.log) // logger(c) adds the request id when something is logged
	// Every request but the event streams (ours, and MCP's GET) has a
	// deadline, so no request waits without bound for a database connection
	// or a query.
	if d := deadlineOf(c); d > 0 {
		ctx, cancel := context.WithTimeout(c.Request.Context(), d)
		defer cancel()
		c.Request = c.Request.WithContext(ctx)
	}
	start := time.Now()
	// Deferred, so a response aborted mid-body (panic(http.ErrAbortHandler),
	// which recoverPanics passes on to net/http) is logged and counted too.
	defer func() {
		aborted := recover()
		h.metrics.observe(c, time.Since(start))
		status := c.Writer.Status()
		level := slog.LevelInfo
		if status >= 500 || aborted != nil {
			level = slog.LevelError
		} else if c.Request.URL.Path == "/healthz" || c.Request.URL.Path == "/readyz" || c.Request.URL.Path == "/metrics" || strings.HasPrefix(c.Request.URL.Path, "/static/") {
			level = slog.LevelDebug
		}
		attrs := []slog.Attr{slog.String("request_id", id), slog.String("method", c.Request.Method),
			slog.String("route", c.FullPath()), slog.Int("status", status),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000), slog.String("ip", c.ClientIP())}
		if aborted != nil {
			attrs = append(attrs, slog.Bool("aborted", true))
		}
		h.log.LogAttrs(c.Request.Context(), level, "request", attrs...)
		if aborted != nil {
			panic(aborted)
		}
	}()
	c.Next()
}

// recoverPanics turns a panic into a logged 500 without a stack trace for the client.
func (h *Handler) recoverPanics(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			logger(c).Error("panic", "panic", r, "stack", string(debug.Stack()))
			if !c.Writer.Written() {
				h.fail(c, errInternal)
			}
			c.Abort()
		}
	}()
	c.Next()
}

var errInternal = newErr(http.StatusInternalServerError, "internal_error", "internal error")

// hstsValue is sent on every response when PUBLIC_URL is https: two years,
// subdomains included.
const hstsValue = "max-age=63072000; includeSubDomains"

// securityHeaders sets the headers every response carries. The CSP allows no
// inline script or style: htmx is configured not to inject its indicator styles.
// The referrer policy keeps URLs (invite and set-password tokens are in them)
// from other origins while letting the browser send its real Origin on
// same-origin posts, which the cross-origin check needs over plain HTTP.
func (h *Handler) securityHeaders(c *gin.Context) {
	hd := c.Writer.Header()
	for k, v := range securityHeaderValues {
		hd[k] = v
	}
	if h.secure {
		hd["Strict-Transport-Security"] = hstsValues
	}
	c.Next()
}

// securityHeaderValues and hstsValues are shared by every response, keyed in
// canonical form: assigning them allocates nothing per request (a later Set
// replaces the slice, an Add copies it, neither writes into it).
var (
	securityHeaderValues = http.Header{
		"X-Content-Type-Options":  {"nosniff"},
		"Referrer-Policy":         {"same-origin"},
		"X-Frame-Options":         {"DENY"},
		"Content-Security-Policy": {"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"},
	}
	hstsValues = []string{hstsValue}
)

// crossOrigin refuses state-changing browser requests from other origins
// (http.CrossOriginProtection reads Sec-Fetch-Site and Origin). Requests with
// an Authorization header carry their own credential and are not cookie-driven.
//
// Over plain HTTP on a host other than localhost, browsers send no
// Sec-Fetch-Site, so a post passes when its Origin names the request's Host.
// PUBLIC_URL's origin is trusted too, for a proxy that does not pass the
// browser's Host on.
func (h *Handler) crossOrigin() gin.HandlerFunc {
	cop := http.NewCrossOriginProtection()
	if origin := publicOrigin(h.cfg.PublicURL); origin != "" {
		if err := cop.AddTrustedOrigin(origin); err != nil {
			h.log.Warn("PUBLIC_URL is not a usable origin for the cross-origin check", "err", err)
		}
	}
	return func(c *gin.Context) {
		if c.GetHeader("Authorization") == "" {
			if err := cop.Check(c.Request); err != nil {
				h.fail(c, newErr(http.StatusForbidden, "cross_origin", "cross-origin request refused"))
				return
			}
		}
		c.Next()
	}
}

// publicOrigin is the scheme://host[:port] of a public URL, or "".
func publicOrigin(public string) string {
	u, err := url.Parse(public)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// maxJSONBody is the largest JSON request body accepted.
const maxJSONBody = 64 << 10

// maxFormBody is the largest form body (bulk invites are the largest form).
const maxFormBody = 256 << 10

// limitBody caps every request body: a declared length over the limit is
// refused (413) before any handler runs, whether or not the route reads it.
func (h *Handler) limitBody(c *gin.Context) {
	limit := int64(maxFormBody)
	if isAPI(c) {
		limit = maxJSONBody
	}
	if c.Request.ContentLength > limit {
		h.fail(c, &http.MaxBytesError{Limit: limit})
		return
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limit)
	c.Next()
}

// rejectBadText refuses, before any handler runs, a request whose path
// parameters, query values or form values hold a NUL byte or invalid UTF-8:
// 400 invalid_input naming each field. Neither can reach a text column, and
// bun would write an error marker into the SQL. JSON bodies are checked by
// decodeJSON.
func (h *Handler) rejectBadText(c *gin.Context) {
	fields := map[string]string{}
	for _, p := range c.Params {
		if badText(p.Value) {
			fields[p.Key] = badTextMessage
		}
	}
	badValues(fields, "query", c.Request.URL.Query())
	if len(fields) == 0 && c.Request.Method != http.MethodGet && c.Request.Method != http.MethodHead {
		if ct := c.ContentType(); ct == "application/x-www-form-urlencoded" || ct == "multipart/form-data" {
			if err := parseForm(c); err != nil {
				h.fail(c, err)
				return
			}
		}
	}
	if len(fields) > 0 {
		h.fail(c, &models.ValidationError{Fields: fields})
		return
	}
	c.Next()
}

// answerJSON makes the route's refusals JSON error bodies, as under /api/.
func answerJSON(c *gin.Context) {
	c.Set(ctxJSON, true)
	c.Next()
}

// noStore keeps pages and API answers (which hold secrets once) out of caches.
func noStore(c *gin.Context) {
	c.Writer.Header()["Cache-Control"] = noStoreValues
	c.Next()
}

var noStoreValues = []string{"no-store"} // shared, as securityHeaderValues
