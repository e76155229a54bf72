package handlers

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentroster/agentroster/handlers/mcpconfig"
	"github.com/agentroster/agentroster/models"
)

// keyHeader adds an Authorization header to every request of the SDK client.
type keyHeader struct {
	auth string
	next http.RoundTripper
}

func (k keyHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", k.auth)
	return k.next.RoundTrip(r)
}

// mcpSession connects the SDK's own client to the env's /mcp over HTTP with
// the Authorization value auth ("ApiKey …" or "Bearer …").
func (e *env) mcpSession(auth string) (*mcp.ClientSession, error) {
	e.t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "roster-test", Version: "1"}, nil)
	tr := &mcp.StreamableClientTransport{Endpoint: e.srv.URL + "/mcp", MaxRetries: -1,
		HTTPClient: &http.Client{Transport: keyHeader{auth: auth, next: http.DefaultTransport}}}
	s, err := c.Connect(e.t.Context(), tr, nil)
	if err == nil {
		e.t.Cleanup(func() { s.Close() })
	}
	return s, err
}

func (e *env) mustMCP(auth string) *mcp.ClientSession {
	e.t.Helper()
	s, err := e.mcpSession(auth)
	if err != nil {
		e.t.Fatalf("connect to /mcp: %v", err)
	}
	return s
}

// toolResult is a tool call's outcome as a runtime sees it.
type toolResult struct {
	isError bool
	text    string
	data    map[string]any // structuredContent
}

// tool calls a tool; a protocol error fails the test.
func (e *env) tool(s *mcp.ClientSession, name string, args map[string]any) toolResult {
	e.t.Helper()
	if args == nil {
		args = map[string]any{}
	}
	res, err := s.CallTool(e.t.Context(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		e.t.Fatalf("%s: protocol error %v", name, err)
	}
	out := toolResult{isError: res.IsError}
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			out.text += tc.Text
		}
	}
	if out.text == "" {
		e.t.Fatalf("%s: no text item", name)
	}
	b, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(b, &out.data); err != nil || out.data == nil {
		e.t.Fatalf("%s: structuredContent %s is not an object", name, b)
	}
	return out
}

// ok checks a tool call succeeded and returns its structured content.
func (r toolResult) ok(t *testing.T, name string) map[string]any {
	t.Helper()
	if r.isError {
		t.Fatalf("%s: refused: %s", name, r.text)
	}
	return r.data
}

// refused checks a tool call is an isError result naming code.
func (r toolResult) refused(t *testing.T, name, code string) {
	t.Helper()
	if !r.isError {
		t.Fatalf("%s: %v, want refusal %s", name, r.data, code)
	}
	got, _ := r.data["error"].(map[string]any)
	if got["code"] != code || !strings.Contains(r.text, code) {
		t.Fatalf("%s: refusal %q %v, want %s", name, r.text, got, code)
	}
}

// rawMCP posts one JSON-RPC message to /mcp and returns the answer.
func (e *env) rawMCP(auth, session string, body string) *http.Response {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/mcp", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

const mcpToolsCall = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`

// TestMCPRuntimeWalk drives /mcp with the SDK's client over HTTP through a
// runtime's whole life: register with a team key, pending, approval, online,
// permissions, onboarding, stop, agent_stopped, revocation, 401.
func TestMCPRuntimeWalk(t *testing.T) {
	e := newEnv(t)
	sa := e.token("root@example.com")
	teamKey, rawTeam := e.teamKey(e.org.ID)
	team := teamKey.TeamID.String()

	s := e.mustMCP("ApiKey " + rawTeam)
	tools, err := s.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range tools.Tools {
		names = append(names, tl.Name)
		if schema, _ := json.Marshal(tl.InputSchema); !strings.Contains(string(schema), `"type":"object"`) {
			t.Errorf("tool %s: input schema %s", tl.Name, schema)
		}
	}
	slices.Sort(names)
	want := []string{"get_onboarding", "get_permissions", "get_status", "go_offline", "go_online", "list_agents", "register_agent", "whoami"}
	if !slices.Equal(names, want) {
		t.Fatalf("tools %v, want %v", names, want)
	}
	res, err := s.ListResources(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Resources) != 1 || res.Resources[0].URI != "onboarding://team/"+team {
		t.Fatalf("resources %+v", res.Resources)
	}
	doc, err := s.ReadResource(t.Context(), &mcp.ReadResourceParams{URI: "onboarding://team/" + team})
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Contents) != 1 || !strings.Contains(doc.Contents[0].Text, mcpconfig.Endpoint(e.srv.URL)) ||
		!strings.Contains(doc.Contents[0].Text, e.srv.URL+"/api/v1/teams/"+team+"/agents/register") {
		t.Fatalf("default onboarding document lacks the URLs: %+v", doc.Contents)
	}

	who := e.tool(s, "whoami", nil).ok(t, "whoami")
	if org, _ := who["org"].(map[string]any); org["id"] != e.org.ID.String() || who["agent"] != nil {
		t.Fatalf("whoami of a team key: %v", who)
	}
	// A team key names the agent.
	e.tool(s, "get_status", nil).refused(t, "get_status", "invalid_input")
	e.tool(s, "register_agent", map[string]any{"id": "mcp-agent", "title": "Over MCP", "adapterType": "http"}).ok(t, "register_agent")
	e.tool(s, "register_agent", map[string]any{"id": "mcp-agent"}).refused(t, "register_agent", "agent_exists")
	st := e.tool(s, "get_status", map[string]any{"agentId": "mcp-agent"}).ok(t, "get_status")
	if st["status"] != models.StatusPending {
		t.Fatalf("status %v", st)
	}
	e.tool(s, "go_online", map[string]any{"agentId": "mcp-agent"}).refused(t, "go_online", "agent_not_approved")
	e.tool(s, "get_permissions", map[string]any{"agentId": "mcp-agent"}).refused(t, "get_permissions", "agent_not_approved")

	e.call(http.MethodPatch, "/api/v1/agents/mcp-agent/approve", sa, map[string]any{}).want(http.StatusOK)
	// The agent's own key (as a claim would issue it).
	bound, rawBound := e.boundKey(e.org.ID, "mcp-agent")
	a := e.mustMCP("Bearer " + rawBound)
	who = e.tool(a, "whoami", nil).ok(t, "whoami")
	if ag, _ := who["agent"].(map[string]any); ag["id"] != "mcp-agent" || ag["status"] != models.StatusApproved {
		t.Fatalf("whoami of a bound key: %v", who)
	}
	on := e.tool(a, "go_online", nil).ok(t, "go_online")
	if on["isOnline"] != true {
		t.Fatalf("go_online: %v", on)
	}
	if ag := e.dbAgent(e.org.ID, "mcp-agent"); !ag.IsOnline {
		t.Fatal("go_online did not reach the database")
	}
	// The same answer as the JSON route.
	var jsonStatus map[string]any
	e.call(http.MethodGet, "/api/v1/agents/mcp-agent/status", rawBound, nil).want(http.StatusOK).decode(&jsonStatus)
	mcpStatus := e.tool(a, "get_status", nil).ok(t, "get_status")
	for _, k := range []string{"status", "isOnline", "agentPickupEnabled"} {
		if jsonStatus[k] != mcpStatus[k] {
			t.Errorf("%s: JSON %v, MCP %v", k, jsonStatus[k], mcpStatus[k])
		}
	}
	perms := e.tool(a, "get_permissions", nil).ok(t, "get_permissions")
	var jsonPerms map[string]any
	e.call(http.MethodGet, "/api/v1/agents/mcp-agent/permissions", rawBound, nil).want(http.StatusOK).decode(&jsonPerms)
	if pj, _ := json.Marshal(perms); string(pj) != string(mustJSON(t, jsonPerms)) {
		t.Errorf("permissions: MCP %s, JSON %s", pj, mustJSON(t, jsonPerms))
	}
	ob := e.tool(a, "get_onboarding", nil).ok(t, "get_onboarding")
	if ob["teamId"] != team || !strings.Contains(ob["content"].(string), "/mcp") {
		t.Fatalf("get_onboarding: %v", ob)
	}
	list := e.tool(a, "list_agents", map[string]any{"status": "approved"}).ok(t, "list_agents")
	if agents, _ := list["agents"].([]any); len(agents) != 1 {
		t.Fatalf("list_agents: %v", list)
	}
	e.tool(a, "get_status", map[string]any{"agentId": "someone-else"}).refused(t, "get_status", "key_bound_to_other_agent")

	// Stopped: status and offline still work, the rest is agent_stopped.
	e.call(http.MethodPatch, "/api/v1/agents/mcp-agent/stop", sa, map[string]any{}).want(http.StatusOK)
	if st := e.tool(a, "get_status", nil).ok(t, "get_status"); st["status"] != models.StatusStopped {
		t.Fatalf("status after stop: %v", st)
	}
	e.tool(a, "go_online", nil).refused(t, "go_online", "agent_stopped")
	e.tool(a, "get_permissions", nil).refused(t, "get_permissions", "agent_stopped")
	e.tool(a, "get_onboarding", nil).refused(t, "get_onboarding", "agent_stopped")
	e.tool(a, "list_agents", nil).refused(t, "list_agents", "agent_stopped")
	e.tool(a, "go_offline", nil).ok(t, "go_offline")

	// Revoked while the session is open: the next call is refused at once,
	// and /mcp answers 401 with a challenge before any MCP exchange.
	e.call(http.MethodDelete, "/api/v1/settings/api-keys/"+bound.ID.String(), sa, nil).want(http.StatusOK)
	if _, err := a.CallTool(t.Context(), &mcp.CallToolParams{Name: "get_status", Arguments: map[string]any{}}); err == nil {
		t.Fatal("a revoked key's session still answers")
	}
	resp := e.rawMCP("ApiKey "+rawBound, a.ID(), mcpToolsCall)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("revoked key: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if _, err := e.mcpSession("ApiKey " + rawBound); err == nil {
		t.Fatal("a revoked key opened a session")
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMCPAuthAndIsolation: no key, a disabled or expired key are 401s with a
// challenge; another org's key sees only its own org; a session opened by one
// key cannot be used with another.
func TestMCPAuthAndIsolation(t *testing.T) {
	e := newEnv(t)
	e.agentIn(e.org.ID, "ours", models.StatusApproved)
	_, rawTeam := e.teamKey(e.org.ID)
	disabled, rawDisabled := e.teamKey(e.org.ID)
	if _, err := e.db.NewUpdate().Model(disabled).Set("is_active = false").WherePK().Exec(t.Context()); err != nil {
		t.Fatal(err)
	}
	expired, rawExpired := e.teamKey(e.org.ID)
	if _, err := e.db.NewUpdate().Model(expired).Set("expires_at = now() - interval '1 minute'").WherePK().Exec(t.Context()); err != nil {
		t.Fatal(err)
	}
	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`
	for name, auth := range map[string]string{"no key": "", "disabled key": "ApiKey " + rawDisabled,
		"expired key": "Bearer " + rawExpired, "unknown key": "ApiKey " + models.NewAPIKey(), "operator token": "Bearer " + e.token("root@example.com")} {
		resp := e.rawMCP(auth, "", init)
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "ApiKey") {
			t.Errorf("%s: %d %q", name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		if resp.Header.Get("Mcp-Session-Id") != "" {
			t.Errorf("%s: a session was opened", name)
		}
	}

	other := e.otherOrg("Zeta Other", "other-admin@example.com")
	e.agentIn(other.ID, "theirs", models.StatusApproved)
	_, rawOther := e.teamKey(other.ID)
	o := e.mustMCP("ApiKey " + rawOther)
	e.tool(o, "get_status", map[string]any{"agentId": "ours"}).refused(t, "get_status", "not_found")
	e.tool(o, "go_online", map[string]any{"agentId": "ours"}).refused(t, "go_online", "not_found")
	list := e.tool(o, "list_agents", nil).ok(t, "list_agents")
	if agents, _ := list["agents"].([]any); len(agents) != 1 || agents[0].(map[string]any)["id"] != "theirs" {
		t.Fatalf("another org's key lists %v", list)
	}
	ourTeam, err := models.DefaultTeam(t.Context(), e.db, e.org.ID)
	if err != nil {
		t.Fatal(err)
	}
	e.tool(o, "get_onboarding", map[string]any{"teamId": ourTeam.ID.String()}).refused(t, "get_onboarding", "not_found")
	e.tool(o, "register_agent", map[string]any{"teamId": ourTeam.ID.String(), "id": "intruder"}).refused(t, "register_agent", "forbidden")
	if _, err := o.ReadResource(t.Context(), &mcp.ReadResourceParams{URI: "onboarding://team/" + ourTeam.ID.String()}); err == nil {
		t.Fatal("another org's key read our onboarding document")
	}
	res, err := o.ListResources(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Resources {
		if strings.Contains(r.URI, ourTeam.ID.String()) {
			t.Fatalf("another org's key lists our team: %v", r.URI)
		}
	}
	if e.dbAgent(e.org.ID, "ours").IsOnline || e.dbAgent(e.org.ID, "intruder") != nil {
		t.Fatal("another org's key changed our org")
	}

	// Our key presenting the other key's session: refused by the session's
	// owner check, and nothing runs.
	if resp := e.rawMCP("ApiKey "+rawTeam, o.ID(), mcpToolsCall); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("another key through a known session: %d", resp.StatusCode)
	}
}

// TestMCPAudit: state-changing tool calls write the JSON routes' audit events,
// by the key's agent, with the MCP session noted.
func TestMCPAudit(t *testing.T) {
	e := newEnv(t)
	_, rawTeam := e.teamKey(e.org.ID)
	s := e.mustMCP("ApiKey " + rawTeam)
	e.tool(s, "register_agent", map[string]any{"id": "audited", "title": "Audited"}).ok(t, "register_agent")
	e.call(http.MethodPatch, "/api/v1/agents/audited/approve", e.token("root@example.com"), map[string]any{}).want(http.StatusOK)
	_, rawBound := e.boundKey(e.org.ID, "audited")
	a := e.mustMCP("ApiKey " + rawBound)
	e.tool(a, "go_online", nil).ok(t, "go_online")
	e.tool(a, "go_offline", nil).ok(t, "go_offline")
	e.tool(a, "get_status", nil).ok(t, "get_status")

	var evs []models.AuditEvent
	if err := e.db.NewSelect().Model(&evs).Where("target_id = 'audited' AND action IN ('agent.registered', 'agent.online', 'agent.offline')").Order("id").Scan(t.Context()); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range evs {
		got = append(got, ev.Action)
		session := s.ID()
		if ev.Action != "agent.registered" {
			session = a.ID()
			if ev.ActorType != "agent" || ev.ActorLabel != "audited" {
				t.Errorf("%s by %s/%s", ev.Action, ev.ActorType, ev.ActorLabel)
			}
		}
		if ev.Details["mcpSession"] != session || session == "" {
			t.Errorf("%s: details %v, want mcpSession %q", ev.Action, ev.Details, session)
		}
		if ev.RequestID == "" || !strings.HasPrefix(ev.IP, "127.0.0.1") {
			t.Errorf("%s: request id %q ip %q", ev.Action, ev.RequestID, ev.IP)
		}
	}
	if !slices.Equal(got, []string{"agent.registered", "agent.online", "agent.offline"}) {
		t.Fatalf("audit events %v", got)
	}
}

// TestMCPClientConfigBlock: the configuration block the onboarding document
// and `byob mcp-config` print reaches the server as it is written.
func TestMCPClientConfigBlock(t *testing.T) {
	e := newEnv(t)
	e.agentIn(e.org.ID, "configured", models.StatusApproved)
	_, raw := e.boundKey(e.org.ID, "configured")
	var block struct {
		MCPServers map[string]struct {
			URL     string            `json:"url"`
			Headers map[string]string `json:"headers"`
		} `json:"mcpServers"`
	}
	if err := json.Unmarshal([]byte(mcpconfig.Block(e.srv.URL, raw)), &block); err != nil {
		t.Fatal(err)
	}
	srv := block.MCPServers[mcpconfig.Name]
	c := mcp.NewClient(&mcp.Implementation{Name: "configured-client", Version: "1"}, nil)
	s, err := c.Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: srv.URL, MaxRetries: -1,
		HTTPClient: &http.Client{Transport: keyHeader{auth: srv.Headers["Authorization"], next: http.DefaultTransport}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	who := e.tool(s, "whoami", nil).ok(t, "whoami")
	if ag, _ := who["agent"].(map[string]any); ag["id"] != "configured" {
		t.Fatalf("whoami %v", who)
	}
}

// TestMCPPendingAgentKey: a pending agent's own key connects and keeps the
// calls its JSON routes allow a pending agent; the rest are refused with the
// same code.
func TestMCPPendingAgentKey(t *testing.T) {
	e := newEnv(t)
	e.agentIn(e.org.ID, "waiting", models.StatusPending)
	_, raw := e.boundKey(e.org.ID, "waiting")
	s := e.mustMCP("ApiKey " + raw)
	if st := e.tool(s, "get_status", nil).ok(t, "get_status"); st["status"] != models.StatusPending {
		t.Fatalf("status %v", st)
	}
	e.tool(s, "go_offline", nil).ok(t, "go_offline")
	for _, name := range []string{"go_online", "get_permissions", "get_onboarding", "list_agents"} {
		e.tool(s, name, nil).refused(t, name, "agent_not_approved")
	}
	if _, err := s.ListResources(t.Context(), nil); err == nil || !strings.Contains(err.Error(), "agent_not_approved") {
		t.Fatalf("resources/list for a pending agent's key: %v", err)
	}
}

// TestMCPBadText: a NUL byte or invalid text in any tool argument is refused
// as invalid_input naming the argument, as on the JSON routes, never a 5xx.
func TestMCPBadText(t *testing.T) {
	e := newEnv(t)
	e.agentIn(e.org.ID, "ours", models.StatusApproved)
	_, raw := e.teamKey(e.org.ID)
	s := e.mustMCP("ApiKey " + raw)
	e.tool(s, "list_agents", map[string]any{"q": "a\x00b"}).refused(t, "list_agents", "invalid_input")
	e.tool(s, "register_agent", map[string]any{"id": "fresh", "title": "t\x00"}).refused(t, "register_agent", "invalid_input")
	e.tool(s, "get_status", map[string]any{"agentId": "ours\x00"}).refused(t, "get_status", "invalid_input")
	if n := e.count("agents", "id = 'fresh'"); n != 0 {
		t.Fatal("a refused call registered an agent")
	}
}
