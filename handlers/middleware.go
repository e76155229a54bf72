package handlers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
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
	log := h.log.With("request_id", id)
	c.Set(ctxLogger, log)
	// Every request but the event streams (ours, and MCP's GET) has a
	// deadline, so no request waits without bound for a database connection
	// or a query.
	if c.FullPath() != "/events" && (c.FullPath() != mcpPath || c.Request.Method != http.MethodGet) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), requestTimeout)
		defer cancel()
		c.Request = c.Request.WithContext(ctx)
	}
	start := time.Now()
	c.Next()
	h.metrics.observe(c, time.Since(start))
	status := c.Writer.Status()
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	} else if c.Request.URL.Path == "/healthz" || c.Request.URL.Path == "/readyz" || c.Request.URL.Path == "/metrics" || strings.HasPrefix(c.Request.URL.Path, "/static/") {
		level = slog.LevelDebug
	}
	log.Log(c.Request.Context(), level, "request",
		"method", c.Request.Method, "route", c.FullPath(), "status", status,
		"duration_ms", float64(time.Since(start).Microseconds())/1000, "ip", c.ClientIP())
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

// securityHeaders sets the headers every response carries. The CSP allows no
// inline script or style: htmx is configured not to inject its indicator styles.
func securityHeaders(c *gin.Context) {
	hd := c.Writer.Header()
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	c.Next()
}

// crossOrigin refuses state-changing browser requests from other origins
// (http.CrossOriginProtection reads Sec-Fetch-Site and Origin). Requests with
// an Authorization header carry their own credential and are not cookie-driven.
func (h *Handler) crossOrigin() gin.HandlerFunc {
	cop := http.NewCrossOriginProtection()
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

// answerJSON makes the route's refusals JSON error bodies, as under /api/.
func answerJSON(c *gin.Context) {
	c.Set(ctxJSON, true)
	c.Next()
}

// noStore keeps pages and API answers (which hold secrets once) out of caches.
func noStore(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.Next()
}
