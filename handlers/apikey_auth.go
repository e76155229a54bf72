package handlers

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/agentroster/agentroster/models"
)

// apiKeyFrom returns the API key of an `Authorization: ApiKey <key>` header,
// or of `Bearer <key>` when the token carries the key prefix. ok is false when
// the header holds no API key at all (absent, or an operator's bearer token).
func apiKeyFrom(c *gin.Context) (key string, ok bool) {
	scheme, tok, _ := strings.Cut(strings.TrimSpace(c.GetHeader("Authorization")), " ")
	tok = strings.TrimSpace(tok)
	switch {
	case strings.EqualFold(scheme, "ApiKey"):
		return tok, true
	case strings.EqualFold(scheme, "Bearer") && strings.HasPrefix(tok, models.APIKeyPrefix):
		return tok, true
	}
	return "", false
}

// exhausted reports whether key has no token left, without taking one, and
// how long until the next.
func (l *limiter) exhausted(key string) (bool, time.Duration) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		return false, 0
	}
	if tokens := b.lim.TokensAt(now); tokens < 1 {
		return true, time.Duration((1 - tokens) * float64(l.every))
	}
	return false, 0
}

// checkKey returns the live API key of the request. A missing key is 401
// unauthorized; an unknown, disabled, revoked or expired one is 401
// invalid_credential; both carry WWW-Authenticate. Failures are counted per
// client IP (h.badKeyIP): once that budget is spent the IP gets 429 with
// Retry-After, even with a good key, until it refills.
func (h *Handler) checkKey(c *gin.Context) (*models.APIKey, error) {
	raw, ok := apiKeyFrom(c)
	if !ok {
		c.Header("WWW-Authenticate", keyChallenge)
		return nil, errUnauthenticated
	}
	ip := c.ClientIP()
	if spent, retry := h.badKeyIP.exhausted(ip); spent {
		if h.badKeyIP.rejected != nil {
			h.badKeyIP.rejected()
		}
		return nil, &rateLimited{retry: retry}
	}
	key, err := h.cache.Key(c.Request.Context(), h.db, raw)
	if errors.Is(err, models.ErrUnauthorized) {
		h.metrics.keyFailed.Inc()
		if err := limit(h.badKeyIP, ip); err != nil {
			return nil, err
		}
		c.Header("WWW-Authenticate", keyChallenge+`, error="invalid_token"`)
		return nil, errBadCredential
	}
	if err != nil {
		return nil, err
	}
	h.writer.KeyUsed(key)
	return key, nil
}

// keyChallenge is the WWW-Authenticate challenge of the runtime routes.
const keyChallenge = `ApiKey realm="agentroster"`

// forget drops what a change just committed names from this replica's cache
// at once; other replicas drop it when the change's event reaches them.
func (h *Handler) forget(org uuid.UUID, kind, id string) {
	h.cache.Forget(models.Event{Org: org, Kind: kind, ID: id})
}

var (
	errKeyBound = newErr(http.StatusForbidden, "key_bound_to_other_agent", "this API key belongs to another agent")
)

// keyAgent loads the agent of :agentId for the calling key: a key bound to an
// agent may act only on that agent (403 key_bound_to_other_agent); the agent
// must be in the key's org (404 otherwise).
func (h *Handler) keyAgent(c *gin.Context) (*models.Agent, error) {
	k := currentKey(c)
	id := c.Param("agentId")
	if k.AgentID != nil && *k.AgentID != id {
		return nil, errKeyBound
	}
	if !models.ValidAgentID(id) {
		return nil, errNotFound
	}
	return h.cache.Agent(c.Request.Context(), h.db, k.OrgID, id)
}
