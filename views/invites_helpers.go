package views

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/agentroster/agentroster/models"
)

// InviteRow is one invite in the Invites tab.
type InviteRow struct {
	Invite   models.Invite
	TeamName string
	State    string
	Link     string // the invite URL while active and the viewer is an admin
}

// InviteForm is the New Invite dialog's state.
type InviteForm struct {
	AgentName   string
	TeamID      string
	AdapterType string
	MaxUses     string
	TTL         string // seconds, one of TTLPresets
	TTLMinutes  string // a custom lifetime; overrides TTL when set
	Errors      map[string]string
}

// BulkForm is the bulk-create form's state.
type BulkForm struct {
	Names       string
	TeamID      string
	AdapterType string
	MaxUses     string
	TTL         string
	Errors      map[string]string
}

// CreatedInvite is an invite just created, with its link.
type CreatedInvite struct {
	AgentName string
	Link      string
	Expires   string
}

// InvitesData is the Invites tab.
type InvitesData struct {
	Rows     []InviteRow
	Teams    []models.Team
	Form     InviteForm
	Bulk     BulkForm
	Created  *CreatedInvite
	ShowForm bool // a plain form post failed: show the form on the page
	ShowBulk bool
	CanWrite bool
	// The list's search (Query), state filter (State: active, spent,
	// expired, revoked or all) and keyset page (After: this page's cursor,
	// Next: the next page's, "" on the last).
	Query, State, After, Next string
}

// InviteStateFilters are the list's state choices; Active is the default.
var InviteStateFilters = []struct{ Value, Label string }{
	{"active", "Active"}, {"spent", "Spent"}, {"expired", "Expired"}, {"revoked", "Revoked"}, {"all", "All states"},
}

// Filtered reports whether the list shows less than every invite.
func (d InvitesData) Filtered() bool { return d.Query != "" || d.State != "all" }

// StateNoun names the invites the state filter shows.
func (d InvitesData) StateNoun() string {
	if d.State == "all" || d.State == "" {
		return "invite"
	}
	return d.State + " invite"
}

// PageURL is the list with its search and filter at the page after cursor.
func (d InvitesData) PageURL(after string) string {
	v := url.Values{}
	if d.Query != "" {
		v.Set("q", d.Query)
	}
	if d.State != "" && d.State != "active" {
		v.Set("state", d.State)
	}
	if after != "" {
		v.Set("after", after)
	}
	if len(v) == 0 {
		return "/agents/invites"
	}
	return "/agents/invites?" + v.Encode()
}

// SelfURL is the list as shown, for its live refresh.
func (d InvitesData) SelfURL() string { return d.PageURL(d.After) }

// TTLPresets are the New Invite dialog's lifetimes (seconds).
var TTLPresets = []struct{ Value, Label string }{
	{"300", "5 minutes"}, {"3600", "1 hour"}, {"21600", "6 hours"}, {"86400", "24 hours"},
	{"259200", "3 days"}, {"604800", "7 days"},
}

// DefaultTTL is the preset selected by default (24 hours).
const DefaultTTL = "86400"

func ttlSelected(current, value string) bool {
	return current == value || (current == "" && value == DefaultTTL)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func inviteURL(id, suffix string) string { return "/agents/invites/" + url.PathEscape(id) + suffix }

func joinRequestURL(id, suffix string) string {
	return "/agents/join-requests/" + url.PathEscape(id) + suffix
}

// JoinRow is one join request in the Join Requests tab.
type JoinRow struct {
	Request  models.JoinRequest
	TeamName string
	Decider  string         // email of the operator who decided
	Invite   *models.Invite // the invite it used (nil if unknown)
}

// AdapterMismatch is the invite's adapter type when the runtime declared
// another one, else "".
func (r JoinRow) AdapterMismatch() string {
	if r.Invite != nil && r.Invite.AdapterType != r.Request.AdapterType {
		return r.Invite.AdapterType
	}
	return ""
}

// InviteSummary names the invite a request used: its agent name, adapter
// and uses, never its id.
func (r JoinRow) InviteSummary() string {
	if r.Invite == nil {
		return "—"
	}
	i := r.Invite
	return "for " + i.AgentName + ", " + i.AdapterType + ", " + strconv.Itoa(i.Uses) + " of " + strconv.Itoa(i.MaxUses) + " uses"
}

// InviteListURL finds the request's invite in the Invites list.
func (r JoinRow) InviteListURL() string {
	return "/agents/invites?state=all&q=" + url.QueryEscape(r.Request.AgentName)
}

// AgentURL is the page of the agent an approved request created, or "".
func (r JoinRow) AgentURL() string {
	j := r.Request
	if j.Status != models.JoinApproved || j.AgentID == nil || j.ClaimVoidedAt != nil {
		return ""
	}
	return "/agents/" + url.PathEscape(*j.AgentID)
}

// JoinRequestsData is the Join Requests tab.
type JoinRequestsData struct {
	Rows     []JoinRow
	Status   string // pending, approved, rejected or all
	SelfURL  string
	CanWrite bool
	Reissued *ClaimReissue // a claim re-issued now: its secret, shown this once
}

// ClaimReissue is a re-issued claim for the operator to hand to the runtime.
type ClaimReissue struct {
	AgentName   string
	RequestID   string
	ClaimSecret string
	ClaimURL    string
	ExpiresAt   string
}

func reissueConfirm(j models.JoinRequest) string {
	return "Re-issue the claim of " + j.AgentName + "? Its current claim secret stops working and a new one is shown once."
}

// CanReissue reports whether an operator may re-issue the claim of j: approved,
// not claimed, its agent not deleted.
func CanReissue(j models.JoinRequest) bool {
	return j.Status == models.JoinApproved && j.ClaimedAt == nil && j.ClaimVoidedAt == nil
}

// JoinStatusFilters are the tab's filter choices.
var JoinStatusFilters = []struct{ Value, Label string }{
	{"pending", "Pending"}, {"approved", "Approved"}, {"rejected", "Rejected"}, {"all", "All"},
}

func joinFilterURL(status string) string { return "/agents/join-requests?status=" + status }

// InviteLanding is the public page of an invite link.
type InviteLanding struct {
	Token       string
	AgentName   string
	OrgTitle    string
	TeamName    string
	AdapterType string
	ExpiresAt   string
	UsesLeft    int
	BaseURL     string // PUBLIC_URL without a trailing slash
	Form        JoinForm
	Joined      *JoinedView
}

// JoinForm is the adapter selection form's state.
type JoinForm struct {
	AdapterType string
	Title       string
	MachineName string
	// IdempotencyKey is fresh per rendered form, so a double submit replays
	// the first join instead of using the invite twice.
	IdempotencyKey string
	Errors         map[string]string
}

// JoinedView is what the runtime needs after joining: shown once. A replay
// (the form posted again) has no ClaimSecret: it was shown the first time.
type JoinedView struct {
	RequestID   string
	ClaimSecret string
	ClaimURL    string
	// ClaimExpiresAt is when the claim secret stops working.
	ClaimExpiresAt string
}

// JoinWait is the landing page's live status of a join request sent from the
// browser. The claim secret, held only by that page, authorises each poll:
// the request id alone reveals nothing. State is "pending" (it polls again),
// "approved" (the key claimed now, shown once), "rejected", or "closed" with
// Message saying why the page stopped following.
type JoinWait struct {
	RequestID   string
	ClaimSecret string
	OrgTitle    string
	State       string
	Message     string
	AgentID     string
	OrgID       string
	TeamID      string
	APIKey      string
	BaseURL     string
}

// operatorOf names who decides a join request.
func operatorOf(orgTitle string) string {
	if orgTitle == "" {
		return "an operator"
	}
	return "an operator of " + orgTitle
}

// JoinWaitPath is where the landing page polls the request's status.
func JoinWaitPath(id string) string { return "/join-requests/" + id + "/status" }

// byobJoin is the reference runtime's one command for an invite link.
func byobJoin(l InviteLanding) string {
	return "byob join " + l.BaseURL + "/invite/" + l.Token
}

// keyCommands are the next commands once the browser holds the agent's key:
// store it for byob, or use it with curl.
func keyCommands(w JoinWait) string {
	return "mkdir -p ~/.config/byob && umask 077 && cat > ~/.config/byob/config.json <<'EOF'\n" +
		`{"server":"` + w.BaseURL + `","apiKey":"` + w.APIKey + `","agentId":"` + w.AgentID + `","orgId":"` + w.OrgID + `","teamId":"` + w.TeamID + `"}` + "\nEOF\n" +
		"byob run"
}

func keyCurl(w JoinWait) string {
	return "API_KEY=" + w.APIKey + "\n" +
		"curl -s -X POST " + w.BaseURL + "/api/v1/agents/" + w.AgentID + "/online -H \"Authorization: ApiKey $API_KEY\"\n" +
		orgsCurl(w.BaseURL)
}

// joinCurl is the command a runtime runs to join.
func joinCurl(l InviteLanding) string {
	return "CLIENT_SECRET=$(openssl rand -hex 32)  # keep it: only it claims the key\n" +
		"curl -s -X POST " + l.BaseURL + "/api/v1/invites/" + l.Token + "/join \\\n" +
		"  -H 'Content-Type: application/json' -H \"Idempotency-Key: $(hostname)-1\" \\\n" +
		"  -d '{\"adapterType\":\"" + l.AdapterType + "\",\"title\":\"My agent\",\"machineName\":\"'\"$(hostname)\"'\",\"clientSecret\":\"'\"$CLIENT_SECRET\"'\"}'"
}

// claimCurl is the command that exchanges the claim secret for the API key.
func claimCurl(claimURL, secret string) string {
	if claimURL == "" {
		claimURL = "<claimUrl>"
	}
	if secret == "" {
		// The runtime's own secret from the join command.
		return "curl -s -X POST " + claimURL + " \\\n  -H 'Content-Type: application/json' -d \"{\\\"claimSecret\\\":\\\"$CLIENT_SECRET\\\"}\""
	}
	return "curl -s -X POST " + claimURL + " \\\n  -H 'Content-Type: application/json' -d '{\"claimSecret\":\"" + secret + "\"}'"
}

// orgsCurl checks the key once claimed.
func orgsCurl(base string) string {
	return "curl -s " + base + "/api/v1/agent/orgs -H \"Authorization: ApiKey $API_KEY\""
}

func itoaV(n int) string { return strconv.Itoa(n) }

func lower(s string) string { return strings.ToLower(s) }

// bulkLineErrors lists the bulk form's per-line messages in line order.
func bulkLineErrors(errs map[string]string) []string {
	var out []string
	for i := 0; i <= models.InviteBulkMax; i++ {
		prefix := "invites[" + strconv.Itoa(i) + "]."
		for _, f := range []string{"agentName", "adapterType", "maxUses", "ttlSeconds"} {
			if msg, ok := errs[prefix+f]; ok {
				out = append(out, "Line "+strconv.Itoa(i+1)+": "+FieldSentence(f, msg))
			}
		}
	}
	for _, f := range []string{"adapterType", "maxUses", "ttlSeconds", "teamId", "line"} {
		if msg, ok := errs[f]; ok {
			out = append(out, FieldSentence(f, msg))
		}
	}
	return out
}

func joinOS(j models.JoinRequest) string {
	return osText(models.Agent{OSName: j.OSName, OSVersion: j.OSVersion})
}

func joinStorage(j models.JoinRequest) string {
	return storageText(models.Agent{StorageBytes: j.StorageBytes, StorageType: j.StorageType})
}

func claimState(j models.JoinRequest) string {
	if j.ClaimedAt != nil {
		return "claimed " + exact(*j.ClaimedAt)
	}
	if j.ClaimVoidedAt != nil {
		return "void: the agent was deleted " + exact(*j.ClaimVoidedAt)
	}
	return "not claimed yet"
}
