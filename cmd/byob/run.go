package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/agentroster/agentroster/cmd/byob/client"
)

// run keeps the agent online: it polls its status, goes online when
// approved, idles while stopped or pending, and resumes when approved again.
// SIGINT or SIGTERM reports it offline and ends with 0; a refused key (401)
// ends with 3.
func (a *app) run(args []string) error {
	fs := a.newFlags("run")
	interval := fs.Duration("interval", 15*time.Second, "how often to poll the status (also the presence heartbeat)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fail(exitUsage, "run takes no arguments")
	}
	cfg, _, err := a.loadAgent()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := client.New(cfg.Server, cfg.APIKey)
	r := &runner{app: a, c: c, agent: cfg.AgentID}
	a.logf("starting agent %s against %s", cfg.AgentID, cfg.Server)
	err = r.loop(ctx, *interval)
	// Report offline on the way out, whatever ended the loop (not after a 401:
	// the key no longer works).
	if client.StatusOf(err) != http.StatusUnauthorized {
		octx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, oerr := c.Offline(octx, cfg.AgentID); oerr != nil {
			a.logf("could not report offline: %v", oerr)
		} else {
			a.logf("offline")
		}
		cancel()
	}
	if ctx.Err() != nil && err == context.Canceled {
		return nil
	}
	return runError(err)
}

// runner is the state of `byob run`.
type runner struct {
	*app
	c     *client.Client
	agent string
	state string // online, idle (stopped), pending
}

func (r *runner) loop(ctx context.Context, interval time.Duration) error {
	retry := client.NewBackoff(time.Second, interval)
	for {
		err := r.tick(ctx)
		wait := interval
		switch {
		case err == nil:
			retry.Reset()
		case ctx.Err() != nil:
			return context.Canceled
		case client.Transient(err):
			wait = retry.Wait(err)
			r.logf("server unreachable (%v); retrying in %s", err, wait.Round(100*time.Millisecond))
		default:
			return err
		}
		// A little jitter keeps many runtimes from polling in step.
		wait = client.NewBackoff(wait, wait).Next()
		if !client.Sleep(ctx, wait) {
			return context.Canceled
		}
	}
}

// tick polls the status once and moves between online, idle and pending.
func (r *runner) tick(ctx context.Context) error {
	st, err := r.c.Status(ctx, r.agent)
	if err != nil {
		if client.IsCode(err, "agent_stopped") {
			r.idle()
			return nil
		}
		return err
	}
	switch st.Status {
	case client.StatusApproved:
		if r.state == "online" && st.IsOnline {
			return nil
		}
		ag, err := r.c.Online(ctx, r.agent)
		switch {
		case client.IsCode(err, "agent_stopped"):
			r.idle()
			return nil
		case client.IsCode(err, "agent_not_approved"):
			r.pending()
			return nil
		case err != nil:
			return err
		}
		verb := "online"
		if r.state == "idle" {
			verb = "resumed; online"
		}
		r.state = "online"
		r.logf("%s as %s (card pickup %s)%s", verb, ag.ID, onOff(ag.AgentPickupEnabled), r.columns(ctx))
	case client.StatusStopped:
		r.idle()
	default:
		r.pending()
	}
	return nil
}

func (r *runner) idle() {
	if r.state != "idle" {
		r.state = "idle"
		r.logf("agent stopped by an operator; idle until it is resumed")
	}
}

func (r *runner) pending() {
	if r.state != "pending" {
		r.state = "pending"
		r.logf("waiting for an operator to approve the agent")
	}
}

// columns describes what the agent may read, for the log.
func (r *runner) columns(ctx context.Context) string {
	p, err := r.c.Permissions(ctx, r.agent)
	if err != nil || len(p.CanRead) == 0 {
		return ""
	}
	return "; reads " + strings.Join(p.CanRead, ", ")
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// logf prints one timestamped line on stdout.
func (a *app) logf(format string, args ...any) {
	fmt.Fprintf(a.out, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// runError turns what ended a run into the user's message and exit code.
func runError(err error) error {
	switch client.StatusOf(err) {
	case 0:
		if err == nil {
			return nil
		}
		return err
	case http.StatusUnauthorized:
		code := "unauthorized"
		var ae *client.APIError
		if errors.As(err, &ae) {
			code = ae.Code
		}
		return fail(exitUnauthorized, "the server refused the API key: it was revoked, disabled or has expired (HTTP 401 %s). Ask an operator for a new key or invite link.", code)
	case http.StatusNotFound:
		return fail(exitError, "the agent no longer exists on the server (deleted?): %v", err)
	case http.StatusForbidden:
		return fail(exitError, "not allowed: %v", err)
	}
	return err
}
