package handlers

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/views"
)

// --- Invites tab ---

func (h *Handler) invitesData(c *gin.Context, s scope) (views.InvitesData, error) {
	d := views.InvitesData{CanWrite: s.admin(), Query: strings.TrimSpace(c.Query("q")), State: strings.ToLower(c.DefaultQuery("state", "active"))}
	f := models.InviteFilter{Org: s.OrgID, Query: d.Query}
	var err error
	if f.State, err = models.ParseInviteState(d.State); err != nil {
		return d, err
	}
	if d.State == "" {
		d.State = "all"
	}
	if after := c.Query("after"); after != "" {
		if f.After, err = models.ParseInviteCursor(after); err != nil {
			return d, err
		}
		d.After = after
	}
	teams, err := models.ListTeams(c.Request.Context(), h.db, s.OrgID)
	if err != nil {
		return d, err
	}
	invs, next, err := models.ListInvitePage(c.Request.Context(), h.db, f)
	if err != nil {
		return d, err
	}
	if next != nil {
		d.Next = next.String()
	}
	names := teamNames(teams)
	d.Teams = teams
	d.Rows = make([]views.InviteRow, len(invs))
	for i := range invs {
		d.Rows[i] = h.inviteRow(&invs[i], names, s.admin())
	}
	return d, nil
}

func (h *Handler) inviteRow(inv *models.Invite, teams map[uuid.UUID]string, admin bool) views.InviteRow {
	r := views.InviteRow{Invite: *inv, TeamName: teams[inv.TeamID], State: inv.State(time.Now())}
	if admin {
		_, r.Link = h.inviteLink(inv)
	}
	return r
}

// invitesPage serves GET /agents/invites; ?new=invite or ?new=bulk shows
// that form on the page (the New invite and Bulk create buttons are links
// that open a dialog with JavaScript and land here without it).
func (h *Handler) invitesPage(c *gin.Context) {
	s, n := h.page(c, "Invites", "invites")
	d, err := h.invitesData(c, s)
	if err != nil {
		h.fail(c, err)
		return
	}
	if s.admin() {
		d.ShowForm = c.Query("new") == "invite"
		d.ShowBulk = c.Query("new") == "bulk"
	}
	h.render(c, views.InvitesPage(n, d))
}

// inviteFormHTML serves GET /agents/invites/new: an empty New Invite form
// (the dialog's "Create another").
func (h *Handler) inviteFormHTML(c *gin.Context) {
	s := scopeOf(c)
	teams, err := models.ListTeams(c.Request.Context(), h.db, s.OrgID)
	if err != nil {
		h.fail(c, err)
		return
	}
	h.render(c, views.NewInviteForm(views.InviteForm{}, teams))
}

// formInt parses an optional whole number of a form field into errs.
func formInt(errs map[string]string, key, value string, def int64) int64 {
	value = strings.TrimSpace(value)
	if value == "" {
		return def
	}
	n, err := strconv.ParseInt(value, 10, 64)
	if err != nil {
		errs[key] = "must be a whole number"
		return def
	}
	return n
}

// inviteFormInput turns the New Invite form into an InviteInput; errs gets the
// fields that are not numbers.
func inviteFormInput(f views.InviteForm, errs map[string]string) models.InviteInput {
	in := models.InviteInput{AgentName: f.AgentName, AdapterType: f.AdapterType}
	in.MaxUses = int(min(max(formInt(errs, "maxUses", f.MaxUses, 1), -1), 1000))
	in.TTLSeconds = formInt(errs, "ttlSeconds", f.TTL, int64(models.InviteTTLDefault/time.Second))
	if strings.TrimSpace(f.TTLMinutes) != "" {
		m := formInt(errs, "ttlSeconds", f.TTLMinutes, 0)
		in.TTLSeconds = min(max(m, -1), 1<<30) * 60
	}
	if f.TeamID != "" {
		team, err := uuid.Parse(f.TeamID)
		if err != nil {
			errs["teamId"] = "must be one of the list"
		}
		in.Team = team
	}
	return in
}

// formErrorsOf folds a model error into form field messages; ok is false for
// errors a form cannot show (they go to fail).
func formErrorsOf(err error, errs map[string]string) bool {
	var ve *models.ValidationError
	var se *models.StateError
	switch {
	case errors.As(err, &ve):
		for k, v := range ve.Fields {
			errs[k] = v
		}
	case errors.As(err, &se) && se.Code == "name_taken":
		key := "agentName"
		if line, ok := se.Details["line"].(int); ok {
			key = "invites[" + strconv.Itoa(line-1) + "].agentName"
		}
		// A sentence of its own: "Another active invite already reserves this name: …".
		errs[key] = takenSentence(se.Message)
	default:
		return false
	}
	return true
}

// takenSentence words a name_taken refusal for a form.
func takenSentence(message string) string {
	switch {
	case strings.Contains(message, "invite"):
		return "This name is taken: another active invite already reserves it. Choose another name, or delete that invite first."
	case strings.Contains(message, "agent"):
		return "This name is taken: an agent with this name already exists in the organization. Choose another name."
	}
	return "This name is taken. Choose another name."
}

// invitesCreate serves the New Invite form POST /agents/invites. htmx gets
// the dialog body: the created link, or the form with its errors; a plain
// post gets the page (400 with the form on errors).
func (h *Handler) invitesCreate(c *gin.Context) {
	s, n := h.page(c, "Invites", "invites")
	f := views.InviteForm{
		AgentName: c.PostForm("agentName"), TeamID: c.PostForm("teamId"), AdapterType: c.PostForm("adapterType"),
		MaxUses: c.PostForm("maxUses"), TTL: c.PostForm("ttl"), TTLMinutes: c.PostForm("ttlMinutes"), Errors: map[string]string{},
	}
	in := inviteFormInput(f, f.Errors)
	var inv *models.NewInvite
	var err error
	if len(f.Errors) == 0 {
		inv, err = models.CreateInvite(c.Request.Context(), h.db, h.sealer, s.OrgID, in, h.actor(c))
		if err != nil && !formErrorsOf(err, f.Errors) {
			h.fail(c, err)
			return
		}
	}
	if len(f.Errors) > 0 {
		if isHTMX(c) {
			teams, err := models.ListTeams(c.Request.Context(), h.db, s.OrgID)
			if err != nil {
				h.fail(c, err)
				return
			}
			h.render(c, views.NewInviteForm(f, teams))
			return
		}
		d, err := h.invitesData(c, s)
		if err != nil {
			h.fail(c, err)
			return
		}
		d.Form, d.ShowForm = f, true
		h.renderStatus(c, http.StatusBadRequest, views.InvitesPage(n, d))
		return
	}
	created := views.CreatedInvite{AgentName: inv.Invite.AgentName, Link: h.inviteURL(inv.Token),
		Expires: inv.Invite.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC")}
	if isHTMX(c) {
		b, _ := json.Marshal(map[string]any{"invitesChanged": true, "showToast": map[string]string{"message": "Invite created.", "level": "success"}})
		c.Header("HX-Trigger", string(b))
		h.render(c, views.InviteCreatedDialog(created))
		return
	}
	d, err := h.invitesData(c, s)
	if err != nil {
		h.fail(c, err)
		return
	}
	d.Created = &created
	h.render(c, views.InvitesPage(n, d))
}

// invitesBulk serves POST /agents/invites/bulk: one invite per line (up to
// 100), all or none, answered as a CSV download of the links.
func (h *Handler) invitesBulk(c *gin.Context) {
	s, n := h.page(c, "Invites", "invites")
	f := views.BulkForm{
		Names: c.PostForm("names"), TeamID: c.PostForm("teamId"), AdapterType: c.PostForm("adapterType"),
		MaxUses: c.PostForm("maxUses"), TTL: c.PostForm("ttl"), Errors: map[string]string{},
	}
	one := inviteFormInput(views.InviteForm{TeamID: f.TeamID, AdapterType: f.AdapterType, MaxUses: f.MaxUses, TTL: f.TTL}, f.Errors)
	// The shared settings are checked once, not on every line.
	probe := one
	probe.AgentName = "probe"
	if err := probe.Validate(); err != nil {
		formErrorsOf(err, f.Errors)
	}
	var ins []models.InviteInput
	for _, line := range strings.Split(f.Names, "\n") {
		if name := strings.TrimSpace(line); name != "" {
			in := one
			in.AgentName = name
			ins = append(ins, in)
		}
	}
	var created []models.NewInvite
	if len(f.Errors) == 0 {
		var err error
		created, err = models.CreateInvites(c.Request.Context(), h.db, h.sealer, s.OrgID, ins, h.actor(c))
		if err != nil && !formErrorsOf(err, f.Errors) {
			h.fail(c, err)
			return
		}
	}
	if len(f.Errors) > 0 {
		d, err := h.invitesData(c, s)
		if err != nil {
			h.fail(c, err)
			return
		}
		d.Bulk, d.ShowBulk = f, true
		h.renderStatus(c, http.StatusBadRequest, views.InvitesPage(n, d))
		return
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write([]string{"agent_name", "invite_url", "adapter_type", "max_uses", "expires_at"})
	for _, inv := range created {
		w.Write([]string{inv.Invite.AgentName, h.inviteURL(inv.Token), inv.Invite.AdapterType,
			strconv.Itoa(inv.Invite.MaxUses), inv.Invite.ExpiresAt.UTC().Format(time.RFC3339)})
	}
	w.Flush()
	name := "invites-" + time.Now().UTC().Format("20060102-150405") + ".csv"
	c.Header("Content-Disposition", `attachment; filename="`+name+`"`)
	c.Data(http.StatusOK, "text/csv; charset=utf-8", buf.Bytes())
}

// inviteDeleteHTML serves the Delete button POST /agents/invites/{id}/delete:
// htmx gets the row (now Revoked), a plain post goes back to the list.
func (h *Handler) inviteDeleteHTML(c *gin.Context) {
	org := scopeOf(c).OrgID
	id, err := pathUUID(c, "id")
	if err != nil {
		h.fail(c, err)
		return
	}
	inv, err := models.DeleteInvite(c.Request.Context(), h.db, org, id, h.actor(c))
	if err != nil {
		h.fail(c, err)
		return
	}
	if isHTMX(c) {
		name := ""
		if t, err := models.GetTeam(c.Request.Context(), h.db, org, inv.TeamID); err == nil {
			name = t.Name
		}
		toast(c, "Invite for "+inv.AgentName+" deleted.", "success")
		h.render(c, views.InviteRowView(h.inviteRow(inv, map[uuid.UUID]string{inv.TeamID: name}, true), true))
		return
	}
	seeOther(c, "/agents/invites")
}

// --- Public invite landing page ---

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
	in := joinRequestBody{AdapterType: form.AdapterType, Title: form.Title, MachineName: form.MachineName}.input(c)
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
