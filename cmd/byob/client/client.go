// Package client is a Go client for the runtime side of the Agent Roster API:
// joining through an invite, registering with a team key, polling status,
// reporting presence. It is what cmd/byob is built on, and a reference for
// runtime authors in other languages (see /docs/api on a server).
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Version is the client's version, sent in the User-Agent.
const Version = "1.0.0"

// Client calls one server. APIKey is needed by every call except the invite
// join flow (Invite, Join, Claim).
type Client struct {
	BaseURL   string // scheme and host (and any path prefix), without /api/v1
	APIKey    string
	HTTP      *http.Client
	UserAgent string
}

// New returns a client for baseURL with a 30-second request timeout.
func New(baseURL, apiKey string) *Client {
	return &Client{
		BaseURL:   strings.TrimRight(baseURL, "/"),
		APIKey:    apiKey,
		HTTP:      &http.Client{Timeout: 30 * time.Second},
		UserAgent: "byob/" + Version + " (" + runtime.GOOS + "; " + runtime.GOARCH + ")",
	}
}

// APIError is an error answered by the server in its error body.
type APIError struct {
	Status     int
	Code       string
	Message    string
	Details    map[string]any
	RetryAfter time.Duration // from a 429's Retry-After
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s (HTTP %d, %s)", e.Message, e.Status, e.Code)
}

// IsCode reports whether err is an APIError with the given code.
func IsCode(err error, code string) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == code
}

// StatusOf is the HTTP status of an APIError, or 0 for any other error.
func StatusOf(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// Transient reports whether a call that failed with err is worth retrying:
// network errors, timeouts, 429 and 5xx answers.
func Transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status == http.StatusTooManyRequests || ae.Status >= 500
	}
	var de *decodeError
	return !errors.As(err, &de)
}

type decodeError struct{ err error }

func (e *decodeError) Error() string { return "unexpected answer from the server: " + e.err.Error() }

// do sends a JSON request to /api/v1+path and decodes a 2xx answer into out.
// It returns the status so callers can tell 200 from 202.
func (c *Client) do(ctx context.Context, method, path string, in, out any, header ...string) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+"/api/v1"+path, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.APIKey != "" {
		req.Header.Set("Authorization", "ApiKey "+c.APIKey)
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, apiError(resp, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, &decodeError{err}
		}
	}
	return resp.StatusCode, nil
}

func apiError(resp *http.Response, data []byte) *APIError {
	var body struct {
		Error struct {
			Code    string         `json:"code"`
			Message string         `json:"message"`
			Details map[string]any `json:"details"`
		} `json:"error"`
	}
	e := &APIError{Status: resp.StatusCode}
	if json.Unmarshal(data, &body) == nil && body.Error.Code != "" {
		e.Code, e.Message, e.Details = body.Error.Code, body.Error.Message, body.Error.Details
	} else {
		e.Code, e.Message = "http_"+strconv.Itoa(resp.StatusCode), http.StatusText(resp.StatusCode)
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}

// Telemetry is optional machine information; nil fields are omitted.
type Telemetry struct {
	OSName       *string `json:"osName,omitempty"`
	OSVersion    *string `json:"osVersion,omitempty"`
	RAMBytes     *int64  `json:"ramBytes,omitempty"`
	StorageBytes *int64  `json:"storageBytes,omitempty"`
	StorageType  *string `json:"storageType,omitempty"`
}

// Invite is what an invite link offers.
type Invite struct {
	AgentName    string    `json:"agentName"`
	OrgTitle     string    `json:"orgTitle"`
	TeamName     string    `json:"teamName"`
	AdapterType  string    `json:"adapterType"`  // the type the invite was made for
	AdapterTypes []string  `json:"adapterTypes"` // the types a runtime may declare
	JoinURL      string    `json:"joinUrl"`
	ExpiresAt    time.Time `json:"expiresAt"`
	UsesLeft     int       `json:"usesLeft"`
}

// JoinInput is what a runtime declares when it asks to join.
type JoinInput struct {
	AdapterType string `json:"adapterType"`
	Title       string `json:"title,omitempty"`
	MachineName string `json:"machineName,omitempty"`
	MachineIP   string `json:"machineIp,omitempty"`
	LLMVersion  string `json:"llmVersion,omitempty"`
	Email       string `json:"email,omitempty"`
	// ClientSecret is the runtime's own claim secret (at least 32
	// characters): only it claims the key, and a retry with the same
	// idempotency key must repeat it.
	ClientSecret string `json:"clientSecret,omitempty"`
	Telemetry
}

// JoinRequest is a created join request. ClaimSecret is shown only once, and
// only when no ClientSecret was sent.
type JoinRequest struct {
	JoinRequestID string `json:"joinRequestId"`
	Status        string `json:"status"`
	ClaimSecret   string `json:"claimSecret,omitempty"`
	ClaimURL      string `json:"claimUrl"`
	// ClaimExpiresAt is when an approved key stops being claimable.
	ClaimExpiresAt time.Time `json:"claimExpiresAt"`
}

// Claim is the answer to an approved join request: the agent's API key.
type Claim struct {
	APIKey  string `json:"apiKey"`
	AgentID string `json:"agentId"`
	OrgID   string `json:"orgId"`
	TeamID  string `json:"teamId"`
	KeyID   string `json:"keyId"`
	Prefix  string `json:"prefix"`
}

// RegisterInput is the body of a registration with a team key.
type RegisterInput struct {
	ID          string `json:"id"`
	Title       string `json:"title,omitempty"`
	MachineIP   string `json:"machineIp,omitempty"`
	MachineName string `json:"machineName,omitempty"`
	LLMVersion  string `json:"llmVersion,omitempty"`
	Email       string `json:"email,omitempty"`
	AdapterType string `json:"adapterType,omitempty"`
	Telemetry
}

// Agent is the runtime's view of an agent.
type Agent struct {
	ID                 string     `json:"id"`
	Title              string     `json:"title"`
	Status             string     `json:"status"`
	AgentPickupEnabled bool       `json:"agentPickupEnabled"`
	IsOnline           bool       `json:"isOnline"`
	LastSeenAt         *time.Time `json:"lastSeenAt"`
	Telemetry
	CreatedAt time.Time `json:"createdAt"`
}

// Status is an agent's status as polled by its runtime.
type Status struct {
	Status             string     `json:"status"`
	AgentPickupEnabled bool       `json:"agentPickupEnabled"`
	IsOnline           bool       `json:"isOnline"`
	LastSeenAt         *time.Time `json:"lastSeenAt"`
}

// Agent statuses.
const (
	StatusPending  = "pending"
	StatusApproved = "approved"
	StatusStopped  = "stopped"
)

// Org is an organization the key can see.
type Org struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	Color string `json:"color"`
}

// Permissions is an agent's resolved column permissions.
type Permissions struct {
	CanRead       []string `json:"canRead"`
	CanModerate   []string `json:"canModerate"`
	CanTransition []string `json:"canTransition"`
	ColumnAccess  []struct {
		ColumnID    string `json:"columnId"`
		Name        string `json:"name"`
		CanRead     bool   `json:"canRead"`
		CanModerate bool   `json:"canModerate"`
	} `json:"columnAccess"`
	Permissions []string `json:"permissions"`
}

// ErrPending is returned by Claim while the join request awaits approval.
var ErrPending = errors.New("join request is pending approval")

// Invite shows the invite of token (410 when expired, spent or revoked).
func (c *Client) Invite(ctx context.Context, token string) (*Invite, error) {
	var out Invite
	_, err := c.do(ctx, http.MethodGet, "/invites/"+url.PathEscape(token), nil, &out)
	return &out, err
}

// Join creates a join request. Retrying with the same idempotencyKey answers
// the same request without using the invite again.
func (c *Client) Join(ctx context.Context, token string, in JoinInput, idempotencyKey string) (*JoinRequest, error) {
	var out JoinRequest
	var hdr []string
	if idempotencyKey != "" {
		hdr = []string{"Idempotency-Key", idempotencyKey}
	}
	_, err := c.do(ctx, http.MethodPost, "/invites/"+url.PathEscape(token)+"/join", in, &out, hdr...)
	return &out, err
}

// Claim asks for the key of join request id. It returns ErrPending while the
// request awaits approval, an APIError with code join_request_rejected once
// rejected, and the key exactly once after approval (already_claimed after).
func (c *Client) Claim(ctx context.Context, id, claimSecret string) (*Claim, error) {
	var out Claim
	status, err := c.do(ctx, http.MethodPost, "/join-requests/"+url.PathEscape(id)+"/claim", map[string]string{"claimSecret": claimSecret}, &out)
	if err != nil {
		return nil, err
	}
	if status == http.StatusAccepted || out.APIKey == "" {
		return nil, ErrPending
	}
	return &out, nil
}

// Register creates a pending agent in team with the client's team key.
func (c *Client) Register(ctx context.Context, team string, in RegisterInput) (*Agent, error) {
	var out Agent
	_, err := c.do(ctx, http.MethodPost, "/teams/"+url.PathEscape(team)+"/agents/register", in, &out)
	return &out, err
}

// Status polls the agent's status; it answers for pending and stopped agents too.
func (c *Client) Status(ctx context.Context, agent string) (*Status, error) {
	var out Status
	_, err := c.do(ctx, http.MethodGet, "/agents/"+url.PathEscape(agent)+"/status", nil, &out)
	return &out, err
}

// Online reports the agent online (approved agents only: a stopped one gets
// an APIError agent_stopped, a pending one agent_not_approved).
func (c *Client) Online(ctx context.Context, agent string) (*Agent, error) {
	var out Agent
	_, err := c.do(ctx, http.MethodPost, "/agents/"+url.PathEscape(agent)+"/online", nil, &out)
	return &out, err
}

// Offline reports the agent offline; always allowed.
func (c *Client) Offline(ctx context.Context, agent string) (*Agent, error) {
	var out Agent
	_, err := c.do(ctx, http.MethodPost, "/agents/"+url.PathEscape(agent)+"/offline", nil, &out)
	return &out, err
}

// Permissions reads the agent's resolved column permissions.
func (c *Client) Permissions(ctx context.Context, agent string) (*Permissions, error) {
	var out Permissions
	_, err := c.do(ctx, http.MethodGet, "/agents/"+url.PathEscape(agent)+"/permissions", nil, &out)
	return &out, err
}

// Orgs lists the organizations the key can see (one).
func (c *Client) Orgs(ctx context.Context) ([]Org, error) {
	var out []Org
	_, err := c.do(ctx, http.MethodGet, "/agent/orgs", nil, &out)
	return out, err
}

// ParseInviteURL splits an invite link (https://host/invite/<token>, also
// with a path prefix before /invite/ or as …/api/v1/invites/<token>) into the
// server's base URL and the token.
func ParseInviteURL(s string) (base, token string, err error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", "", errors.New("not an invite link: want https://<server>/invite/<token>")
	}
	path := strings.TrimRight(u.Path, "/")
	for _, marker := range []string{"/api/v1/invites/", "/invite/"} {
		if i := strings.LastIndex(path, marker); i >= 0 {
			token = path[i+len(marker):]
			if token == "" || strings.Contains(token, "/") {
				break
			}
			return u.Scheme + "://" + u.Host + path[:i], token, nil
		}
	}
	return "", "", errors.New("not an invite link: want https://<server>/invite/<token>")
}
