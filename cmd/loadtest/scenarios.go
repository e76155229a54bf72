package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/agentroster/agentroster/models"
)

type loadEnv struct {
	base    string
	client  *http.Client
	browser *http.Client
	admin   string // operator bearer token
	seed    *loadSeed
	conc    int // API concurrency

	pprof, profileDir string // the server's profile listener, and where profiles go
}

// call sends a request and fails unless the status is want; it returns the
// body. headers are extra name, value pairs.
func (e *loadEnv) call(c *http.Client, method, path, auth string, body any, want int, headers ...string) ([]byte, error) {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.base+path, r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if strings.HasPrefix(auth, models.APIKeyPrefix) {
		req.Header.Set("Authorization", "ApiKey "+auth)
	} else if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s %s: status %d, want %d: %.200s", method, path, resp.StatusCode, want, b)
	}
	return b, nil
}

func scenarios(e *loadEnv) []scenario {
	n := int64(len(e.seed.Agents))
	agent := func(i int64) loadAgent { return e.seed.Agents[i%n] }
	org := e.seed.OrgID.String()
	perWorker := max(n/int64(e.conc), 1)
	flips := make([]int64, e.conc)
	return []scenario{
		{name: "healthz", conc: same, do: func(_ int, _ int64) error {
			_, err := e.call(e.client, http.MethodGet, "/healthz", "", nil, 200)
			return err
		}},
		{name: "status", conc: same, visits: n, do: func(_ int, i int64) error {
			a := agent(i * 7919) // spread over the agents: n consecutive units visit each once
			_, err := e.call(e.client, http.MethodGet, "/api/v1/agents/"+a.ID+"/status", a.Key, nil, 200)
			return err
		}},
		{name: "online-offline", conc: same, do: func(w int, _ int64) error {
			// Each worker owns the agents w, w+conc, … and visits them in turn,
			// flipping each one on every visit: every request is a real change.
			j := flips[w]
			flips[w]++
			a := agent(int64(w) + int64(e.conc)*(j%perWorker))
			path := "/online"
			if (j/perWorker)%2 == 1 {
				path = "/offline"
			}
			_, err := e.call(e.client, http.MethodPost, "/api/v1/agents/"+a.ID+path, a.Key, struct{}{}, 200)
			return err
		}},
		{name: "register", conc: same, do: func(w int, i int64) error {
			body := map[string]any{"id": fmt.Sprintf("reg-%d-%d", w, i), "title": "Load agent", "llmVersion": "load-1"}
			_, err := e.call(e.client, http.MethodPost, "/api/v1/teams/"+e.seed.TeamID.String()+"/agents/register", e.seed.TeamKey, body, 200)
			return err
		}},
		{name: "join-flow", unit: "flows", conc: same, do: func(w int, i int64) error {
			name := fmt.Sprintf("flow-%d-%d", w, i)
			// Each flow is another runtime: invite lookups, joins and claims are
			// rate limited per client IP (the server trusts the loopback proxy).
			from := []string{"X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)}
			b, err := e.call(e.client, http.MethodPost, "/api/v1/internal/invites", e.admin,
				map[string]any{"orgId": org, "agentName": name, "adapterType": "http", "maxUses": 1, "ttlSeconds": 3600}, 201)
			if err != nil {
				return err
			}
			var inv struct{ Token string }
			json.Unmarshal(b, &inv)
			if b, err = e.call(e.client, http.MethodPost, "/api/v1/invites/"+inv.Token+"/join", "", map[string]any{"adapterType": "http"}, 201, from...); err != nil {
				return err
			}
			var jr struct{ JoinRequestID, ClaimSecret string }
			json.Unmarshal(b, &jr)
			if _, err = e.call(e.client, http.MethodPost, "/api/v1/internal/join-requests/"+jr.JoinRequestID+"/approve?orgId="+org, e.admin, struct{}{}, 200); err != nil {
				return err
			}
			_, err = e.call(e.client, http.MethodPost, "/api/v1/join-requests/"+jr.JoinRequestID+"/claim", "", map[string]string{"claimSecret": jr.ClaimSecret}, 200, from...)
			return err
		}},
		{name: "roster-json", conc: func(int) int { return 4 }, do: func(_ int, _ int64) error {
			_, err := e.call(e.client, http.MethodGet, "/api/v1/organizations/"+org+"/agents", e.admin, nil, 200)
			return err
		}},
		{name: "roster", conc: func(int) int { return 4 }, do: func(_ int, _ int64) error {
			_, err := e.call(e.browser, http.MethodGet, "/agents", "", nil, 200)
			return err
		}},
	}
}
