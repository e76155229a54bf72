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

// --- JSON: /internal/invites ---

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

// --- HTML: the Invites tab ---

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
