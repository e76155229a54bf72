package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/models/pgcluster"
	"github.com/agentroster/agentroster/models/testdb"
)

// Process-level faults: the built server binary on a private PostgreSQL
// cluster, stopped with SIGTERM and killed with SIGKILL under load.

const (
	faultEmail    = "root@example.com"
	faultPassword = "correct horse battery"
)

// faultRig is a built server binary, a cluster and a database for it.
type faultRig struct {
	t     *testing.T
	bin   string
	dbURL string
	addr  string
	base  string
	cmd   *exec.Cmd
	logs  *bytes.Buffer
	exit  chan error
	env   []string // more environment for the server, after the defaults
}

func newFaultRig(t *testing.T) *faultRig {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the server and starts its own PostgreSQL cluster")
	}
	dir := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cluster, err := pgcluster.Start(t.Context(), pgcluster.Options{Dir: filepath.Join(dir, "pg"), Fast: true, Logger: quiet})
	if err == pgcluster.ErrNoBinaries {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cluster.Stop() })
	if err := cluster.CreateDatabase(t.Context(), "roster"); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "server")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return &faultRig{t: t, bin: bin, dbURL: cluster.URL("roster"), addr: addr, base: "http://" + addr}
}

// start runs the server and waits until it is ready.
func (r *faultRig) start() {
	r.t.Helper()
	r.cmd = exec.Command(r.bin)
	r.cmd.Env = append(os.Environ(), "ADDR="+r.addr, "DATABASE_URL="+r.dbURL, "DATA_DIR="+r.t.TempDir(),
		"SECRET_KEY=0123456789abcdef0123456789abcdef-faults", "BOOTSTRAP_SA_EMAIL="+faultEmail,
		"BOOTSTRAP_SA_PASSWORD="+faultPassword, "SHUTDOWN_GRACE=15s", "LOG_FORMAT=json")
	r.cmd.Env = append(r.cmd.Env, r.env...)
	r.logs = &bytes.Buffer{}
	r.cmd.Stdout, r.cmd.Stderr = r.logs, r.logs
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.exit = make(chan error, 1)
	cmd, exit := r.cmd, r.exit
	go func() { exit <- cmd.Wait() }()
	r.t.Cleanup(func() { cmd.Process.Kill() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get(r.base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-r.exit:
			r.t.Fatalf("server exited at start: %v\n%s", err, r.logs)
		default:
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("server not ready\n%s", r.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// wait waits for the server process to end and returns its error.
func (r *faultRig) wait() error {
	select {
	case err := <-r.exit:
		return err
	case <-time.After(30 * time.Second):
		r.cmd.Process.Kill()
		return fmt.Errorf("server did not exit\n%s", r.logs)
	}
}

var faultClient = &http.Client{Timeout: 30 * time.Second}

// call sends a JSON request; status 0 means no answer (the error is returned).
func (r *faultRig) call(method, path, auth string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, r.base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if strings.HasPrefix(auth, "ag_ak_") {
		req.Header.Set("Authorization", "ApiKey "+auth)
	} else if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := faultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, nil
}

// setup signs in and creates a team key; it returns token, key and team id.
func (r *faultRig) setup() (string, string, string) {
	r.t.Helper()
	var login struct{ Token string }
	s, b, err := r.call(http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": faultEmail, "password": faultPassword})
	if s != http.StatusOK || json.Unmarshal(b, &login) != nil {
		r.t.Fatalf("login: %d %s %v", s, b, err)
	}
	var orgs []struct{ ID string }
	_, b, _ = r.call(http.MethodGet, "/api/v1/organizations", login.Token, nil)
	if json.Unmarshal(b, &orgs) != nil || len(orgs) == 0 {
		r.t.Fatalf("orgs: %s", b)
	}
	var key struct {
		RawKey string
		TeamID string
	}
	s, b, _ = r.call(http.MethodPost, "/api/v1/settings/api-keys", login.Token, map[string]string{"name": "faults", "orgId": orgs[0].ID})
	if s != http.StatusCreated || json.Unmarshal(b, &key) != nil {
		r.t.Fatalf("key: %d %s", s, b)
	}
	return login.Token, key.RawKey, key.TeamID
}

// load drives writes until stop is closed or the server is gone. Every
// acknowledged registration is recorded; a transport error on a request that
// started before cut is counted as an in-flight request that did not finish.
type load struct {
	mu         sync.Mutex
	registered []string
	answered   atomic.Int64
	fiveXX     atomic.Int64
	cut        atomic.Int64 // unix nanos of the signal; 0 before
	dropped    atomic.Int64 // in flight at the signal and never answered
}

func (r *faultRig) runLoad(l *load, token, key, team string, prefix string, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := fmt.Sprintf("%s-own-%d", prefix, w)
			r.call(http.MethodPost, "/api/v1/teams/"+team+"/agents/register", key, map[string]string{"id": own})
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				started := time.Now().UnixNano()
				var s int
				var err error
				switch n % 4 {
				case 0:
					id := fmt.Sprintf("%s-%d-%d", prefix, w, n)
					s, _, err = r.call(http.MethodPost, "/api/v1/teams/"+team+"/agents/register", key, map[string]string{"id": id})
					if s == http.StatusOK {
						l.mu.Lock()
						l.registered = append(l.registered, id)
						l.mu.Unlock()
					}
				case 1:
					s, _, err = r.call(http.MethodPatch, "/api/v1/agents/"+own+"/"+[]string{"approve", "stop"}[n/4%2], token, struct{}{})
				case 2:
					s, _, err = r.call(http.MethodPost, "/api/v1/agents/"+own+"/online", key, nil)
				case 3:
					if w == 0 { // a slow request (password hashing) in the mix
						s, _, err = r.call(http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": faultEmail, "password": faultPassword})
					} else {
						s, _, err = r.call(http.MethodGet, "/api/v1/agents/"+own+"/status", key, nil)
					}
				}
				if err != nil {
					if cut := l.cut.Load(); cut != 0 && started < cut-int64(50*time.Millisecond) {
						l.dropped.Add(1)
					}
					if l.cut.Load() != 0 {
						return // the server is going away
					}
					time.Sleep(10 * time.Millisecond)
					continue
				}
				l.answered.Add(1)
				if s >= 500 && s != http.StatusServiceUnavailable {
					l.fiveXX.Add(1)
				}
			}
		}()
	}
	return &wg
}

// verify checks that every acknowledged registration is in the database and
// that the invariants hold; it returns lost writes and broken invariants.
func (r *faultRig) verify(l *load) (lost, broken int) {
	r.t.Helper()
	db, err := models.Open(r.dbURL, 2)
	if err != nil {
		r.t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	for _, id := range l.registered {
		n, err := db.NewSelect().Table("agents").Where("id = ?", id).Count(ctx)
		if err != nil {
			r.t.Fatal(err)
		}
		if n != 1 {
			lost++
		}
	}
	bad, err := testdb.CheckInvariants(ctx, db)
	if err != nil {
		r.t.Fatal(err)
	}
	for _, b := range bad {
		r.t.Errorf("invariant broken: %s", b)
	}
	if lost > 0 {
		r.t.Errorf("%d of %d acknowledged registrations lost", lost, len(l.registered))
	}
	return lost, len(bad)
}

func TestFaultSIGTERMUnderLoad(t *testing.T) {
	r := newFaultRig(t)
	r.start()
	token, key, team := r.setup()
	l := &load{}
	stop := make(chan struct{})
	wg := r.runLoad(l, token, key, team, "term", stop)
	time.Sleep(time.Second)
	// A slow request is in flight when the signal arrives: it must finish.
	// It goes on its own connection and the signal waits until it is written.
	slow := make(chan int, 1)
	written := make(chan struct{})
	go func() {
		body, _ := json.Marshal(map[string]string{"email": faultEmail, "password": faultPassword})
		req, _ := http.NewRequest(http.MethodPost, r.base+"/api/v1/auth/login", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			WroteRequest: func(httptrace.WroteRequestInfo) { close(written) },
		}))
		client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := client.Do(req)
		if err != nil {
			slow <- 0
			return
		}
		resp.Body.Close()
		slow <- resp.StatusCode
	}()
	<-written
	time.Sleep(20 * time.Millisecond) // the server has read it and is hashing the password
	l.cut.Store(time.Now().UnixNano())
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exitErr := r.wait()
	close(stop)
	wg.Wait()
	violations := 0
	if exitErr != nil {
		t.Errorf("server exit after SIGTERM: %v", exitErr)
		violations++
	}
	if s := <-slow; s != http.StatusOK && s != http.StatusTooManyRequests {
		t.Errorf("request in flight at SIGTERM answered %d", s)
		violations++
	}
	if n := l.dropped.Load(); n > 0 {
		t.Errorf("%d requests in flight at SIGTERM got no answer", n)
		violations++
	}
	if n := l.fiveXX.Load(); n > 0 {
		t.Errorf("%d 5xx answers", n)
		violations++
	}
	if !strings.Contains(r.logs.String(), "shutting down") {
		t.Errorf("no drain in the log:\n%s", r.logs)
	}
	lost, broken := r.verify(l)
	t.Logf("SIGTERM: %d answers, %d registrations kept", l.answered.Load(), len(l.registered))
	t.Logf("SUMMARY fault=sigterm faults=1 lost=%d violations=%d", lost, violations+broken)
}

func TestFaultKillUnderLoad(t *testing.T) {
	r := newFaultRig(t)
	r.start()
	token, key, team := r.setup()
	l := &load{}
	stop := make(chan struct{})
	wg := r.runLoad(l, token, key, team, "kill", stop)
	time.Sleep(time.Second)
	l.cut.Store(time.Now().UnixNano())
	if err := r.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	r.wait()
	close(stop)
	wg.Wait()
	violations := 0
	if n := l.fiveXX.Load(); n > 0 {
		t.Errorf("%d 5xx answers", n)
		violations++
	}
	// After a restart the invariants hold, every acknowledged write is there,
	// and the server works.
	r.start()
	lost, broken := r.verify(l)
	if s, b, err := r.call(http.MethodGet, "/api/v1/agents/kill-own-0/status", key, nil); s != http.StatusOK {
		t.Errorf("after restart: %d %s %v", s, b, err)
		violations++
	}
	t.Logf("kill -9: %d answers, %d registrations kept", l.answered.Load(), len(l.registered))
	t.Logf("SUMMARY fault=kill-9 faults=1 lost=%d violations=%d", lost, violations+broken)
}
