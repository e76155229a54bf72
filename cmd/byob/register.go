package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/agentroster/agentroster/cmd/byob/client"
)

// register creates a pending agent with a team key and waits until an
// operator approves it.
func (a *app) register(args []string) error {
	fs := a.newFlags("register")
	team := fs.String("team", "", "team id (UUID) to register in (required)")
	id := fs.String("id", "", "agent id, e.g. claude-1 (required)")
	server := fs.String("server", os.Getenv("BYOB_SERVER"), "server URL (default BYOB_SERVER, else the config's)")
	key := fs.String("key", "", "team API key (default BYOB_API_KEY; prefer the variable: flags show in ps)")
	title := fs.String("title", "", "title of the agent")
	llm := fs.String("llm-version", "", "model the agent runs")
	email := fs.String("email", "", "contact address of the agent")
	adapter := fs.String("adapter", "http", "adapter type (http, webhook, mcp, custom)")
	pollMax := fs.Duration("poll-max", 15*time.Second, "longest wait between polls for approval")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *team == "" || *id == "" {
		fs.Usage()
		return fail(exitUsage, "register needs --team and --id")
	}
	cfg, cfgPath, err := a.load()
	if err != nil {
		return err
	}
	if *server == "" {
		*server = cfg.Server
	}
	if *key == "" {
		*key = os.Getenv("BYOB_API_KEY")
	}
	if *server == "" || *key == "" {
		return fail(exitUsage, "register needs the server (--server or BYOB_SERVER) and a team key (BYOB_API_KEY)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := client.New(*server, *key)
	dir, _ := os.Getwd()
	host, _ := os.Hostname()
	in := client.RegisterInput{ID: *id, Title: *title, MachineName: host, LLMVersion: *llm, Email: *email, AdapterType: *adapter, Telemetry: client.CollectTelemetry(dir)}
	ag, err := retry(ctx, func() (*client.Agent, error) { return c.Register(ctx, *team, in) })
	switch {
	case client.IsCode(err, "agent_exists"):
		return fail(exitError, "an agent with id %q already exists in this organization; pick another --id", *id)
	case client.StatusOf(err) == http.StatusUnauthorized:
		return fail(exitUnauthorized, "the server refused the key: %v", err)
	case err != nil:
		return fmt.Errorf("registering: %w", err)
	}
	cfg.Server, cfg.APIKey, cfg.AgentID, cfg.TeamID = c.BaseURL, *key, ag.ID, *team
	if orgs, err := c.Orgs(ctx); err == nil && len(orgs) > 0 {
		cfg.OrgID = orgs[0].ID
	}
	if err := save(cfgPath, cfg); err != nil {
		return err
	}
	fmt.Fprintf(a.out, "Registered agent %s (%s); settings stored in %s (mode 0600).\n", ag.ID, ag.Status, cfgPath)
	st, err := a.waitForApproval(ctx, c, ag.ID, *pollMax)
	if errors.Is(err, context.Canceled) {
		return fail(exitInterrupted, "interrupted before approval; `byob run` waits for it too")
	}
	if err != nil {
		return runError(err)
	}
	fmt.Fprintf(a.out, "Approved: agent %s is %s. Start it with: byob run\n", ag.ID, st.Status)
	return nil
}

// waitForApproval polls the agent's status with backoff until it is approved.
func (a *app) waitForApproval(ctx context.Context, c *client.Client, id string, pollMax time.Duration) (*client.Status, error) {
	sp := startSpinner(a.errOut, "Waiting for an operator to approve agent "+id+"…")
	defer sp.Stop()
	b := client.NewBackoff(time.Second, pollMax)
	for {
		st, err := c.Status(ctx, id)
		switch {
		case err == nil && st.Status == client.StatusApproved:
			return st, nil
		case err == nil && st.Status == client.StatusStopped:
			sp.setNote(" (stopped; waiting for resume)")
		case err == nil:
			sp.setNote("")
		case client.Transient(err):
			sp.setNote(" (server unreachable, retrying)")
		default:
			return nil, err
		}
		if !client.Sleep(ctx, b.Wait(err)) {
			return nil, context.Canceled
		}
	}
}
