package handlers

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/agentroster/agentroster/models/testdb"
)

var (
	serverBinOnce sync.Once
	serverBinPath string
	serverBinErr  error
)

// serverBinary builds cmd/server once per test binary.
func serverBinary(t *testing.T) string {
	t.Helper()
	serverBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "agentroster-bin-")
		if err != nil {
			serverBinErr = err
			return
		}
		serverBinPath = filepath.Join(dir, "server")
		out, err := exec.Command("go", "build", "-o", serverBinPath, "github.com/agentroster/agentroster/cmd/server").CombinedOutput()
		if err != nil {
			serverBinErr = fmt.Errorf("build server: %v\n%s", err, out)
		}
	})
	if serverBinErr != nil {
		t.Fatal(serverBinErr)
	}
	return serverBinPath
}

// replica is one server process of a multi-process test.
type replica struct {
	URL string
	cmd *exec.Cmd
	log *bytes.Buffer
}

// startReplica runs the built server on dbURL and waits until it is ready.
// Every replica of a test shares the secret key, as the README asks.
func startReplica(t *testing.T, dbURL string) *replica {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	r := &replica{URL: "http://" + addr, log: new(bytes.Buffer)}
	r.cmd = exec.Command(serverBinary(t))
	r.cmd.Env = append(os.Environ(),
		"DATABASE_URL="+dbURL, "ADDR="+addr, "PUBLIC_URL="+r.URL, "DATA_DIR="+t.TempDir(),
		"SECRET_KEY=0123456789abcdef0123456789abcdef-replicas",
		"BOOTSTRAP_SA_EMAIL=root@example.com", "BOOTSTRAP_SA_PASSWORD="+testPassword,
	)
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.cmd.Process.Signal(syscall.SIGTERM)
		r.cmd.Wait()
		if t.Failed() {
			t.Logf("server %s log:\n%s", r.URL, r.log)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(r.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server %s not ready after 30 s:\n%s", r.URL, r.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestBrowserLiveAcrossReplicas: two server processes share one database; a
// change made through one shows up live in a browser connected to the other.
func TestBrowserLiveAcrossReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts two server processes")
	}
	ctx := newBrowser(t)
	dbURL := testdb.Empty(t)
	a := startReplica(t, dbURL)
	b := startReplica(t, dbURL)

	// The browser is signed in on B.
	signInBrowser(t, ctx, b.URL, "root@example.com")
	do(t, ctx, "open the first screen",
		chromedp.Navigate(b.URL+"/agents"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="empty-state"]`)),
	)
	waitLive(t, ctx)

	// A runtime talks to A only.
	var login struct{ Token string }
	callJSON(t, http.MethodPost, a.URL, "/api/v1/auth/login", "", map[string]string{"email": "root@example.com", "password": testPassword}).
		want(http.StatusOK).decode(&login)
	token := login.Token
	var orgs []struct{ ID string }
	callJSON(t, http.MethodGet, a.URL, "/api/v1/organizations", token, nil).want(http.StatusOK).decode(&orgs)
	var teams []struct{ ID string }
	callJSON(t, http.MethodGet, a.URL, "/api/v1/organizations/"+orgs[0].ID+"/teams", token, nil).want(http.StatusOK).decode(&teams)
	var key struct{ RawKey string }
	callJSON(t, http.MethodPost, a.URL, "/api/v1/settings/api-keys", token, map[string]any{"name": "replica key", "orgId": orgs[0].ID}).want(http.StatusCreated).decode(&key)
	callJSON(t, http.MethodPost, a.URL, "/api/v1/teams/"+teams[0].ID+"/agents/register", "ApiKey "+key.RawKey, map[string]any{"id": "via-a", "title": "Registered through A"}).want(http.StatusOK)

	start := time.Now()
	do(t, ctx, "agent registered through A appears on B", chromedp.WaitVisible(chromedp.CSS(`tr[data-agent-id="via-a"]`)))
	t.Logf("row appeared on B %v after the register on A", time.Since(start).Round(time.Millisecond))

	callJSON(t, http.MethodPatch, a.URL, "/api/v1/agents/via-a/approve", token, map[string]any{}).want(http.StatusOK)
	do(t, ctx, "approval through A shows on B",
		chromedp.WaitVisible(chromedp.CSS(`tr[data-agent-id="via-a"][data-status="approved"]`)))

	// A join request created through A appears on B's Join requests tab and
	// in its nav badge.
	do(t, ctx, "join requests on B",
		chromedp.Navigate(b.URL+"/agents/join-requests"),
		chromedp.WaitVisible(chromedp.CSS(`#pending-badge[data-count="0"]`)),
	)
	waitLive(t, ctx)
	var inv struct{ Token string }
	callJSON(t, http.MethodPost, a.URL, "/api/v1/internal/invites", token, map[string]any{"orgId": orgs[0].ID, "agentName": "joined-via-a", "adapterType": "mcp"}).want(http.StatusCreated).decode(&inv)
	callJSON(t, http.MethodPost, a.URL, "/api/v1/invites/"+inv.Token+"/join", "", map[string]any{"adapterType": "mcp"}).want(http.StatusCreated)
	start = time.Now()
	do(t, ctx, "join request through A appears on B",
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="join-request-row"][data-status="PENDING"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#pending-badge[data-count="1"]`)),
	)
	t.Logf("join request appeared on B %v after the join on A", time.Since(start).Round(time.Millisecond))
}
