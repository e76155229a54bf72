package handlers

import (
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/agentroster/agentroster/models"
)

// inviteJSON is an invite on the wire. Token and URL are set only while the
// invite is active (the creator and org admins may copy the link).
type inviteJSON struct {
	ID          uuid.UUID `json:"id"`
	OrgID       uuid.UUID `json:"orgId"`
	TeamID      uuid.UUID `json:"teamId"`
	AgentName   string    `json:"agentName"`
	AdapterType string    `json:"adapterType"`
	MaxUses     int       `json:"maxUses"`
	Uses        int       `json:"uses"`
	UsesLeft    int       `json:"usesLeft"`
	State       string    `json:"state"`
	CreatedAt   apiTime   `json:"createdAt"`
	ExpiresAt   apiTime   `json:"expiresAt"`
	RevokedAt   *apiTime  `json:"revokedAt"`
	Token       string    `json:"token,omitempty"`
	URL         string    `json:"url,omitempty"`
}

// inviteURL is the link a runtime opens: PUBLIC_URL/invite/<token>.
func (h *Handler) inviteURL(token string) string {
	return strings.TrimRight(h.cfg.PublicURL, "/") + "/invite/" + token
}

// inviteLink decrypts an active invite's link ("" otherwise or when the
// token cannot be opened, e.g. after SECRET_KEY changed).
func (h *Handler) inviteLink(inv *models.Invite) (token, link string) {
	if inv.State(time.Now()) != models.InviteActive {
		return "", ""
	}
	tok, err := inv.Token(h.sealer)
	if err != nil {
		return "", ""
	}
	return tok, h.inviteURL(tok)
}

func (h *Handler) toInviteJSON(inv *models.Invite) inviteJSON {
	now := time.Now()
	out := inviteJSON{
		ID: inv.ID, OrgID: inv.OrgID, TeamID: inv.TeamID, AgentName: inv.AgentName, AdapterType: inv.AdapterType,
		MaxUses: inv.MaxUses, Uses: inv.Uses, UsesLeft: inv.UsesLeft(now), State: inv.State(now),
		CreatedAt: apiTime(inv.CreatedAt), ExpiresAt: apiTime(inv.ExpiresAt), RevokedAt: optAPITime(inv.RevokedAt),
	}
	out.Token, out.URL = h.inviteLink(inv)
	return out
}

// joinRequestJSON is a join request on the wire for operators: everything the
// runtime declared and where the request came from (never the claim secret).
type joinRequestJSON struct {
	ID          uuid.UUID `json:"id"`
	OrgID       uuid.UUID `json:"orgId"`
	InviteID    uuid.UUID `json:"inviteId"`
	TeamID      uuid.UUID `json:"teamId"`
	AgentName   string    `json:"agentName"`
	AdapterType string    `json:"adapterType"`
	Status      string    `json:"status"`
	Title       string    `json:"title"`
	MachineName string    `json:"machineName"`
	MachineIP   string    `json:"machineIp"`
	reportedJSON
	SourceIP       string       `json:"sourceIp"`
	UserAgent      string       `json:"userAgent"`
	CreatedAt      apiTime      `json:"createdAt"`
	DecidedAt      *apiTime     `json:"decidedAt"`
	DecidedBy      *uuid.UUID   `json:"decidedBy"`
	ClaimedAt      *apiTime     `json:"claimedAt"`
	ClaimExpiresAt apiTime      `json:"claimExpiresAt"`
	ClaimVoidedAt  *apiTime     `json:"claimVoidedAt"`
	ClientSecret   bool         `json:"clientSecret"`
	AgentID        *string      `json:"agentId"`
	Agent          *agentDetail `json:"agent,omitempty"`
	Reregistered   *bool        `json:"reregistered,omitempty"`
}

func toJoinRequestJSON(j *models.JoinRequest) joinRequestJSON {
	return joinRequestJSON{
		ID: j.ID, OrgID: j.OrgID, InviteID: j.InviteID, TeamID: j.TeamID, AgentName: j.AgentName,
		AdapterType: j.AdapterType, Status: j.Status, Title: j.Title, MachineName: j.MachineName,
		MachineIP: j.MachineIP, reportedJSON: toReportedJSON(j.LLMVersion, j.Email, j.Telemetry()),
		SourceIP: j.SourceIP, UserAgent: j.UserAgent, CreatedAt: apiTime(j.CreatedAt),
		DecidedAt: optAPITime(j.DecidedAt), DecidedBy: j.DecidedBy, ClaimedAt: optAPITime(j.ClaimedAt),
		ClaimExpiresAt: apiTime(j.ClaimExpiresAt), ClaimVoidedAt: optAPITime(j.ClaimVoidedAt), ClientSecret: j.ClientSecret,
		AgentID: j.AgentID,
	}
}

// --- Runtime: the invite join flow (the token or claim secret is the credential) ---

// inviteInfoJSON is what GET /invites/{token} tells a token holder.
type inviteInfoJSON struct {
	AgentName    string   `json:"agentName"`
	OrgTitle     string   `json:"orgTitle"`
	TeamName     string   `json:"teamName"`
	AdapterType  string   `json:"adapterType"`
	AdapterTypes []string `json:"adapterTypes"`
	ExpiresAt    apiTime  `json:"expiresAt"`
	UsesLeft     int      `json:"usesLeft"`
	JoinURL      string   `json:"joinUrl"`
}

func (h *Handler) toInviteInfo(info *models.InviteInfo, token string) inviteInfoJSON {
	inv := info.Invite
	return inviteInfoJSON{
		AgentName: inv.AgentName, OrgTitle: info.OrgTitle, TeamName: info.TeamName, AdapterType: inv.AdapterType,
		AdapterTypes: models.AdapterTypes, ExpiresAt: apiTime(inv.ExpiresAt), UsesLeft: inv.UsesLeft(time.Now()),
		JoinURL: strings.TrimRight(h.cfg.PublicURL, "/") + "/api/v1/invites/" + token + "/join",
	}
}

// lookupInvite is the rate-limited token lookup behind the JSON route and the landing page.
func (h *Handler) lookupInvite(c *gin.Context, token string) (*models.InviteInfo, error) {
	if err := limit(h.inviteIP, c.ClientIP()); err != nil {
		return nil, err
	}
	return models.LookupInvite(c.Request.Context(), h.db, token)
}

// getInviteAPI serves GET /api/v1/invites/{token}. An unknown token is 404
// invite_not_found, whatever it looks like; expired, spent or revoked is 410.
func (h *Handler) getInviteAPI(c *gin.Context) {
	token := c.Param("token")
	info, err := h.lookupInvite(c, token)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, h.toInviteInfo(info, token))
}

// joinRequestBody is what a runtime declares when it joins.
type joinRequestBody struct {
	agentDeclaration
	// ClientSecret is the runtime's own claim secret: only it claims, and a
	// replay must repeat it.
	ClientSecret string `json:"clientSecret"`
}

func (b joinRequestBody) input(c *gin.Context) models.JoinInput {
	in := b.joinInput()
	in.ClientSecret, in.IdempotencyKey = b.ClientSecret, c.GetHeader("Idempotency-Key")
	in.SourceIP, in.UserAgent = c.ClientIP(), c.Request.UserAgent()
	return in
}

// join uses the invite of token (rate limited per IP).
func (h *Handler) join(c *gin.Context, token string, in models.JoinInput) (*models.Joined, error) {
	if err := limit(h.inviteIP, c.ClientIP()); err != nil {
		return nil, err
	}
	return models.JoinInvite(c.Request.Context(), h.db, token, in, h.actor(c))
}

// claimURL is where the runtime exchanges its claim secret for the key.
func (h *Handler) claimURL(id uuid.UUID) string {
	return strings.TrimRight(h.cfg.PublicURL, "/") + "/api/v1/join-requests/" + id.String() + "/claim"
}

// joinAnswer is the answer to a join and to a claim re-issue. ClaimSecret is
// present only when the server issued one now: it exists once.
func (h *Handler) joinAnswer(j *models.Joined) gin.H {
	out := gin.H{
		"joinRequestId":  j.Request.ID,
		"status":         j.Request.Status,
		"agentName":      j.Request.AgentName,
		"clientSecret":   j.Request.ClientSecret,
		"claimUrl":       h.claimURL(j.Request.ID),
		"claimExpiresAt": apiTime(j.Request.ClaimExpiresAt),
	}
	if j.ClaimSecret != "" {
		out["claimSecret"] = j.ClaimSecret
	}
	return out
}

// joinInviteAPI serves POST /api/v1/invites/{token}/join → 201
// {joinRequestId, status, claimSecret, claimUrl}; with a clientSecret in the
// body there is no claimSecret (the runtime's own secret claims). A retry
// with the same Idempotency-Key answers the same request's id and state,
// never a secret (Idempotent-Replayed: true).
func (h *Handler) joinInviteAPI(c *gin.Context) {
	var body joinRequestBody
	if err := decodeJSON(c, &body); err != nil {
		h.fail(c, err)
		return
	}
	j, err := h.join(c, c.Param("token"), body.input(c))
	if err != nil {
		h.fail(c, err)
		return
	}
	if j.Replayed {
		c.Header("Idempotent-Replayed", "true")
	}
	c.JSON(http.StatusCreated, h.joinAnswer(j))
}

// claimAPI serves POST /api/v1/join-requests/{id}/claim {claimSecret}: 202
// while pending, 200 with the API key once after approval, then 409.
func (h *Handler) claimAPI(c *gin.Context) {
	if err := limit(h.claimIP, c.ClientIP()); err != nil {
		h.fail(c, err)
		return
	}
	var body struct {
		ClaimSecret string `json:"claimSecret"`
	}
	if err := decodeJSON(c, &body); err != nil {
		h.fail(c, err)
		return
	}
	if body.ClaimSecret == "" {
		h.fail(c, models.Invalid("claimSecret", "is required"))
		return
	}
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		h.fail(c, models.ErrBadClaim)
		return
	}
	cl, err := models.ClaimJoinRequest(c.Request.Context(), h.db, id, body.ClaimSecret, h.actor(c))
	if err != nil {
		h.fail(c, err)
		return
	}
	if cl.Pending {
		c.Header("Retry-After", "5")
		c.JSON(http.StatusAccepted, gin.H{"status": models.JoinPending, "joinRequestId": id})
		return
	}
	c.JSON(http.StatusOK, gin.H{
		"apiKey": cl.RawKey, "agentId": *cl.Key.AgentID, "orgId": cl.Key.OrgID, "teamId": cl.Key.TeamID,
		"keyId": cl.Key.ID, "prefix": cl.Key.Prefix,
	})
}

// --- Management: /internal/invites and /internal/join-requests ---

// listInvitesAPI serves GET /internal/invites?orgId=&q=&state=&limit=&after=:
// newest first, 100 a page (limit ≤ 500), the next page in the Link header;
// viewers get no links.
func (h *Handler) listInvitesAPI(c *gin.Context) {
	s := scopeOf(c)
	f := models.InviteFilter{Org: s.OrgID, Query: c.Query("q"), Limit: 100}
	var err error
	if f.State, err = models.ParseInviteState(c.Query("state")); err != nil {
		h.fail(c, err)
		return
	}
	if v := c.Query("limit"); v != "" {
		n, err := parsePositive(v)
		if err != nil || n > 500 {
			h.fail(c, models.Invalid("limit", "must be a number from 1 to 500"))
			return
		}
		f.Limit = n
	}
	if v := c.Query("after"); v != "" {
		if f.After, err = models.ParseInviteCursor(v); err != nil {
			h.fail(c, err)
			return
		}
	}
	invs, next, err := models.ListInvitePage(c.Request.Context(), h.db, f)
	if err != nil {
		h.fail(c, err)
		return
	}
	out := make([]inviteJSON, len(invs))
	for i := range invs {
		out[i] = h.toInviteJSON(&invs[i])
		if !s.admin() {
			// The link is the runtime's credential: admins only.
			out[i].Token, out[i].URL = "", ""
		}
	}
	if next != nil {
		setNextLink(c, next.String())
	}
	c.JSON(http.StatusOK, out)
}

type createInviteRequest struct {
	OrgID       string `json:"orgId"`
	TeamID      string `json:"teamId"`
	AgentName   string `json:"agentName"`
	AdapterType string `json:"adapterType"`
	MaxUses     *int   `json:"maxUses"`
	TTLSeconds  *int64 `json:"ttlSeconds"`
}

// inviteInput applies the defaults (1 use, 24 hours) to what was given.
func inviteInput(team uuid.UUID, name, adapter string, maxUses *int, ttl *int64) models.InviteInput {
	in := models.InviteInput{Team: team, AgentName: name, AdapterType: adapter, MaxUses: 1,
		TTLSeconds: int64(models.InviteTTLDefault / time.Second)}
	if maxUses != nil {
		in.MaxUses = *maxUses
	}
	if ttl != nil {
		in.TTLSeconds = *ttl
	}
	return in
}

// optTeam parses an optional team id (uuid.Nil: the org's default team).
func optTeam(s string) (uuid.UUID, error) {
	if s == "" {
		return uuid.Nil, nil
	}
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, models.Invalid("teamId", "must be a UUID")
	}
	return id, nil
}

// createInviteAPI serves POST /internal/invites {orgId?, teamId?, agentName,
// adapterType, maxUses, ttlSeconds} → 201 with the token and the invite URL.
func (h *Handler) createInviteAPI(c *gin.Context) {
	var req createInviteRequest
	if err := decodeJSON(c, &req); err != nil {
		h.fail(c, err)
		return
	}
	s := scopeOf(c)
	if err := bodyOrgMatches(req.OrgID, s); err != nil {
		h.fail(c, err)
		return
	}
	team, err := optTeam(req.TeamID)
	if err != nil {
		h.fail(c, err)
		return
	}
	inv, err := models.CreateInvite(c.Request.Context(), h.db, h.sealer, s.OrgID, inviteInput(team, req.AgentName, req.AdapterType, req.MaxUses, req.TTLSeconds), h.actor(c))
	if err != nil {
		h.fail(c, err)
		return
	}
	out := h.toInviteJSON(inv.Invite)
	out.Token, out.URL = inv.Token, h.inviteURL(inv.Token)
	c.JSON(http.StatusCreated, out)
}

// deleteInviteAPI serves DELETE /internal/invites/{id}: the invite is revoked
// (its link stops working; the row stays for its join requests). Idempotent.
func (h *Handler) deleteInviteAPI(c *gin.Context) {
	id, err := pathUUID(c, "id")
	if err != nil {
		h.fail(c, err)
		return
	}
	if _, err := models.DeleteInvite(c.Request.Context(), h.db, scopeOf(c).OrgID, id, h.actor(c)); err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"success": true})
}

// listJoinRequestsAPI serves GET /internal/join-requests?status=&orgId=
// (status: pending, approved, rejected or all; default all).
func (h *Handler) listJoinRequestsAPI(c *gin.Context) {
	s := scopeOf(c)
	status, err := models.ParseJoinStatus(c.Query("status"))
	if err != nil {
		h.fail(c, err)
		return
	}
	jrs, err := models.ListJoinRequests(c.Request.Context(), h.db, models.JoinFilter{Org: s.OrgID, Status: status})
	if err != nil {
		h.fail(c, err)
		return
	}
	out := make([]joinRequestJSON, len(jrs))
	for i := range jrs {
		out[i] = toJoinRequestJSON(&jrs[i])
	}
	c.JSON(http.StatusOK, out)
}

// decideJoinRequest approves, rejects or rejects and revokes the invite: the
// one piece of logic behind the JSON routes and the HTML buttons.
func (h *Handler) decideJoinRequest(c *gin.Context, org, id uuid.UUID, action string) (*models.JoinRequest, *models.Approval, error) {
	switch action {
	case "approve":
		ap, err := models.ApproveJoinRequest(c.Request.Context(), h.db, org, id, h.actor(c))
		if err != nil {
			return nil, nil, err
		}
		if ap.RevokedKeys > 0 {
			// A re-registration revoked the agent's earlier keys: refuse them
			// here at once, not when this replica's own event comes back.
			h.forget(org, models.EventAgent, ap.Agent.ID)
		}
		return ap.Request, ap, nil
	case "reject", "reject-revoke":
		jr, err := models.RejectJoinRequest(c.Request.Context(), h.db, org, id, action == "reject-revoke", h.actor(c))
		return jr, nil, err
	}
	return nil, nil, errNotFound
}

// decideJoinRequestAPI serves POST /internal/join-requests/{id}/approve and
// /reject (body {} or {"revokeInvite":true}). The loser of a race gets 409.
func (h *Handler) decideJoinRequestAPI(action string) gin.HandlerFunc {
	return func(c *gin.Context) {
		id, err := pathUUID(c, "id")
		if err != nil {
			h.fail(c, err)
			return
		}
		var body struct {
			RevokeInvite bool `json:"revokeInvite"`
		}
		if err := decodeJSON(c, &body); err != nil {
			h.fail(c, err)
			return
		}
		act := action
		if act == "reject" && body.RevokeInvite {
			act = "reject-revoke"
		}
		jr, ap, err := h.decideJoinRequest(c, scopeOf(c).OrgID, id, act)
		if err != nil {
			h.fail(c, err)
			return
		}
		out := toJoinRequestJSON(jr)
		if ap != nil {
			d := h.detail(ap.Agent)
			out.Agent, out.Reregistered = &d, &ap.Reregistered
		}
		c.JSON(http.StatusOK, out)
	}
}

// reissueClaimAPI serves POST /internal/join-requests/{id}/reissue: a new
// claim secret for an approved, unclaimed request, shown this once to the
// operator to hand to the runtime, with a new 7-day window.
func (h *Handler) reissueClaimAPI(c *gin.Context) {
	id, err := pathUUID(c, "id")
	if err != nil {
		h.fail(c, err)
		return
	}
	j, err := models.ReissueClaim(c.Request.Context(), h.db, scopeOf(c).OrgID, id, h.actor(c))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, h.joinAnswer(j))
}
