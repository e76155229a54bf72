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

// The public join flow: a runtime (or a person on the landing page) holding
// an invite token asks to join, then claims its API key with the claim
// secret. The token or the secret is the credential.

// --- JSON: /api/v1/invites/{token}, /join, /api/v1/join-requests/{id}/claim ---

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

// --- HTML: the invite landing page /invite/{token} ---

// wantsJSON reports whether the client asked for JSON rather than a page.
func wantsJSON(c *gin.Context) bool {
	accept := c.GetHeader("Accept")
	return strings.Contains(accept, "application/json") && !strings.Contains(accept, "text/html")
}

func (h *Handler) landing(info *models.InviteInfo, token string) views.InviteLanding {
	inv := info.Invite
	return views.InviteLanding{
		Token: token, AgentName: inv.AgentName, OrgTitle: info.OrgTitle, TeamName: info.TeamName,
		AdapterType: inv.AdapterType, ExpiresAt: inv.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC"),
		UsesLeft: inv.UsesLeft(time.Now()), BaseURL: strings.TrimRight(h.cfg.PublicURL, "/"),
	}
}

// invitePage serves GET /invite/{token}: the invite and its adapter selection
// form in a browser, the JSON of GET /api/v1/invites/{token} with
// Accept: application/json. Unknown tokens answer the same 404 page whatever
// they look like.
func (h *Handler) invitePage(c *gin.Context) {
	if wantsJSON(c) {
		c.Set(ctxJSON, true)
		h.getInviteAPI(c)
		return
	}
	token := c.Param("token")
	info, err := h.lookupInvite(c, token)
	if err != nil {
		h.fail(c, err)
		return
	}
	l := h.landing(info, token)
	l.Form.IdempotencyKey = models.RandomBase62(24)
	h.render(c, views.InviteLandingPage(l))
}

// inviteJoinHTML serves the landing page's form POST /invite/{token}: it
// creates the join request and shows the claim secret and claim URL once.
func (h *Handler) inviteJoinHTML(c *gin.Context) {
	token := c.Param("token")
	form := views.JoinForm{AdapterType: c.PostForm("adapterType"), Title: c.PostForm("title"), MachineName: c.PostForm("machineName"),
		IdempotencyKey: c.PostForm("idempotencyKey")}
	in := joinRequestBody{agentDeclaration: agentDeclaration{AdapterType: form.AdapterType, Title: form.Title, MachineName: form.MachineName}}.input(c)
	in.IdempotencyKey = form.IdempotencyKey
	j, err := h.join(c, token, in)
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		info, lerr := models.LookupInvite(c.Request.Context(), h.db, token)
		if lerr != nil {
			h.fail(c, lerr)
			return
		}
		l := h.landing(info, token)
		form.Errors = ve.Fields
		l.Form = form
		h.renderStatus(c, http.StatusBadRequest, views.InviteLandingPage(l))
		return
	}
	if err != nil {
		h.fail(c, err)
		return
	}
	l := h.joinedLanding(c, token, j)
	// A replay (the form posted again) has no secret to show: it exists once.
	l.Joined = &views.JoinedView{RequestID: j.Request.ID.String(), ClaimSecret: j.ClaimSecret, ClaimURL: h.claimURL(j.Request.ID),
		ClaimExpiresAt: j.Request.ClaimExpiresAt.UTC().Format("2006-01-02 15:04 UTC")}
	h.renderStatus(c, http.StatusCreated, views.InviteLandingPage(l))
}

// joinedLanding is the landing page of token after join j: the invite as it
// is now or, when the join used its last use, as it was.
func (h *Handler) joinedLanding(c *gin.Context, token string, j *models.Joined) views.InviteLanding {
	ctx := c.Request.Context()
	if info, err := models.LookupInvite(ctx, h.db, token); err == nil {
		return h.landing(info, token)
	}
	l := views.InviteLanding{Token: token, AgentName: j.Request.AgentName, AdapterType: j.Request.AdapterType,
		BaseURL: strings.TrimRight(h.cfg.PublicURL, "/")}
	if inv, err := models.GetInvite(ctx, h.db, j.Request.OrgID, j.Request.InviteID); err == nil {
		l.AdapterType = inv.AdapterType
		l.ExpiresAt = inv.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC")
	}
	if org, err := models.GetOrg(ctx, h.db, j.Request.OrgID); err == nil {
		l.OrgTitle = org.Title
	}
	if t, err := models.GetTeam(ctx, h.db, j.Request.OrgID, j.Request.TeamID); err == nil {
		l.TeamName = t.Name
	}
	return l
}

// joinWaitHTML serves POST /join-requests/{id}/status, the landing page's
// poll of a join request it sent. The claim secret in the body is the
// credential (an unknown id and a wrong secret answer alike, rate limited per
// IP like the claim API): pending polls on; approved claims the key now and
// shows it once (a later poll finds it claimed); rejected says so. Known
// outcomes answer 200 so htmx swaps them in and the polling stops.
func (h *Handler) joinWaitHTML(c *gin.Context) {
	secret := c.PostForm("claimSecret")
	w := views.JoinWait{RequestID: c.Param("id"), ClaimSecret: secret, BaseURL: strings.TrimRight(h.cfg.PublicURL, "/")}
	if err := limit(h.claimIP, c.ClientIP()); err != nil {
		if isHTMX(c) {
			// The page keeps waiting; its next poll tries again.
			w.State = "pending"
			h.render(c, views.JoinWaitView(w))
			return
		}
		h.fail(c, err)
		return
	}
	cl, err := h.claimFromPage(c, secret)
	var se *models.StateError
	switch {
	case err == nil && cl.Pending:
		w.State = "pending"
	case err == nil:
		w.State = "approved"
		w.APIKey, w.AgentID, w.OrgID, w.TeamID = cl.RawKey, *cl.Key.AgentID, cl.Key.OrgID.String(), cl.Key.TeamID.String()
	case errors.As(err, &se) && se.Code == "join_request_rejected":
		w.State = "rejected"
	case errors.As(err, &se) && se.Code == "already_claimed":
		w.State, w.Message = "closed", "The API key of this request was already claimed, here or from a runtime. It is shown only once; if it is lost, an operator can issue a new key."
	case errors.As(err, &se) && se.Code == "claim_expired":
		w.State, w.Message = "closed", "The claim secret has expired (after 7 days). Ask an operator of the organization to re-issue the claim."
	case errors.As(err, &se) && se.Code == "agent_deleted":
		w.State, w.Message = "closed", "The agent of this request was deleted, so its key can no longer be claimed. Ask for a new invite link."
	case errors.As(err, &se) && se.Code == "invalid_claim_secret":
		w.State, w.Message = "closed", "This page can no longer follow the request: its claim secret was re-issued by an operator or does not match. Claim with the secret you were given."
	case errors.As(err, &se) && se.Code == "claim_superseded":
		w.State, w.Message = "closed", "A later request through the same invite re-registered this agent, so this request's key can no longer be claimed."
	case errors.As(err, &se):
		// Any other decided state ends the wait too: only a server error
		// leaves the page polling.
		w.State, w.Message = "closed", se.Message
	default:
		h.fail(c, err)
		return
	}
	if w.State != "pending" {
		w.ClaimSecret = ""
	}
	if cl != nil {
		if org, err := models.GetOrg(c.Request.Context(), h.db, cl.Request.OrgID); err == nil {
			w.OrgTitle = org.Title
		}
	}
	if isHTMX(c) {
		h.render(c, views.JoinWaitView(w))
		return
	}
	h.render(c, views.JoinWaitPage(w))
}

// claimFromPage claims the join request :id with the landing page's secret;
// a malformed id or an empty secret is a wrong secret.
func (h *Handler) claimFromPage(c *gin.Context, secret string) (*models.Claimed, error) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil || secret == "" {
		return nil, models.ErrBadClaim
	}
	return models.ClaimJoinRequest(c.Request.Context(), h.db, id, secret, h.actor(c))
}
