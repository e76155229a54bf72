package handlers

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agentroster/agentroster/models"
)

// buildByob builds cmd/byob into a temporary directory.
func buildByob(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "byob")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/byob")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/byob: %v\n%s", err, out)
	}
	return bin
}

// byobProc is a running byob whose output (stdout and stderr) is read line by line.
type byobProc struct {
	t     *testing.T
	cmd   *exec.Cmd
	lines chan string
	mu    sync.Mutex
	out   strings.Builder
	std   strings.Builder // stdout alone, complete once the process ended
	done  chan struct{}   // the process ended and all of its output was read
	err   error
}

func startByob(t *testing.T, bin string, env []string, args ...string) *byobProc {
	t.Helper()
	return startByobWith(t, bin, env, false, args...)
}

// startByobWith is startByob; with split, stdout is also kept apart in std
// (stdout and stderr then travel through two pipes, so lines of one may
// overtake lines of the other).
func startByobWith(t *testing.T, bin string, env []string, split bool, args ...string) *byobProc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	pr, pw := io.Pipe()
	p := &byobProc{t: t, cmd: cmd, lines: make(chan string, 100), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = pw, pw
	if split {
		cmd.Stdout = io.MultiWriter(pw, &p.std)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	scanned := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			p.lines <- sc.Text()
		}
		close(p.lines)
		close(scanned)
	}()
	go func() {
		p.err = cmd.Wait()
		pw.Close()
		<-scanned
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			go func() {
				for range p.lines {
				}
			}()
			<-p.done
		}
	})
	return p
}

func (p *byobProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// waitLine reads output until a line contains want.
func (p *byobProc) waitLine(want string) string {
	p.t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				<-p.done
				p.t.Fatalf("byob ended (%v) before printing %q; output:\n%s", p.err, want, p.output())
			}
			if strings.Contains(line, want) {
				return line
			}
		case <-timeout:
			p.t.Fatalf("byob did not print %q within a minute; output:\n%s", want, p.output())
		}
	}
}

// exit waits for the process to end and returns its exit code.
func (p *byobProc) exit() int {
	p.t.Helper()
	go func() {
		for range p.lines {
		}
	}()
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.t.Fatalf("byob did not exit within a minute; output:\n%s", p.output())
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		p.t.Fatal(p.err)
	}
	return 0
}

// TestByobRegisterRunFlow drives the built byob binary against the real
// server: register with a team key → wait → approve through the API → run
// (online) → SIGTERM (offline, exit 0) → run → stop (idle) → resume (online)
// → revoke the key (exit 3 with a message).
func TestByobRegisterRunFlow(t *testing.T) {
	e := newEnv(t)
	bin := buildByob(t)
	key, raw := e.teamKey(e.org.ID)
	cfg := filepath.Join(t.TempDir(), "byob", "config.json")
	env := []string{"BYOB_API_KEY=" + raw, "BYOB_SERVER=" + e.srv.URL, "BYOB_CONFIG=" + cfg}
	tok := e.token(e.sa.Email)

	reg := startByob(t, bin, env, "register", "--team", key.TeamID.String(), "--id", "cli-1", "--title", "CLI agent", "--poll-max", "300ms")
	reg.waitLine("Waiting for an operator to approve agent cli-1")
	a := e.dbAgent(e.org.ID, "cli-1")
	if a == nil || a.Status != models.StatusPending || a.Title != "CLI agent" || a.OSName == nil {
		t.Fatalf("registered agent: %+v", a)
	}
	if runtime.GOOS == "linux" && (*a.OSName != "Linux" || a.OSVersion == nil || a.RAMBytes == nil || *a.RAMBytes <= 0 || a.StorageBytes == nil) {
		t.Fatalf("telemetry not reported: %+v", a.Telemetry())
	}
	e.call(http.MethodPatch, "/api/v1/agents/cli-1/approve", tok, map[string]any{}).want(http.StatusOK)
	if code := reg.exit(); code != 0 {
		t.Fatalf("register exit %d; output:\n%s", code, reg.output())
	}
	if !strings.Contains(reg.output(), "Approved: agent cli-1") {
		t.Fatalf("register output:\n%s", reg.output())
	}
	fi, err := os.Stat(cfg)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config file: %v %v", fi, err)
	}
	var stored struct{ APIKey, AgentID, Server string }
	b, _ := os.ReadFile(cfg)
	json.Unmarshal(b, &stored)
	if stored.APIKey != raw || stored.AgentID != "cli-1" || stored.Server != e.srv.URL {
		t.Fatalf("config %s", b)
	}

	// Online, then SIGTERM: offline and exit 0.
	run := startByob(t, bin, env, "run", "--interval", "200ms")
	run.waitLine("online as cli-1")
	if a := e.dbAgent(e.org.ID, "cli-1"); !a.IsOnline {
		t.Fatal("agent not online after byob run")
	}
	st := startByob(t, bin, env, "status")
	if code := st.exit(); code != 0 || !strings.Contains(st.output(), "status:       approved") {
		t.Fatalf("status exit %d:\n%s", code, st.output())
	}
	run.cmd.Process.Signal(syscall.SIGTERM)
	if code := run.exit(); code != 0 || !strings.Contains(run.output(), "offline") {
		t.Fatalf("run after SIGTERM: exit %d\n%s", code, run.output())
	}
	if a := e.dbAgent(e.org.ID, "cli-1"); a.IsOnline {
		t.Fatal("agent still online after SIGTERM")
	}

	// Stop → idle, resume → online, revoke → exit 3.
	run = startByob(t, bin, env, "run", "--interval", "200ms")
	run.waitLine("online as cli-1")
	e.call(http.MethodPatch, "/api/v1/agents/cli-1/stop", tok, map[string]any{}).want(http.StatusOK)
	run.waitLine("idle until it is resumed")
	e.call(http.MethodPatch, "/api/v1/agents/cli-1/resume", tok, map[string]any{}).want(http.StatusOK)
	run.waitLine("resumed; online as cli-1")
	if a := e.dbAgent(e.org.ID, "cli-1"); !a.IsOnline || a.Status != models.StatusApproved {
		t.Fatalf("after resume: %+v", a)
	}
	e.call(http.MethodDelete, "/api/v1/settings/api-keys/"+key.ID.String(), tok, nil).want(http.StatusOK)
	if code := run.exit(); code != 3 {
		t.Fatalf("run after revoke: exit %d, want 3\n%s", code, run.output())
	}
	if !strings.Contains(run.output(), "the server refused the API key: it was revoked, disabled or has expired") {
		t.Fatalf("no clear message after revoke:\n%s", run.output())
	}
	t.Logf("byob register:\n%sbyob run:\n%s", reg.output(), run.output())
	st = startByob(t, bin, env, "status")
	if code := st.exit(); code != 3 {
		t.Fatalf("status with a revoked key: exit %d\n%s", code, st.output())
	}
}

// pendingJoinRequest returns the id of the only pending join request for agent.
func (e *env) pendingJoinRequest(tok, agent string) string {
	e.t.Helper()
	var jrs []struct{ ID, AgentName, Status string }
	e.call(http.MethodGet, "/api/v1/internal/join-requests?status=pending", tok, nil).want(http.StatusOK).decode(&jrs)
	for _, jr := range jrs {
		if jr.AgentName == agent {
			return jr.ID
		}
	}
	e.t.Fatalf("no pending join request for %s in %+v", agent, jrs)
	return ""
}

// TestByobJoinRunFlow drives the built byob binary through the invite flow
// against the real server: join (invite shown, join request sent, waiting) →
// approve through the API → key stored with mode 0600 → run (online) → stop
// (idle) → resume (online) → revoke the key (exit 3). A rejected request
// ends with exit 4, a revoked invite with exit 5.
func TestByobJoinRunFlow(t *testing.T) {
	e := newEnv(t)
	bin := buildByob(t)
	tok := e.token(e.sa.Email)
	cfg := filepath.Join(t.TempDir(), "byob", "config.json")
	env := []string{"BYOB_CONFIG=" + cfg}

	_, link := e.newInvite(tok, "joiner-1")
	join := startByob(t, bin, env, "join", link, "--title", "Joined by invite", "--poll-max", "300ms")
	join.waitLine("agent name:    joiner-1")
	join.waitLine("Waiting for an operator to approve the join request")
	// Interrupted while waiting: exit 130; the same command picks the request up again.
	join.cmd.Process.Signal(os.Interrupt)
	if code := join.exit(); code != 130 || !strings.Contains(join.output(), "run the same `byob join` again") {
		t.Fatalf("interrupted join: exit %d\n%s", code, join.output())
	}
	join = startByob(t, bin, env, "join", link, "--title", "Joined by invite", "--poll-max", "300ms")
	join.waitLine("Resuming join request")
	join.waitLine("Waiting for an operator to approve the join request")
	jr := e.pendingJoinRequest(tok, "joiner-1")
	e.call(http.MethodPost, "/api/v1/internal/join-requests/"+jr+"/approve", tok, map[string]any{}).want(http.StatusOK)
	if code := join.exit(); code != 0 || !strings.Contains(join.output(), "Approved: agent joiner-1") {
		t.Fatalf("join exit %d:\n%s", code, join.output())
	}
	// byob joined with a clientSecret of its own: the server issued none.
	if n := e.count("join_requests", "id = ? AND client_secret", jr); n != 1 {
		t.Fatal("byob joined without a clientSecret")
	}
	var all []struct{ AgentName string }
	e.call(http.MethodGet, "/api/v1/internal/join-requests", tok, nil).want(http.StatusOK).decode(&all)
	if n := len(slices.DeleteFunc(all, func(j struct{ AgentName string }) bool { return j.AgentName != "joiner-1" })); n != 1 {
		t.Fatalf("%d join requests for joiner-1 after an interrupted and resumed join, want 1", n)
	}
	fi, err := os.Stat(cfg)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config file: %v %v", fi, err)
	}
	var stored struct {
		APIKey, AgentID string
		PendingJoin     any
	}
	b, _ := os.ReadFile(cfg)
	json.Unmarshal(b, &stored)
	if !strings.HasPrefix(stored.APIKey, models.APIKeyPrefix) || stored.AgentID != "joiner-1" || stored.PendingJoin != nil {
		t.Fatalf("config %s", b)
	}
	a := e.dbAgent(e.org.ID, "joiner-1")
	if a == nil || a.Status != models.StatusApproved || a.OSName == nil {
		t.Fatalf("agent after approval: %+v", a)
	}

	run := startByob(t, bin, env, "run", "--interval", "200ms")
	run.waitLine("online as joiner-1")
	e.call(http.MethodPatch, "/api/v1/agents/joiner-1/stop", tok, map[string]any{}).want(http.StatusOK)
	run.waitLine("idle until it is resumed")
	e.call(http.MethodPatch, "/api/v1/agents/joiner-1/resume", tok, map[string]any{}).want(http.StatusOK)
	run.waitLine("resumed; online as joiner-1")
	var keys []struct{ ID string }
	e.call(http.MethodGet, "/api/v1/settings/api-keys?agentId=joiner-1", tok, nil).want(http.StatusOK).decode(&keys)
	if len(keys) != 1 {
		t.Fatalf("keys of joiner-1: %+v", keys)
	}
	e.call(http.MethodDelete, "/api/v1/settings/api-keys/"+keys[0].ID, tok, nil).want(http.StatusOK)
	if code := run.exit(); code != 3 || !strings.Contains(run.output(), "the server refused the API key") {
		t.Fatalf("run after revoke: exit %d\n%s", code, run.output())
	}
	t.Logf("byob join:\n%sbyob run:\n%s", join.output(), run.output())

	// Rejected: exit 4 with a message.
	cfg2 := filepath.Join(t.TempDir(), "config.json")
	_, link = e.newInvite(tok, "joiner-2")
	join = startByob(t, bin, []string{"BYOB_CONFIG=" + cfg2}, "join", link, "--poll-max", "300ms")
	join.waitLine("Waiting for an operator to approve the join request")
	jr = e.pendingJoinRequest(tok, "joiner-2")
	e.call(http.MethodPost, "/api/v1/internal/join-requests/"+jr+"/reject", tok, map[string]any{}).want(http.StatusOK)
	if code := join.exit(); code != 4 || !strings.Contains(join.output(), "rejected by an operator") {
		t.Fatalf("rejected join: exit %d\n%s", code, join.output())
	}

	// --print-key: the key on stdout, nothing stored.
	cfg4 := filepath.Join(t.TempDir(), "config.json")
	_, link = e.newInvite(tok, "joiner-4")
	join = startByobWith(t, bin, []string{"BYOB_CONFIG=" + cfg4}, true, "join", link, "--print-key", "--poll-max", "300ms")
	join.waitLine("Waiting for an operator to approve the join request")
	jr = e.pendingJoinRequest(tok, "joiner-4")
	e.call(http.MethodPost, "/api/v1/internal/join-requests/"+jr+"/approve", tok, map[string]any{}).want(http.StatusOK)
	key := join.waitLine(models.APIKeyPrefix)
	if code := join.exit(); code != 0 || !strings.HasPrefix(key, models.APIKeyPrefix) {
		t.Fatalf("--print-key: exit %d\n%s", code, join.output())
	}
	if got := join.std.String(); got != key+"\n" {
		t.Fatalf("--print-key: stdout is %q, want the key alone", got)
	}
	if b, _ := os.ReadFile(cfg4); strings.Contains(string(b), models.APIKeyPrefix) {
		t.Fatalf("--print-key stored the key: %s", b)
	}

	// The answer to the join was lost (a crash after sending it): the stored
	// idempotency key and clientSecret find the request again and claim it,
	// although the server never shows a secret twice.
	_, link5 := e.newInvite(tok, "joiner-5")
	token5 := link5[strings.LastIndex(link5, "/")+1:]
	secret5, key5 := strings.Repeat("5", 64), "lost-answer-5"
	var lost joinAnswerOut
	e.joinInvite(token5, map[string]any{"clientSecret": secret5}, "Idempotency-Key", key5).want(http.StatusCreated).decode(&lost)
	sum := sha256.Sum256([]byte(token5))
	cfg5 := filepath.Join(t.TempDir(), "config.json")
	pending, _ := json.Marshal(map[string]any{"server": e.srv.URL, "pendingJoin": map[string]any{
		"server": e.srv.URL, "inviteHash": hex.EncodeToString(sum[:]), "idempotencyKey": key5, "claimSecret": secret5,
		"createdAt": time.Now().UTC()}})
	if err := os.WriteFile(cfg5, pending, 0o600); err != nil {
		t.Fatal(err)
	}
	join = startByob(t, bin, []string{"BYOB_CONFIG=" + cfg5}, "join", link5, "--print-key", "--poll-max", "300ms")
	join.waitLine("Join request " + lost.JoinRequestID + " sent")
	join.waitLine("Waiting for an operator to approve the join request")
	e.call(http.MethodPost, "/api/v1/internal/join-requests/"+lost.JoinRequestID+"/approve", tok, map[string]any{}).want(http.StatusOK)
	key = join.waitLine(models.APIKeyPrefix)
	if code := join.exit(); code != 0 || !strings.HasPrefix(key, models.APIKeyPrefix) {
		t.Fatalf("resumed lost join: exit %d\n%s", code, join.output())
	}
	if n := e.count("join_requests", "agent_name = 'joiner-5'"); n != 1 {
		t.Fatalf("%d join requests for joiner-5, want 1", n)
	}

	// A revoked invite: exit 5 with a message, nothing stored.
	id, link := e.newInvite(tok, "joiner-3")
	e.call(http.MethodDelete, "/api/v1/internal/invites/"+id, tok, nil).want(http.StatusOK)
	join = startByob(t, bin, []string{"BYOB_CONFIG=" + filepath.Join(t.TempDir(), "config.json")}, "join", link)
	if code := join.exit(); code != 5 || !strings.Contains(join.output(), "this invite was revoked; ask the operator for a new invite link") {
		t.Fatalf("revoked invite: exit %d\n%s", code, join.output())
	}
}
