package handlers

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/agentroster/agentroster/models"
)

// apiKeyFrom returns the API key of an `Authorization: ApiKey <key>` header,
// or of `Bearer <key>` when the token carries the key prefix. ok is false when
// the header holds no API key at all (absent, or an operator's bearer token).
func apiKeyFrom(c *gin.Context) (key string, ok bool) {
	return apiKeyIn(c.GetHeader("Authorization"))
}

// apiKeyIn is apiKeyFrom for the value of an Authorization header.
func apiKeyIn(authorization string) (key string, ok bool) {
	scheme, tok, _ := strings.Cut(strings.TrimSpace(authorization), " ")
	tok = strings.TrimSpace(tok)
	switch {
	case strings.EqualFold(scheme, "ApiKey"):
		return tok, true
	case strings.EqualFold(scheme, "Bearer") && strings.HasPrefix(tok, models.APIKeyPrefix):
		return tok, true
	}
	return "", false
}

// checkKey returns the live API key of the request. A missing key is 401
// unauthorized; an unknown, disabled, revoked or expired one is 401
// invalid_credential; both carry WWW-Authenticate. Failures are counted per
// client IP (h.badKeyIP): once that budget is spent the IP gets 429 with
// Retry-After, even with a good key, until it refills.
func (h *Handler) checkKey(c *gin.Context) (*models.APIKey, error) {
	key, challenge, err := h.liveKeyOf(c.Request.Context(), c.GetHeader("Authorization"), c.ClientIP())
	if challenge != "" {
		c.Header("WWW-Authenticate", challenge)
	}
	return key, err
}

// liveKeyOf is checkKey for an Authorization header value sent from ip, without
// gin: the JSON routes and every MCP tool call use it. challenge is the
// WWW-Authenticate value to answer with a 401 ("" otherwise).
func (h *Handler) liveKeyOf(ctx context.Context, authorization, ip string) (key *models.APIKey, challenge string, err error) {
	raw, ok := apiKeyIn(authorization)
	if !ok {
		return nil, keyChallenge, errUnauthenticated
	}
	key, err = h.cache.Key(ctx, h.db, raw)
	if errors.Is(err, models.ErrUnauthorized) {
		// Failures are limited per address; a good key is never refused, so
		// a runtime still polling with its revoked key cannot lock out the
		// one that replaced it on the same host.
		h.metrics.keyFailed.Inc()
		if err := limit(h.badKeyIP, ip); err != nil {
			return nil, "", err
		}
		return nil, keyChallenge + `, error="invalid_token"`, errBadCredential
	}
	if err != nil {
		return nil, "", err
	}
	h.writer.KeyUsed(key)
	return key, "", nil
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

// agentFor loads agent id for the calling key k: a key bound to an agent may
// act only on that agent (403 key_bound_to_other_agent); the agent must be in
// the key's org (404 otherwise).
func (h *Handler) agentFor(ctx context.Context, k *models.APIKey, id string) (*models.Agent, error) {
	if k.AgentID != nil && *k.AgentID != id {
		return nil, errKeyBound
	}
	if !models.ValidAgentID(id) {
		return nil, errNotFound
	}
	return h.cache.Agent(ctx, h.db, k.OrgID, id)
}
