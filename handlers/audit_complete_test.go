package handlers

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/agentroster/agentroster/models"
)

// auditExempt lists the state-changing routes that write no audit event, and why.
var auditExempt = map[string]string{
	"POST /logout":      "ends the caller's own session; nothing in the organization changes",
	"POST /orgs/switch": "changes which org the caller's own session shows",
}

// auditCase makes one route succeed once and names the audit event it must write.
type auditCase struct {
	action string
	noOrg  bool // a platform-level event (a login)
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
		if len(evs) != 1 {
			var got []string
			for _, ev := range evs {
				got = append(got, ev.Action)
			}
			t.Errorf("%s: %d audit events %v, want exactly one %s", name, len(evs), got, c.action)
			continue
		}
		ev := evs[0]
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
