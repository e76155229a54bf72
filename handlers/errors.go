package handlers

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/agentroster/agentroster/models"
)

// apiError is an error with its HTTP status and code decided.
type apiError struct {
	Status  int
	Code    string
	Message string
	Details map[string]any
}

func (e *apiError) Error() string { return e.Message }

func newErr(status int, code, message string) *apiError {
	return &apiError{Status: status, Code: code, Message: message}
}

var (
	errUnauthenticated = newErr(http.StatusUnauthorized, "unauthorized", "authentication required")
	errBadCredential   = newErr(http.StatusUnauthorized, "invalid_credential", "invalid, expired or revoked credential")
	errForbidden       = newErr(http.StatusForbidden, "forbidden", "not allowed")
	errNotFound        = newErr(http.StatusNotFound, "not_found", "not found")
)

// rateLimited is answered 429 with Retry-After.
type rateLimited struct{ retry time.Duration }

func (e *rateLimited) Error() string { return "rate limited" }

// classify maps an error to status, code, message and details. Anything it
// does not know is a 500 whose text never reaches the client.
func classify(err error) (status int, code, message string, details map[string]any) {
	var ae *apiError
	var se *models.StateError
	var ve *models.ValidationError
	var mb *http.MaxBytesError
	var rl *rateLimited
	switch {
	case errors.As(err, &ae):
		return ae.Status, ae.Code, ae.Message, ae.Details
	case errors.As(err, &rl):
		return http.StatusTooManyRequests, "rate_limited", "too many requests; try again later", map[string]any{"retryAfterSeconds": retrySeconds(rl.retry)}
	case errors.As(err, &mb):
		return http.StatusRequestEntityTooLarge, "body_too_large", "request body is too large", map[string]any{"limitBytes": mb.Limit}
	case errors.As(err, &ve):
		fields := make(map[string]any, len(ve.Fields))
		for k, v := range ve.Fields {
			fields[k] = v
		}
		return http.StatusBadRequest, "invalid_input", ve.Error(), map[string]any{"fields": fields}
	case errors.As(err, &se):
		status := http.StatusConflict
		switch {
		case errors.Is(se.Kind, models.ErrForbidden):
			status = http.StatusForbidden
		case errors.Is(se.Kind, models.ErrGone):
			status = http.StatusGone
		case errors.Is(se.Kind, models.ErrNotFound):
			status = http.StatusNotFound
		case errors.Is(se.Kind, models.ErrUnauthorized):
			status = http.StatusUnauthorized
		}
		return status, se.Code, se.Message, se.Details
	case errors.Is(err, models.ErrNotFound):
		return http.StatusNotFound, "not_found", "not found", nil
	case errors.Is(err, models.ErrConflict):
		return http.StatusConflict, "conflict", "conflicts with an existing record", nil
	case errors.Is(err, models.ErrUnauthorized):
		return http.StatusUnauthorized, "unauthorized", "authentication required", nil
	case errors.Is(err, models.ErrForbidden):
		return http.StatusForbidden, "forbidden", "not allowed", nil
	case errors.Is(err, models.ErrGone):
		return http.StatusGone, "gone", "no longer available", nil
	case models.Unavailable(err):
		return http.StatusServiceUnavailable, "unavailable", "the service is temporarily unavailable; try again shortly", nil
	}
	return http.StatusInternalServerError, "internal_error", "internal error", nil
}

func retrySeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}

// fail answers err as JSON (API routes) or as an error page, toast or plain
// text (HTML routes), and logs server errors with the request id.
func (h *Handler) fail(c *gin.Context, err error) {
	status, code, message, details := classify(err)
	log := logger(c)
	if status >= 500 && clientGone(c) {
		// The client hung up and the work stopped with it: not a server
		// error. Nobody reads the answer; the status is for the log and the
		// metrics.
		log.Info("request abandoned by the client", "err", err)
		if isAPI(c) {
			c.AbortWithStatusJSON(statusClientClosed, gin.H{"error": gin.H{"code": "client_closed_request", "message": "the client closed the request"}})
			return
		}
		c.AbortWithStatus(statusClientClosed)
		return
	}
	if status >= 500 {
		log.Error("request failed", "err", err)
	} else {
		log.Debug("request refused", "status", status, "code", code, "err", err)
	}
	var rl *rateLimited
	if errors.As(err, &rl) {
		c.Header("Retry-After", strconv.Itoa(retrySeconds(rl.retry)))
	} else if status == http.StatusServiceUnavailable {
		c.Header("Retry-After", "1")
	}
	if isAPI(c) {
		body := gin.H{"code": code, "message": message}
		if details != nil {
			body["details"] = details
		}
		c.AbortWithStatusJSON(status, gin.H{"error": body})
		return
	}
	if status == http.StatusUnauthorized {
		h.redirectToLogin(c)
		return
	}
	if isHTMX(c) {
		toast(c, message, "error")
		c.Header("HX-Reswap", "none")
		c.AbortWithStatus(status)
		return
	}
	h.renderStatus(c, status, errorPage(c, h, status, message))
	c.Abort()
}

// statusClientClosed is the status logged and counted for a request whose
// client hung up before the answer (nginx's 499).
const statusClientClosed = 499

// clientGone reports whether the request's client has gone away: its
// context was cancelled, not timed out by requestTimeout.
func clientGone(c *gin.Context) bool {
	return errors.Is(c.Request.Context().Err(), context.Canceled)
}

// logger is the request's logger: the server's, with the request id.
func logger(c *gin.Context) *slog.Logger {
	l, ok := c.Get(ctxLogger)
	if !ok {
		return slog.Default()
	}
	return l.(*slog.Logger).With("request_id", c.GetString(ctxRequestID))
}
