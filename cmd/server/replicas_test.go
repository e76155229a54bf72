package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/models/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

const (
	replicaEmail    = "ops@example.com"
	replicaPassword = "replica password 1"
)

// replica is one server process.
type replica struct {
	base string
	log  *bytes.Buffer
}

// syncBuffer is a bytes.Buffer safe for a process's stdout and stderr at once.
type syncBuffer struct {
	mu sync.Mutex
	bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.Write(p)
}

// startReplicas builds the server and starts n processes at the same moment on
// one database with one secret (env adds to their environment), and waits until each answers /readyz.
func startReplicas(t *testing.T, dbURL string, n int, env ...string) []*replica {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "server")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build server: %v: %s", err, out)
	}
	secret := models.RandomBase62(40)
	rs := make([]*replica, n)
	for i := range rs {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		base := "http://127.0.0.1:" + strconv.Itoa(port)
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "ADDR=127.0.0.1:"+strconv.Itoa(port), "PUBLIC_URL="+base,
			"DATA_DIR="+filepath.Join(dir, strconv.Itoa(i)), "SECRET_KEY="+secret,
			"BOOTSTRAP_SA_EMAIL="+replicaEmail, "BOOTSTRAP_SA_PASSWORD="+replicaPassword, "SHUTDOWN_GRACE=2s")
		cmd.Env = append(cmd.Env, env...)
		buf := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = buf, buf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Signal(os.Interrupt)
			cmd.Wait()
			if t.Failed() {
				t.Logf("replica %d log:\n%s", i, buf.String())
			}
		})
		rs[i] = &replica{base: base, log: &buf.Buffer}
	}
	for i, r := range rs {
		deadline := time.Now().Add(60 * time.Second)
		for {
			resp, err := http.Get(r.base + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica %d not ready", i)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return rs
}

// call sends a JSON request to r and returns status and body.
func (r *replica) call(t *testing.T, c *http.Client, method, path, auth string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, r.base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case strings.HasPrefix(auth, models.APIKeyPrefix):
		req.Header.Set("Authorization", "ApiKey "+auth)
	case auth != "":
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (r *replica) must(t *testing.T, method, path, auth string, body any, want int, out any) {
	t.Helper()
	status, b := r.call(t, nil, method, path, auth, body)
	if status != want {
		t.Fatalf("%s %s on %s: %d, want %d: %s", method, path, r.base, status, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// within polls check every 10 ms until it holds or d has passed, and returns
// signIn signs the replica test's operator in on r and returns the browser.
func (r *replica) signIn(t *testing.T) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := browser.PostForm(r.base+"/login", url.Values{"email": {replicaEmail}, "password": {replicaPassword}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login on %s: %d", r.base, resp.StatusCode)
	}
	return browser
}

// how long it took.
func within(t *testing.T, d time.Duration, what string, check func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !check() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// TestReplicas runs two server processes on one empty database: they start
// together (migrations run once), a cookie and a bearer token issued by one
// work on the other, live updates cross processes, and a stop or a key
// revocation is honoured at once where it was made and within a second on
// the other replica, although both had the key and agent cached.
func TestReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts two servers")
	}
	dbURL := testdb.Empty(t)
	rs := startReplicas(t, dbURL, 2)
	a, b := rs[0], rs[1]

	db, err := models.Open(dbURL, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var applied, admins int
	db.NewRaw("SELECT count(*) FROM bun_migrations").Scan(t.Context(), &applied)
	db.NewRaw("SELECT count(*) FROM users WHERE is_sa").Scan(t.Context(), &admins)
	if applied == 0 || admins != 1 {
		t.Fatalf("after a concurrent start: %d migrations recorded, %d platform admins", applied, admins)
	}
	var dup int
	db.NewRaw("SELECT count(*) FROM (SELECT name FROM bun_migrations GROUP BY name HAVING count(*) > 1) d").Scan(t.Context(), &dup)
	if dup != 0 {
		t.Fatalf("%d migrations applied twice", dup)
	}

	// A session cookie from A is accepted by B.
	browser := a.signIn(t)
	bURL, _ := url.Parse(b.base)
	aURL, _ := url.Parse(a.base)
	browser.Jar.SetCookies(bURL, browser.Jar.Cookies(aURL))
	if status, _ := b.call(t, browser, http.MethodGet, "/agents", "", nil); status != http.StatusOK {
		t.Fatalf("A's session cookie on B: %d", status)
	}

	// A bearer token from A works on B; a team key made on A works on B.
	var tok struct{ Token string }
	a.must(t, http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": replicaEmail, "password": replicaPassword}, 200, &tok)
	var orgs []struct{ ID string }
	b.must(t, http.MethodGet, "/api/v1/organizations", tok.Token, nil, 200, &orgs)
	var teams []struct{ ID string }
	b.must(t, http.MethodGet, "/api/v1/organizations/"+orgs[0].ID+"/teams", tok.Token, nil, 200, &teams)
	var key struct{ ID, RawKey string }
	a.must(t, http.MethodPost, "/api/v1/settings/api-keys", tok.Token, map[string]string{"name": "replica key", "orgId": orgs[0].ID}, 201, &key)
	b.must(t, http.MethodPost, "/api/v1/teams/"+teams[0].ID+"/agents/register", key.RawKey, map[string]string{"id": "r1"}, 200, nil)

	// B's browser sees A's change live.
	events := openEvents(t, browser, b.base)
	a.must(t, http.MethodPatch, "/api/v1/agents/r1/approve?orgId="+orgs[0].ID, tok.Token, struct{}{}, 200, nil)
	waitEvent(t, events, "agent-r1")

	status := func(r *replica) (int, string) {
		code, body := r.call(t, nil, http.MethodGet, "/api/v1/agents/r1/status", key.RawKey, nil)
		var s struct{ Status string }
		json.Unmarshal(body, &s)
		return code, s.Status
	}
	// Both replicas now hold the key and the agent in memory.
	for range 3 {
		for _, r := range rs {
			if code, s := status(r); code != 200 || s != "approved" {
				t.Fatalf("status on %s: %d %q", r.base, code, s)
			}
		}
	}

	// Stop on A: A answers stopped at once, B within a second.
	a.must(t, http.MethodPatch, "/api/v1/agents/r1/stop?orgId="+orgs[0].ID, tok.Token, struct{}{}, 200, nil)
	if _, s := status(a); s != "stopped" {
		t.Fatalf("status on A right after its stop: %q", s)
	}
	took := within(t, time.Second, "stop seen on B", func() bool { _, s := status(b); return s == "stopped" })
	t.Logf("stop seen on the other replica after %s", took)

	// Resume on B, then revoke the key on B: B refuses it at once, A within a second.
	b.must(t, http.MethodPatch, "/api/v1/agents/r1/resume?orgId="+orgs[0].ID, tok.Token, struct{}{}, 200, nil)
	within(t, time.Second, "resume seen on A", func() bool { _, s := status(a); return s == "approved" })
	b.must(t, http.MethodDelete, "/api/v1/settings/api-keys/"+key.ID+"?orgId="+orgs[0].ID, tok.Token, nil, 200, nil)
	if code, _ := status(b); code != http.StatusUnauthorized {
		t.Fatalf("revoked key on B right after its revocation: %d", code)
	}
	took = within(t, time.Second, "revocation honoured on A", func() bool { code, _ := status(a); return code == http.StatusUnauthorized })
	t.Logf("revocation honoured on the other replica after %s", took)
}

// openEvents opens the SSE stream of a signed-in browser and returns the
// event names as they arrive.
func openEvents(t *testing.T, c *http.Client, base string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/events", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("events: %d", resp.StatusCode)
	}
	names := make(chan string, 64)
	ready := make(chan struct{})
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		once := sync.Once{}
		for sc.Scan() {
			once.Do(func() { close(ready) })
			if name, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				names <- name
			}
		}
	}()
	<-ready
	return names
}

func waitEvent(t *testing.T, names <-chan string, want string) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case got := <-names:
			if got == want {
				return
			}
		case <-timeout:
			t.Fatal(fmt.Sprintf("no %q event within 5 s", want))
		}
	}
}
