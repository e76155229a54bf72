package handlers

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/agentroster/agentroster/models"
)

// pendingJoin inserts an active invite and a pending join request for it, as
// the invite flow does.
func (e *env) pendingJoin(org uuid.UUID, agent string) {
	e.t.Helper()
	team, err := models.DefaultTeam(e.t.Context(), e.db, org)
	if err != nil {
		e.t.Fatal(err)
	}
	var inv uuid.UUID
	err = e.db.NewRaw(`INSERT INTO invites (org_id, team_id, agent_name, adapter_type, token_hash, token_enc, expires_at)
		VALUES (?, ?, ?, 'http', ?, ?, now() + interval '1 hour') RETURNING id`,
		org, team.ID, agent, models.Hash(models.RandomBase62(32)), []byte("x")).Scan(e.t.Context(), &inv)
	if err != nil {
		e.t.Fatal(err)
	}
	_, err = e.db.ExecContext(e.t.Context(), `INSERT INTO join_requests (org_id, invite_id, team_id, agent_name, adapter_type, claim_secret_hash, claim_expires_at)
		VALUES (?, ?, ?, ?, 'http', ?, now() + interval '1 day')`, org, inv, team.ID, agent, models.Hash("secret"))
	if err != nil {
		e.t.Fatal(err)
	}
}

func TestMetricsMoveAfterJoinAndApprove(t *testing.T) {
	e := newEnv(t)
	e.h.cfg.MetricsToken = "scrape-secret-123"
	e.call(http.MethodGet, "/metrics", "", nil).wantError(http.StatusUnauthorized, "unauthorized")
	e.call(http.MethodGet, "/metrics", "wrong-token", nil).wantError(http.StatusUnauthorized, "unauthorized")
	before := e.scrape("scrape-secret-123")

	// A runtime asks to join; the operator approves the agent it registers.
	e.pendingJoin(e.org.ID, "joiner-invite") // another name: a pending request reserves its own
	_, key := e.teamKey(e.org.ID)
	team, _ := models.DefaultTeam(t.Context(), e.db, e.org.ID)
	e.call(http.MethodPost, "/api/v1/teams/"+team.ID.String()+"/agents/register", key, map[string]string{"id": "joiner"}).want(http.StatusOK)
	mid := e.scrape("scrape-secret-123")
	tok := e.token("root@example.com")
	e.call(http.MethodPatch, "/api/v1/agents/joiner/approve", tok, map[string]string{}).want(http.StatusOK)
	e.call(http.MethodPost, "/api/v1/agents/joiner/online", key, nil).want(http.StatusOK)
	// Failures that are counted.
	e.call(http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": "root@example.com", "password": "wrong password"}).want(http.StatusUnauthorized)
	e.call(http.MethodGet, "/api/v1/agents/joiner/status", models.NewAPIKey(), nil).want(http.StatusUnauthorized)
	after := e.scrape("scrape-secret-123")

	checks := []struct {
		name   string
		labels map[string]string
		delta  float64
		from   []sample
	}{
		{"agentroster_join_requests_pending", nil, 1, before},
		{"agentroster_invites_active", nil, 1, before},
		{"agentroster_agents", map[string]string{"status": "approved", "presence": "offline"}, 0, before},
		{"agentroster_agents", map[string]string{"status": "approved", "presence": "online"}, 1, mid},
		{"agentroster_http_requests_total", map[string]string{"route": "/api/v1/agents/:agentId/approve", "method": "PATCH", "status": "2xx"}, 1, before},
		{"agentroster_http_requests_total", map[string]string{"route": "/api/v1/teams/:teamId/agents/register", "status": "2xx"}, 1, before},
		{"agentroster_http_request_duration_seconds_count", map[string]string{"route": "/api/v1/agents/:agentId/approve"}, 1, before},
		{"agentroster_login_failures_total", nil, 1, before},
		{"agentroster_api_key_failures_total", nil, 1, before},
	}
	if got := metricValue(mid, "agentroster_agents", map[string]string{"status": "pending"}) - metricValue(before, "agentroster_agents", map[string]string{"status": "pending"}); got != 1 {
		t.Errorf("pending agents moved by %v after register, want 1", got)
	}
	for _, c := range checks {
		if got := metricValue(after, c.name, c.labels) - metricValue(c.from, c.name, c.labels); got != c.delta {
			t.Errorf("%s%v moved by %v, want %v", c.name, c.labels, got, c.delta)
		}
	}
	if metricValue(after, "agentroster_agents", map[string]string{"status": "pending"}) != 0 {
		t.Error("approved agent still counted pending")
	}
	for _, name := range []string{"go_sql_open_connections", "agentroster_sse_streams_open", "agentroster_gauges_up", "go_goroutines"} {
		found := false
		for _, s := range after {
			found = found || s.name == name
		}
		if !found {
			t.Errorf("metric %s missing", name)
		}
	}

	// Rate-limit rejections: failed API keys from one IP run out.
	for range 25 {
		e.call(http.MethodGet, "/api/v1/agents/joiner/status", models.NewAPIKey(), nil)
	}
	if got := metricValue(e.scrape("scrape-secret-123"), "agentroster_rate_limited_total", map[string]string{"limiter": "api_key_ip"}); got < 1 {
		t.Errorf("rate_limited_total{limiter=api_key_ip} = %v", got)
	}
}

var uuidRE = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)

// TestMetricsLabelsCarryNoIDs sends requests naming many different ids, and
// unknown paths and methods, then checks that no label value is an id: route
// labels are the route table's patterns (or "unmatched") and nothing else.
func TestMetricsLabelsCarryNoIDs(t *testing.T) {
	e := newEnv(t)
	tok := e.token("root@example.com")
	_, key := e.teamKey(e.org.ID)
	var ids []string
	for i := range 20 {
		id := "probe-" + strconv.Itoa(i) + "-" + strings.ToLower(models.RandomBase62(6))
		ids = append(ids, id)
		e.call(http.MethodGet, "/api/v1/agents/"+id+"/status", key, nil)
		e.call(http.MethodPatch, "/api/v1/agents/"+id+"/stop", tok, map[string]string{})
		e.call(http.MethodGet, "/api/v1/organizations/"+uuid.NewString()+"/members", tok, nil)
		e.call(http.MethodGet, "/no/such/"+id, "", nil)
		e.call("PROPFIND-"+strconv.Itoa(i), "/agents/"+id, "", nil)
	}
	patterns := map[string]bool{"unmatched": true}
	for _, r := range e.h.Routes().(*gin.Engine).Routes() {
		patterns[r.Path] = true
	}
	methods := map[string]bool{"other": true}
	for m := range knownMethods {
		methods[m] = true
	}
	series := 0
	for _, s := range e.scrape("") {
		for k, v := range s.labels {
			if uuidRE.MatchString(v) {
				t.Errorf("%s has an id in label %s=%q", s.name, k, v)
			}
			for _, id := range ids {
				if strings.Contains(v, id) {
					t.Errorf("%s has a requested id in label %s=%q", s.name, k, v)
				}
			}
			switch k {
			case "route":
				if !patterns[v] {
					t.Errorf("%s: route label %q is not a route pattern", s.name, v)
				}
			case "method":
				if !methods[v] {
					t.Errorf("%s: method label %q", s.name, v)
				}
			}
		}
		if strings.HasPrefix(s.name, "agentroster_http_requests_total") {
			series++
		}
	}
	if series == 0 || series > 20 {
		t.Errorf("%d request series after 100 requests naming distinct ids", series)
	}
}

// TestMetricsNeedTheirToken: /metrics on the main listener shows every
// tenant's counts, so it is served only with METRICS_TOKEN; without one, or
// when METRICS_ADDR moves metrics to their own listener, it is a 404.
func TestMetricsNeedTheirToken(t *testing.T) {
	e := newEnv(t)
	for _, token := range []string{"", "anything"} {
		res := e.call(http.MethodGet, "/metrics", token, nil).want(http.StatusNotFound)
		if strings.Contains(string(res.Body), "agentroster_") {
			t.Fatal("metrics served without METRICS_TOKEN")
		}
	}

	e.h.cfg.MetricsToken = "scrape-secret-123"
	e.call(http.MethodGet, "/metrics", "", nil).wantError(http.StatusUnauthorized, "unauthorized")
	e.call(http.MethodGet, "/metrics", "scrape-secret-124", nil).wantError(http.StatusUnauthorized, "unauthorized")
	e.call(http.MethodGet, "/metrics", "scrape-secret-123", nil).want(http.StatusOK)

	// METRICS_ADDR: the main listener has no /metrics, token or not; the
	// separate handler serves it without one.
	e.h.cfg.MetricsAddr = "127.0.0.1:9090"
	if res := e.call(http.MethodGet, "/metrics", "scrape-secret-123", nil).want(http.StatusNotFound); strings.Contains(string(res.Body), "agentroster_") {
		t.Fatal("main listener served metrics with METRICS_ADDR set")
	}
	srv := httptest.NewServer(e.h.MetricsHandler())
	defer srv.Close()
	for path, want := range map[string]int{"/metrics": http.StatusOK, "/login": http.StatusNotFound, "/": http.StatusNotFound} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || (want == http.StatusOK) != strings.Contains(string(b), "agentroster_agents") {
			t.Errorf("metrics listener %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}
