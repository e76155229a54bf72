package handlers

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/agentroster/agentroster/models"
)

// auditExempt lists the state-changing routes that write no audit event, and why.
var auditExempt = map[string]string{
	"POST /logout":                         "ends the caller's own session; nothing in the organization changes",
	"POST /orgs/switch":                    "changes which org the caller's own session shows",
	"POST /settings/teams/:teamId/preview": "renders the posted onboarding document; nothing is stored",
	"DELETE /mcp":                          "ends the caller's own MCP session; nothing in the organization changes",
}

// auditCase makes one route succeed once and names the audit event it must write.
type auditCase struct {
	action string
	// also lists the events of other objects the same request changes (a join
	// uses the invite and creates the request): one event per changed object.
	also  []string
	noOrg bool // a platform-level event (a login, a user's own settings)
	// run prepares what the route needs and returns the request to count.
	run func(a *auditRun) func() (int, string)
}

// auditRun is what a case needs: the env, credentials, and fresh objects.
type auditRun struct {
	e       *env
	admin   string // bearer token
	key     string // team key
	browser *http.Client
	team    string
	n       int
	users   int
}

// invite creates an invite through the API and returns id and token.
func (a *auditRun) invite(maxUses int) (string, string) {
	a.n++
	var out inviteOut
	s, b := a.e.do(http.MethodPost, "/api/v1/internal/invites", a.admin, map[string]any{"agentName": fmt.Sprintf("audit-inv-%d", a.n), "maxUses": maxUses, "orgId": a.e.org.ID.String()})
	if s != http.StatusCreated || json.Unmarshal(b, &out) != nil {
		a.e.t.Fatalf("invite: %d %s", s, b)
	}
	return out.ID, out.Token
}

// joinRequest creates a pending join request and returns it.
func (a *auditRun) joinRequest() joinOut {
	_, tok := a.invite(1)
	var j joinOut
	s, b := a.e.do(http.MethodPost, "/api/v1/invites/"+tok+"/join", "", map[string]string{"adapterType": "http"})
	if s != http.StatusCreated || json.Unmarshal(b, &j) != nil {
		a.e.t.Fatalf("join: %d %s", s, b)
	}
	return j
}

// member creates a user with a viewer membership and returns the id.
func (a *auditRun) member() string {
	a.users++
	return a.e.user(fmt.Sprintf("audit-member-%d@example.com", a.users), "viewer").ID.String()
}

// created adds a new email through the org (the org creates the user, who
// has no password yet) and returns the user's id.
func (a *auditRun) created() string {
	a.users++
	email := fmt.Sprintf("audit-created-%d@example.com", a.users)
	if _, err := models.AddMemberByEmail(a.e.t.Context(), a.e.db, a.e.org.ID, email, "viewer", a.e.actor); err != nil {
		a.e.t.Fatal(err)
	}
	return a.e.userID(email).String()
}

// invited creates a user in no org with a pending invitation to the env's
// org and returns the email and the invitation's id.
func (a *auditRun) invited() (string, string) {
	a.users++
	email := fmt.Sprintf("audit-invited-%d@example.com", a.users)
	u := a.e.user(email, "")
	if _, err := models.AddMemberByEmail(a.e.t.Context(), a.e.db, a.e.org.ID, email, "viewer", a.e.actor); err != nil {
		a.e.t.Fatal(err)
	}
	invs, err := models.ListInvitations(a.e.t.Context(), a.e.db, u.ID)
	if err != nil || len(invs) != 1 {
		a.e.t.Fatalf("invitation: %v %v", invs, err)
	}
	return email, invs[0].ID.String()
}

// webhook creates an endpoint and returns its id.
func (a *auditRun) webhook() string {
	id, _ := a.e.webhook(a.admin, a.e.srv.URL+"/hook", "join_request.created")
	return id.String()
}

// ownUser creates an admin and returns its bearer token and a signed-in browser.
func (a *auditRun) ownUser() (string, *http.Client) {
	a.users++
	email := fmt.Sprintf("audit-self-%d@example.com", a.users)
	a.e.user(email, "admin")
	return a.e.token(email), a.e.signIn(email)
}

// agent creates a fresh agent in status and returns its id.
func (a *auditRun) agent(status string) string {
	a.n++
	id := fmt.Sprintf("audit-%d", a.n)
	a.e.agentIn(a.e.org.ID, id, status)
	return id
}

// keyID creates a fresh team key (active) and returns its id.
func (a *auditRun) keyID() string {
	k, _ := a.e.teamKey(a.e.org.ID)
	return k.ID.String()
}

// column creates a fresh column and returns its id.
func (a *auditRun) column() string {
	a.n++
	c, err := models.CreateColumn(a.e.t.Context(), a.e.db, a.e.org.ID, models.ColumnInput{Name: fmt.Sprintf("Audit %d", a.n)}, a.e.actor)
	if err != nil {
		a.e.t.Fatal(err)
	}
	return c.ID
}

func (a *auditRun) api(method, path, auth string, body any) (int, string) {
	s, b := a.e.do(method, path, auth, body)
	return s, string(b)
}

func (a *auditRun) form(path string, v url.Values) (int, string) {
	s, _, b := a.e.post(a.browser, path, v)
	return s, b
}

func agentForm(action, status string) auditCase {
	event := map[string]string{"approve": "agent.approved", "stop": "agent.stopped", "resume": "agent.resumed", "delete": "agent.deleted"}[action]
	return auditCase{action: event, run: func(a *auditRun) func() (int, string) {
		id := a.agent(status)
		return func() (int, string) { return a.form("/agents/"+id+"/"+action, nil) }
	}}
}

func agentAPI(action, status string) auditCase {
	event := map[string]string{"approve": "agent.approved", "stop": "agent.stopped", "resume": "agent.resumed"}[action]
	return auditCase{action: event, run: func(a *auditRun) func() (int, string) {
		id := a.agent(status)
		return func() (int, string) { return a.api(http.MethodPatch, "/api/v1/agents/"+id+"/"+action, a.admin, "{}") }
	}}
}

func keyForm(action, event string, disabledFirst bool) auditCase {
	return auditCase{action: event, run: func(a *auditRun) func() (int, string) {
		id := a.keyID()
		if disabledFirst {
			a.api(http.MethodPatch, "/api/v1/settings/api-keys/"+id, a.admin, map[string]bool{"isActive": false})
		}
		return func() (int, string) { return a.form("/settings/api-keys/"+id+"/"+action, nil) }
	}}
}

func webhookForm(action, event string, disabledFirst bool) auditCase {
	return auditCase{action: event, run: func(a *auditRun) func() (int, string) {
		id := a.webhook()
		if disabledFirst {
			a.api(http.MethodPatch, "/api/v1/organizations/"+a.e.org.ID.String()+"/webhooks/"+id, a.admin, map[string]bool{"enabled": false})
		}
		return func() (int, string) { return a.form("/settings/notifications/"+id+"/"+action, nil) }
	}}
}

// simple is a case that needs no preparation.
func simple(action string, call func(a *auditRun) (int, string)) auditCase {
	return auditCase{action: action, run: func(a *auditRun) func() (int, string) {
		return func() (int, string) { return call(a) }
	}}
}

// withAgent prepares an agent in status and calls the route on it.
func withAgent(action, status string, call func(a *auditRun, id string) (int, string)) auditCase {
	return auditCase{action: action, run: func(a *auditRun) func() (int, string) {
		id := a.agent(status)
		return func() (int, string) { return call(a, id) }
	}}
}

// withColumn prepares a column and calls the route on it.
func withColumn(action string, call func(a *auditRun, id string) (int, string)) auditCase {
	return auditCase{action: action, run: func(a *auditRun) func() (int, string) {
		id := a.column()
		return func() (int, string) { return call(a, id) }
	}}
}

// withKey prepares a team key and calls the route on it.
func withKey(action string, call func(a *auditRun, id string) (int, string)) auditCase {
	return auditCase{action: action, run: func(a *auditRun) func() (int, string) {
		id := a.keyID()
		return func() (int, string) { return call(a, id) }
	}}
}

// auditCases maps every state-changing route ("METHOD /path") to a request
// that succeeds. A new state-changing route must be added here.
var auditCases = map[string]auditCase{
	// Invites and join requests.
	"POST /api/v1/internal/invites": simple("invite.created", func(a *auditRun) (int, string) {
		return a.api(http.MethodPost, "/api/v1/internal/invites", a.admin, map[string]any{"agentName": "audit-api-invite", "orgId": a.e.org.ID.String()})
	}),
	"DELETE /api/v1/internal/invites/:id": {action: "invite.deleted", run: func(a *auditRun) func() (int, string) {
		id, _ := a.invite(1)
		return func() (int, string) { return a.api(http.MethodDelete, "/api/v1/internal/invites/"+id, a.admin, nil) }
	}},
	"POST /api/v1/invites/:token/join": {action: "join_request.created", also: []string{"invite.used"}, run: func(a *auditRun) func() (int, string) {
		_, tok := a.invite(1)
		return func() (int, string) {
			return a.api(http.MethodPost, "/api/v1/invites/"+tok+"/join", "", map[string]string{"adapterType": "http"})
		}
	}},
	"POST /invite/:token": {action: "join_request.created", also: []string{"invite.used"}, run: func(a *auditRun) func() (int, string) {
		_, tok := a.invite(1)
		return func() (int, string) {
			return a.form("/invite/"+tok, url.Values{"adapterType": {"http"}, "idempotencyKey": {models.RandomBase62(16)}})
		}
	}},
	"POST /api/v1/join-requests/:id/claim": {action: "api_key.claimed", run: func(a *auditRun) func() (int, string) {
		j := a.joinRequest()
		a.api(http.MethodPost, "/api/v1/internal/join-requests/"+j.JoinRequestID+"/approve", a.admin, struct{}{})
		return func() (int, string) {
			return a.api(http.MethodPost, "/api/v1/join-requests/"+j.JoinRequestID+"/claim", "", map[string]string{"claimSecret": j.ClaimSecret})
		}
	}},
	"POST /join-requests/:id/status": {action: "api_key.claimed", run: func(a *auditRun) func() (int, string) {
		j := a.joinRequest()
		a.api(http.MethodPost, "/api/v1/internal/join-requests/"+j.JoinRequestID+"/approve", a.admin, struct{}{})
		return func() (int, string) {
			return a.form("/join-requests/"+j.JoinRequestID+"/status", url.Values{"claimSecret": {j.ClaimSecret}})
		}
	}},
	"POST /api/v1/internal/join-requests/:id/approve": {action: "join_request.approved", also: []string{"agent.created"}, run: func(a *auditRun) func() (int, string) {
		j := a.joinRequest()
		return func() (int, string) {
			return a.api(http.MethodPost, "/api/v1/internal/join-requests/"+j.JoinRequestID+"/approve", a.admin, struct{}{})
		}
	}},
	"POST /api/v1/internal/join-requests/:id/reject": {action: "join_request.rejected", run: func(a *auditRun) func() (int, string) {
		j := a.joinRequest()
		return func() (int, string) {
			return a.api(http.MethodPost, "/api/v1/internal/join-requests/"+j.JoinRequestID+"/reject", a.admin, struct{}{})
		}
	}},
	"POST /api/v1/internal/join-requests/:id/reissue": {action: "join_request.claim_reissued", run: func(a *auditRun) func() (int, string) {
		j := a.joinRequest()
		a.api(http.MethodPost, "/api/v1/internal/join-requests/"+j.JoinRequestID+"/approve", a.admin, struct{}{})
		return func() (int, string) {
			return a.api(http.MethodPost, "/api/v1/internal/join-requests/"+j.JoinRequestID+"/reissue", a.admin, struct{}{})
		}
	}},
	"POST /agents/invites": simple("invite.created", func(a *auditRun) (int, string) {
		return a.form("/agents/invites", url.Values{"agentName": {"audit-form-invite"}, "adapterType": {"http"}, "maxUses": {"1"}})
	}),
	"POST /agents/invites/bulk": simple("invite.created", func(a *auditRun) (int, string) {
		return a.form("/agents/invites/bulk", url.Values{"names": {"audit-bulk-one"}, "adapterType": {"http"}, "maxUses": {"1"}})
	}),
	"POST /agents/invites/:id/delete": {action: "invite.deleted", run: func(a *auditRun) func() (int, string) {
		id, _ := a.invite(1)
		return func() (int, string) { return a.form("/agents/invites/"+id+"/delete", nil) }
	}},
	"POST /agents/join-requests/:id/approve": {action: "join_request.approved", also: []string{"agent.created"}, run: func(a *auditRun) func() (int, string) {
		j := a.joinRequest()
		return func() (int, string) { return a.form("/agents/join-requests/"+j.JoinRequestID+"/approve", nil) }
	}},
	"POST /agents/join-requests/:id/reject": {action: "join_request.rejected", run: func(a *auditRun) func() (int, string) {
		j := a.joinRequest()
		return func() (int, string) { return a.form("/agents/join-requests/"+j.JoinRequestID+"/reject", nil) }
	}},
	"POST /agents/join-requests/:id/reissue": {action: "join_request.claim_reissued", run: func(a *auditRun) func() (int, string) {
		j := a.joinRequest()
		a.api(http.MethodPost, "/api/v1/internal/join-requests/"+j.JoinRequestID+"/approve", a.admin, struct{}{})
		return func() (int, string) { return a.form("/agents/join-requests/"+j.JoinRequestID+"/reissue", nil) }
	}},
	"POST /agents/join-requests/:id/reject-revoke": {action: "join_request.rejected", also: []string{"invite.deleted"}, run: func(a *auditRun) func() (int, string) {
		j := a.joinRequest()
		return func() (int, string) { return a.form("/agents/join-requests/"+j.JoinRequestID+"/reject-revoke", nil) }
	}},

	// Members, accounts, platform.
	"POST /settings/members": {action: "member.invited", run: func(a *auditRun) func() (int, string) {
		a.users++
		email := fmt.Sprintf("audit-nomember-%d@example.com", a.users)
		a.e.user(email, "")
		return func() (int, string) {
			return a.form("/settings/members", url.Values{"email": {email}, "role": {"viewer"}})
		}
	}},
	"POST /settings/members/:userId/role": {action: "member.role_changed", run: func(a *auditRun) func() (int, string) {
		id := a.member()
		return func() (int, string) { return a.form("/settings/members/"+id+"/role", url.Values{"role": {"admin"}}) }
	}},
	"POST /settings/members/:userId/remove": {action: "member.removed", run: func(a *auditRun) func() (int, string) {
		id := a.member()
		return func() (int, string) { return a.form("/settings/members/"+id+"/remove", nil) }
	}},
	"POST /api/v1/organizations/:orgId/members": {action: "member.invited", run: func(a *auditRun) func() (int, string) {
		a.users++
		email := fmt.Sprintf("audit-nomember-%d@example.com", a.users)
		a.e.user(email, "")
		return func() (int, string) {
			return a.api(http.MethodPost, "/api/v1/organizations/"+a.e.org.ID.String()+"/members", a.admin, map[string]string{"email": email, "role": "viewer"})
		}
	}},
	"PATCH /api/v1/organizations/:orgId/members/:userId": {action: "member.role_changed", run: func(a *auditRun) func() (int, string) {
		id := a.member()
		return func() (int, string) {
			return a.api(http.MethodPatch, "/api/v1/organizations/"+a.e.org.ID.String()+"/members/"+id, a.admin, map[string]string{"role": "admin"})
		}
	}},
	"DELETE /api/v1/organizations/:orgId/members/:userId": {action: "member.removed", run: func(a *auditRun) func() (int, string) {
		id := a.member()
		return func() (int, string) {
			return a.api(http.MethodDelete, "/api/v1/organizations/"+a.e.org.ID.String()+"/members/"+id, a.admin, nil)
		}
	}},
	"POST /settings/members/:userId/password-link": {action: "user.password_link_issued", run: func(a *auditRun) func() (int, string) {
		id := a.created()
		return func() (int, string) { return a.form("/settings/members/"+id+"/password-link", nil) }
	}},
	"POST /api/v1/organizations/:orgId/members/:userId/password-link": {action: "user.password_link_issued", run: func(a *auditRun) func() (int, string) {
		id := a.created()
		return func() (int, string) {
			return a.api(http.MethodPost, "/api/v1/organizations/"+a.e.org.ID.String()+"/members/"+id+"/password-link", a.admin, nil)
		}
	}},
	"POST /settings/members/invitations/:id/withdraw": {action: "member.invitation_withdrawn", run: func(a *auditRun) func() (int, string) {
		_, id := a.invited()
		return func() (int, string) { return a.form("/settings/members/invitations/"+id+"/withdraw", nil) }
	}},
	"DELETE /api/v1/organizations/:orgId/members/pending/:id": {action: "member.invitation_withdrawn", run: func(a *auditRun) func() (int, string) {
		_, id := a.invited()
		return func() (int, string) {
			return a.api(http.MethodDelete, "/api/v1/organizations/"+a.e.org.ID.String()+"/members/pending/"+id, a.admin, nil)
		}
	}},
	"POST /account/invitations/:id/accept": {action: "member.invitation_accepted", run: func(a *auditRun) func() (int, string) {
		email, id := a.invited()
		browser := a.e.signIn(email)
		return func() (int, string) {
			s, _, b := a.e.post(browser, "/account/invitations/"+id+"/accept", nil)
			return s, b
		}
	}},
	"POST /account/invitations/:id/decline": {action: "member.invitation_declined", run: func(a *auditRun) func() (int, string) {
		email, id := a.invited()
		browser := a.e.signIn(email)
		return func() (int, string) {
			s, _, b := a.e.post(browser, "/account/invitations/"+id+"/decline", nil)
			return s, b
		}
	}},
	"POST /api/v1/account/invitations/:id/accept": {action: "member.invitation_accepted", run: func(a *auditRun) func() (int, string) {
		email, id := a.invited()
		tok := a.e.token(email)
		return func() (int, string) {
			return a.api(http.MethodPost, "/api/v1/account/invitations/"+id+"/accept", tok, nil)
		}
	}},
	"POST /api/v1/account/invitations/:id/decline": {action: "member.invitation_declined", run: func(a *auditRun) func() (int, string) {
		email, id := a.invited()
		tok := a.e.token(email)
		return func() (int, string) {
			return a.api(http.MethodPost, "/api/v1/account/invitations/"+id+"/decline", tok, nil)
		}
	}},
	"POST /platform/users/:userId/reset-password": {action: "user.password_link_issued", noOrg: true, run: func(a *auditRun) func() (int, string) {
		id := a.member()
		return func() (int, string) { return a.form("/platform/users/"+id+"/reset-password", nil) }
	}},
	"POST /api/v1/users/:userId/reset-password": {action: "user.password_link_issued", noOrg: true, run: func(a *auditRun) func() (int, string) {
		id := a.member()
		return func() (int, string) {
			return a.api(http.MethodPost, "/api/v1/users/"+id+"/reset-password", a.admin, nil)
		}
	}},
	"POST /account/password": {action: "user.password_changed", noOrg: true, run: func(a *auditRun) func() (int, string) {
		_, browser := a.ownUser()
		return func() (int, string) {
			s, _, b := a.e.post(browser, "/account/password", url.Values{"currentPassword": {testPassword}, "password": {"a brand new password"}})
			return s, b
		}
	}},
	"POST /api/v1/account/password": {action: "user.password_changed", noOrg: true, run: func(a *auditRun) func() (int, string) {
		tok, _ := a.ownUser()
		return func() (int, string) {
			return a.api(http.MethodPost, "/api/v1/account/password", tok, map[string]string{"currentPassword": testPassword, "password": "a brand new password"})
		}
	}},
	"POST /set-password/:token": {action: "user.password_set", noOrg: true, run: func(a *auditRun) func() (int, string) {
		a.users++
		var out struct{ SetPasswordURL string }
		s, b := a.e.do(http.MethodPost, "/api/v1/organizations/"+a.e.org.ID.String()+"/members", a.admin, map[string]string{"email": fmt.Sprintf("audit-new-%d@example.com", a.users), "role": "viewer"})
		if s != http.StatusAccepted || json.Unmarshal(b, &out) != nil || out.SetPasswordURL == "" {
			a.e.t.Fatalf("member with a set-password link: %d %s", s, b)
		}
		path := out.SetPasswordURL[strings.Index(out.SetPasswordURL, "/set-password/"):]
		return func() (int, string) {
			s, _, b := a.e.post(a.e.browser(), path, url.Values{"password": {"a brand new password"}})
			return s, b
		}
	}},
	"POST /platform/orgs": simple("org.created", func(a *auditRun) (int, string) {
		return a.form("/platform/orgs", url.Values{"title": {"Zz platform org"}, "color": {"#112233"}})
	}),
	"POST /platform/orgs/:orgId": simple("org.updated", func(a *auditRun) (int, string) {
		return a.form("/platform/orgs/"+a.e.org.ID.String(), url.Values{"title": {"My organization"}, "color": {"#223344"}})
	}),
	"PATCH /api/v1/organizations/:orgId": simple("org.updated", func(a *auditRun) (int, string) {
		return a.api(http.MethodPatch, "/api/v1/organizations/"+a.e.org.ID.String(), a.admin, map[string]string{"color": "#334455"})
	}),
	"POST /platform/users/:userId/sa": {action: "user.platform_admin_changed", noOrg: true, run: func(a *auditRun) func() (int, string) {
		id := a.member()
		return func() (int, string) { return a.form("/platform/users/"+id+"/sa", url.Values{"value": {"true"}}) }
	}},
	"POST /platform/users/:userId/disable": {action: "user.disabled", noOrg: true, run: func(a *auditRun) func() (int, string) {
		id := a.member()
		return func() (int, string) { return a.form("/platform/users/"+id+"/disable", url.Values{"value": {"true"}}) }
	}},
	"PATCH /api/v1/users/:userId": {action: "user.disabled", noOrg: true, run: func(a *auditRun) func() (int, string) {
		id := a.member()
		return func() (int, string) {
			return a.api(http.MethodPatch, "/api/v1/users/"+id, a.admin, map[string]bool{"disabled": true})
		}
	}},

	// Notifications.
	"POST /api/v1/organizations/:orgId/webhooks": simple("webhook.created", func(a *auditRun) (int, string) {
		return a.api(http.MethodPost, "/api/v1/organizations/"+a.e.org.ID.String()+"/webhooks", a.admin, map[string]any{"url": a.e.srv.URL + "/hook", "events": []string{"join_request.created"}})
	}),
	"PATCH /api/v1/organizations/:orgId/webhooks/:endpointId": {action: "webhook.disabled", run: func(a *auditRun) func() (int, string) {
		id := a.webhook()
		return func() (int, string) {
			return a.api(http.MethodPatch, "/api/v1/organizations/"+a.e.org.ID.String()+"/webhooks/"+id, a.admin, map[string]bool{"enabled": false})
		}
	}},
	"DELETE /api/v1/organizations/:orgId/webhooks/:endpointId": {action: "webhook.deleted", run: func(a *auditRun) func() (int, string) {
		id := a.webhook()
		return func() (int, string) {
			return a.api(http.MethodDelete, "/api/v1/organizations/"+a.e.org.ID.String()+"/webhooks/"+id, a.admin, nil)
		}
	}},
	"POST /api/v1/organizations/:orgId/webhooks/:endpointId/test": {action: "webhook.test_sent", run: func(a *auditRun) func() (int, string) {
		id := a.webhook()
		return func() (int, string) {
			return a.api(http.MethodPost, "/api/v1/organizations/"+a.e.org.ID.String()+"/webhooks/"+id+"/test", a.admin, struct{}{})
		}
	}},
	"POST /settings/notifications": simple("webhook.created", func(a *auditRun) (int, string) {
		return a.form("/settings/notifications", url.Values{"url": {a.e.srv.URL + "/hook2"}, "events": {"join_request.created"}})
	}),
	"POST /settings/notifications/:endpointId/disable": webhookForm("disable", "webhook.disabled", false),
	"POST /settings/notifications/:endpointId/enable":  webhookForm("enable", "webhook.enabled", true),
	"POST /settings/notifications/:endpointId/delete":  webhookForm("delete", "webhook.deleted", false),
	"POST /settings/notifications/:endpointId/test":    webhookForm("test", "webhook.test_sent", false),

	"POST /login": {action: "user.login", noOrg: true, run: func(a *auditRun) func() (int, string) {
		return func() (int, string) {
			s, _, b := a.e.post(a.e.browser(), "/login", url.Values{"email": {"root@example.com"}, "password": {testPassword}})
			return s, b
		}
	}},
	"POST /api/v1/auth/login": {action: "user.login", noOrg: true, run: func(a *auditRun) func() (int, string) {
		return func() (int, string) {
			return a.api(http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": "root@example.com", "password": testPassword})
		}
	}},
	"POST /settings/teams": simple("team.created", func(a *auditRun) (int, string) {
		return a.form("/settings/teams", url.Values{"name": {"audit form team"}})
	}),
	"POST /settings/teams/:teamId": simple("team.updated", func(a *auditRun) (int, string) {
		return a.form("/settings/teams/"+a.team, url.Values{"name": {"default"}, "onboarding": {"# Read me"}})
	}),
	"POST /agents/:agentId/approve": agentForm("approve", models.StatusPending),
	"POST /agents/:agentId/stop":    agentForm("stop", models.StatusApproved),
	"POST /agents/:agentId/resume":  agentForm("resume", models.StatusStopped),
	"POST /agents/:agentId/delete":  agentForm("delete", models.StatusApproved),
	"POST /agents/:agentId/pickup": withAgent("agent.pickup_changed", models.StatusApproved, func(a *auditRun, id string) (int, string) {
		return a.form("/agents/"+id+"/pickup", url.Values{"enabled": {"false"}})
	}),
	"POST /agents/:agentId/permissions": {action: "agent.permissions_changed", run: func(a *auditRun) func() (int, string) {
		id, col := a.agent(models.StatusApproved), a.column()
		return func() (int, string) { return a.form("/agents/"+id+"/permissions", url.Values{"moderate": {col}}) }
	}},
	"POST /settings/api-keys": simple("api_key.created", func(a *auditRun) (int, string) {
		return a.form("/settings/api-keys", url.Values{"name": {"audit form key"}, "teamId": {a.team}, "expiry": {"never"}})
	}),
	"POST /settings/api-keys/:id/disable": keyForm("disable", "api_key.disabled", false),
	"POST /settings/api-keys/:id/enable":  keyForm("enable", "api_key.enabled", true),
	"POST /settings/api-keys/:id/revoke":  keyForm("revoke", "api_key.revoked", false),
	"POST /settings/columns": simple("column.created", func(a *auditRun) (int, string) {
		return a.form("/settings/columns", url.Values{"name": {"Audit form column"}})
	}),
	"POST /settings/columns/:columnId": withColumn("column.updated", func(a *auditRun, id string) (int, string) {
		return a.form("/settings/columns/"+id, url.Values{"name": {"Renamed"}, "agentCanRead": {"true"}})
	}),
	"POST /settings/columns/:columnId/up": withColumn("column.reordered", func(a *auditRun, id string) (int, string) {
		return a.form("/settings/columns/"+id+"/up", nil)
	}),
	"POST /settings/columns/:columnId/down": simple("column.reordered", func(a *auditRun) (int, string) {
		return a.form("/settings/columns/col_backlog/down", nil)
	}),
	"POST /settings/columns/:columnId/delete": withColumn("column.deleted", func(a *auditRun, id string) (int, string) {
		return a.form("/settings/columns/"+id+"/delete", nil)
	}),
	"POST /api/v1/organizations": simple("org.created", func(a *auditRun) (int, string) {
		return a.api(http.MethodPost, "/api/v1/organizations", a.admin, map[string]string{"title": "Zz audit org"})
	}),
	"POST /api/v1/organizations/:orgId/teams": simple("team.created", func(a *auditRun) (int, string) {
		return a.api(http.MethodPost, "/api/v1/organizations/"+a.e.org.ID.String()+"/teams", a.admin, map[string]string{"name": "audit api team"})
	}),
	"PATCH /api/v1/organizations/:orgId/teams/:teamId": simple("team.updated", func(a *auditRun) (int, string) {
		return a.api(http.MethodPatch, "/api/v1/organizations/"+a.e.org.ID.String()+"/teams/"+a.team, a.admin, map[string]string{"onboarding": "# API"})
	}),
	"PATCH /api/v1/organizations/:orgId/teams/:teamId/onboarding": simple("team.updated", func(a *auditRun) (int, string) {
		return a.api(http.MethodPatch, "/api/v1/organizations/"+a.e.org.ID.String()+"/teams/"+a.team+"/onboarding", a.admin, map[string]string{"content": "# Onboarding"})
	}),
	// A tool call that changes state, in a session opened beforehand.
	"POST /mcp": {action: "agent.registered", run: func(a *auditRun) func() (int, string) {
		init := a.e.rawMCP("ApiKey "+a.key, "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"audit","version":"1"}}}`)
		session := init.Header.Get("Mcp-Session-Id")
		a.e.rawMCP("ApiKey "+a.key, session, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
		return func() (int, string) {
			resp := a.e.rawMCP("ApiKey "+a.key, session, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"register_agent","arguments":{"id":"audit-mcp"}}}`)
			return resp.StatusCode, ""
		}
	}},
	"POST /api/v1/teams/:teamId/agents/register": simple("agent.registered", func(a *auditRun) (int, string) {
		return a.api(http.MethodPost, "/api/v1/teams/"+a.team+"/agents/register", a.key, map[string]string{"id": "audit-registered"})
	}),
	"POST /api/v1/agents/:agentId/online": withAgent("agent.online", models.StatusApproved, func(a *auditRun, id string) (int, string) {
		return a.api(http.MethodPost, "/api/v1/agents/"+id+"/online", a.key, nil)
	}),
	"POST /api/v1/agents/:agentId/offline": {action: "agent.offline", run: func(a *auditRun) func() (int, string) {
		id := a.agent(models.StatusApproved)
		a.api(http.MethodPost, "/api/v1/agents/"+id+"/online", a.key, nil)
		return func() (int, string) { return a.api(http.MethodPost, "/api/v1/agents/"+id+"/offline", a.key, nil) }
	}},
	"PATCH /api/v1/agents/:agentId/approve": agentAPI("approve", models.StatusPending),
	"PATCH /api/v1/agents/:agentId/stop":    agentAPI("stop", models.StatusApproved),
	"PATCH /api/v1/agents/:agentId/resume":  agentAPI("resume", models.StatusStopped),
	"DELETE /api/v1/agents/:agentId": withAgent("agent.deleted", models.StatusPending, func(a *auditRun, id string) (int, string) {
		return a.api(http.MethodDelete, "/api/v1/agents/"+id, a.admin, nil)
	}),
	"PATCH /api/v1/agents/:agentId/pickup": withAgent("agent.pickup_changed", models.StatusApproved, func(a *auditRun, id string) (int, string) {
		return a.api(http.MethodPatch, "/api/v1/agents/"+id+"/pickup", a.admin, map[string]bool{"enabled": false})
	}),
	"PUT /api/v1/agents/:agentId/permissions": {action: "agent.permissions_changed", run: func(a *auditRun) func() (int, string) {
		id, col := a.agent(models.StatusApproved), a.column()
		body := map[string]any{"columns": []map[string]any{{"columnId": col, "canRead": true, "canModerate": true}}}
		return func() (int, string) { return a.api(http.MethodPut, "/api/v1/agents/"+id+"/permissions", a.admin, body) }
	}},
	"POST /api/v1/settings/api-keys": simple("api_key.created", func(a *auditRun) (int, string) {
		return a.api(http.MethodPost, "/api/v1/settings/api-keys", a.admin, map[string]string{"name": "audit api key", "orgId": a.e.org.ID.String()})
	}),
	"PATCH /api/v1/settings/api-keys/:id": withKey("api_key.disabled", func(a *auditRun, id string) (int, string) {
		return a.api(http.MethodPatch, "/api/v1/settings/api-keys/"+id, a.admin, map[string]bool{"isActive": false})
	}),
	"DELETE /api/v1/settings/api-keys/:id": withKey("api_key.revoked", func(a *auditRun, id string) (int, string) {
		return a.api(http.MethodDelete, "/api/v1/settings/api-keys/"+id, a.admin, nil)
	}),
	"POST /api/v1/organizations/:orgId/columns": simple("column.created", func(a *auditRun) (int, string) {
		return a.api(http.MethodPost, "/api/v1/organizations/"+a.e.org.ID.String()+"/columns", a.admin, map[string]string{"name": "Audit API column"})
	}),
	"PATCH /api/v1/organizations/:orgId/columns/:columnId": withColumn("column.updated", func(a *auditRun, id string) (int, string) {
		return a.api(http.MethodPatch, "/api/v1/organizations/"+a.e.org.ID.String()+"/columns/"+id, a.admin, map[string]string{"name": "Renamed API"})
	}),
	"DELETE /api/v1/organizations/:orgId/columns/:columnId": withColumn("column.deleted", func(a *auditRun, id string) (int, string) {
		return a.api(http.MethodDelete, "/api/v1/organizations/"+a.e.org.ID.String()+"/columns/"+id, a.admin, nil)
	}),
}

// stateChanging reports whether a route may change state (not GET or HEAD).
func stateChanging(r gin.RouteInfo) bool {
	return r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodOptions
}

func TestAuditCompleteness(t *testing.T) {
	e := newEnv(t)
	team, err := models.DefaultTeam(t.Context(), e.db, e.org.ID)
	if err != nil {
		t.Fatal(err)
	}
	_, key := e.teamKey(e.org.ID)
	a := &auditRun{e: e, admin: e.token("root@example.com"), key: key, browser: e.signIn("root@example.com"), team: team.ID.String()}
	lastID := func() int64 {
		var id int64
		if err := e.db.NewRaw("SELECT coalesce(max(id), 0) FROM audit_events").Scan(t.Context(), &id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	checked := 0
	for _, r := range e.h.Routes().(*gin.Engine).Routes() {
		if !stateChanging(r) {
			continue
		}
		name := r.Method + " " + r.Path
		if _, ok := auditExempt[name]; ok {
			continue
		}
		c, ok := auditCases[name]
		if !ok {
			t.Errorf("state-changing route %s has no entry in auditCases (audit_complete_test.go): add a request that makes it succeed and the event it must write", name)
			continue
		}
		call := c.run(a)
		before := lastID()
		status, body := call()
		if status >= 400 || status == 0 {
			t.Errorf("%s: %d %.300s", name, status, body)
			continue
		}
		var evs []models.AuditEvent
		if err := e.db.NewSelect().Model(&evs).Where("id > ?", before).Order("id").Scan(t.Context()); err != nil {
			t.Fatal(err)
		}
		checked++
		want := append([]string{c.action}, c.also...)
		var got []string
		for _, ev := range evs {
			got = append(got, ev.Action)
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: audit events %v, want exactly %v", name, got, want)
			continue
		}
		ev := evs[slices.IndexFunc(evs, func(ev models.AuditEvent) bool { return ev.Action == c.action })]
		if ev.Action != c.action {
			t.Errorf("%s: audit action %q, want %q", name, ev.Action, c.action)
		}
		if ev.ActorType == "" || ev.ActorID == "" || ev.ActorType == "system" || ev.IP == "" || !strings.HasPrefix(ev.IP, "127.0.0.1") && ev.IP != "::1" {
			t.Errorf("%s: actor %q/%q ip %q", name, ev.ActorType, ev.ActorID, ev.IP)
		}
		if (ev.OrgID == nil) != c.noOrg {
			t.Errorf("%s: org %v (platform-level: %v)", name, ev.OrgID, c.noOrg)
		}
		if ev.RequestID == "" {
			t.Errorf("%s: no request id", name)
		}
	}
	for name := range auditCases {
		found := false
		for _, r := range e.h.Routes().(*gin.Engine).Routes() {
			found = found || r.Method+" "+r.Path == name
		}
		if !found {
			t.Errorf("auditCases has %s, which is not a route", name)
		}
	}
	summary(t, "audit_routes", checked)
}
