package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/agentroster/agentroster/cmd/byob/client"
)

const clientVersion = client.Version

// join redeems an invite link: show the invite, create the join request,
// wait for approval, store (or print) the key.
func (a *app) join(args []string) error {
	fs := a.newFlags("join")
	adapter := fs.String("adapter", "", "adapter type to declare: http, webhook, mcp or custom (default the invite's)")
	title := fs.String("title", "", "title of the agent, shown to the operator")
	llm := fs.String("llm-version", "", "model the agent runs, e.g. claude-opus-4-7")
	printKey := fs.Bool("print-key", false, "print the API key on stdout instead of storing it")
	pollMax := fs.Duration("poll-max", 15*time.Second, "longest wait between polls for approval")
	fs.Usage = func() {
		fmt.Fprintln(a.errOut, "Usage: byob join <invite-url> [--adapter http] [--title TITLE] [--print-key]")
		fs.PrintDefaults()
	}
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return fail(exitUsage, "join takes one invite link")
	}
	base, token, err := client.ParseInviteURL(pos[0])
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	cfg, cfgPath, err := a.load()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := client.New(base, "")
	sum := sha256.Sum256([]byte(token))
	inviteHash := hex.EncodeToString(sum[:])

	// With --print-key stdout holds the key alone: KEY=$(byob join … --print-key).
	info := a.out
	if *printKey {
		info = a.errOut
	}
	p := cfg.PendingJoin
	if p != nil && (p.Server != base || p.InviteHash != inviteHash) {
		p = nil
	}
	if p != nil && p.JoinRequestID != "" {
		fmt.Fprintf(info, "Resuming join request %s (created %s).\n", p.JoinRequestID, p.CreatedAt.Local().Format(time.DateTime))
	} else {
		inv, err := retry(ctx, func() (*client.Invite, error) { return c.Invite(ctx, token) })
		resuming := p != nil && p.ClaimSecret != ""
		switch {
		case err == nil:
			showInvite(info, inv)
			if *adapter == "" {
				*adapter = inv.AdapterType
			}
		case resuming && client.IsCode(err, "invite_spent"):
			// The join sent earlier may have used the last use before its
			// answer was lost: the retry below names that request.
		default:
			return inviteError(err)
		}
		if *adapter == "" {
			*adapter = "http"
		}
		if inv != nil && len(inv.AdapterTypes) > 0 && !slices.Contains(inv.AdapterTypes, *adapter) {
			return fail(exitUsage, "this invite accepts the adapter types %s, not %q; pass --adapter", strings.Join(inv.AdapterTypes, ", "), *adapter)
		}
		if p == nil || p.ClaimSecret == "" {
			// A pending join without a secret of its own (from an older byob)
			// could never claim after a lost answer: start afresh.
			p = &pendingJoin{Server: base, InviteHash: inviteHash, IdempotencyKey: randomKey(), ClaimSecret: randomSecret(),
				CreatedAt: time.Now().UTC()}
		}
		// The idempotency key and the client secret are stored before the
		// request, so a retry after a lost answer or a crash never uses the
		// invite twice and can still claim: the server shows a secret only
		// once, and with a clientSecret it shows none.
		cfg.PendingJoin = p
		if err := save(cfgPath, cfg); err != nil {
			return err
		}
		dir, _ := os.Getwd()
		host, _ := os.Hostname()
		in := client.JoinInput{AdapterType: *adapter, Title: *title, MachineName: host, LLMVersion: *llm, ClientSecret: p.ClaimSecret,
			Telemetry: client.CollectTelemetry(dir)}
		jr, err := retry(ctx, func() (*client.JoinRequest, error) { return c.Join(ctx, token, in, p.IdempotencyKey) })
		if err != nil {
			cfg.PendingJoin = nil
			save(cfgPath, cfg)
			return inviteError(err)
		}
		p.JoinRequestID = jr.JoinRequestID
		if jr.ClaimSecret != "" {
			p.ClaimSecret = jr.ClaimSecret // a server that issued its own
		}
		if err := save(cfgPath, cfg); err != nil {
			return err
		}
		fmt.Fprintf(info, "Join request %s sent. An operator approves it under Agents → Join requests.\n", jr.JoinRequestID)
	}

	claim, err := a.waitForClaim(ctx, c, p.JoinRequestID, p.ClaimSecret, *pollMax)
	if errors.Is(err, context.Canceled) {
		return fail(exitInterrupted, "interrupted; run the same `byob join` again to keep waiting for join request %s", p.JoinRequestID)
	}
	cfg.PendingJoin = nil
	if err != nil {
		save(cfgPath, cfg)
		return claimError(err)
	}
	if *printKey {
		if err := save(cfgPath, cfg); err != nil {
			return err
		}
		fmt.Fprintf(a.errOut, "Approved: agent %s. The key is not stored; keep it now, it is shown only once.\n", claim.AgentID)
		fmt.Fprintln(a.out, claim.APIKey)
		return nil
	}
	cfg.Server, cfg.APIKey, cfg.AgentID, cfg.OrgID, cfg.TeamID = base, claim.APIKey, claim.AgentID, claim.OrgID, claim.TeamID
	if err := save(cfgPath, cfg); err != nil {
		return err
	}
	fmt.Fprintf(a.out, "Approved: agent %s. API key stored in %s (mode 0600).\nStart it with: byob run\n", claim.AgentID, cfgPath)
	return nil
}

func showInvite(w io.Writer, inv *client.Invite) {
	fmt.Fprintf(w, "Invite to %s (team %s)\n", inv.OrgTitle, inv.TeamName)
	fmt.Fprintf(w, "  agent name:    %s\n", inv.AgentName)
	if inv.AdapterType != "" {
		fmt.Fprintf(w, "  adapter:       %s\n", inv.AdapterType)
	}
	if !inv.ExpiresAt.IsZero() {
		fmt.Fprintf(w, "  expires:       %s (in %s)\n", inv.ExpiresAt.Local().Format(time.DateTime), time.Until(inv.ExpiresAt).Round(time.Minute))
	}
	fmt.Fprintf(w, "  uses left:     %d\n", inv.UsesLeft)
}

// waitForClaim polls the claim with backoff and jitter until the request is
// decided, showing a spinner with the elapsed time.
func (a *app) waitForClaim(ctx context.Context, c *client.Client, id, secret string, pollMax time.Duration) (*client.Claim, error) {
	sp := startSpinner(a.errOut, "Waiting for an operator to approve the join request…")
	defer sp.Stop()
	b := client.NewBackoff(time.Second, pollMax)
	for {
		claim, err := c.Claim(ctx, id, secret)
		switch {
		case err == nil:
			return claim, nil
		case errors.Is(err, client.ErrPending):
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

// retry calls f until it succeeds, fails for good, or ctx ends; transient
// failures are retried with backoff.
func retry[T any](ctx context.Context, f func() (T, error)) (T, error) {
	b := client.NewBackoff(500*time.Millisecond, 10*time.Second)
	for attempt := 1; ; attempt++ {
		v, err := f()
		if err == nil || !client.Transient(err) || attempt == 6 {
			return v, err
		}
		if !client.Sleep(ctx, b.Wait(err)) {
			return v, ctx.Err()
		}
	}
}

func inviteError(err error) error {
	switch {
	case client.IsCode(err, "invite_expired"):
		return fail(exitExpired, "this invite has expired; ask the operator for a new invite link")
	case client.IsCode(err, "invite_spent"):
		return fail(exitExpired, "this invite has been used up; ask the operator for a new invite link")
	case client.IsCode(err, "invite_revoked"):
		return fail(exitExpired, "this invite was revoked; ask the operator for a new invite link")
	case client.IsCode(err, "idempotency_key_reused"):
		return fail(exitError, "the server holds this join under another secret; remove pendingJoin from the config and ask for a new invite link")
	case client.StatusOf(err) == http.StatusGone:
		return fail(exitExpired, "this invite no longer works (%v); ask the operator for a new invite link", err)
	case client.StatusOf(err) == http.StatusNotFound:
		return fail(exitError, "no such invite; check the link")
	case client.StatusOf(err) == http.StatusBadRequest:
		return fail(exitUsage, "the server refused the join request: %v", err)
	}
	return fmt.Errorf("joining: %w", err)
}

func claimError(err error) error {
	switch {
	case client.IsCode(err, "join_request_rejected"):
		return fail(exitRejected, "the join request was rejected by an operator")
	case client.IsCode(err, "agent_deleted"):
		return fail(exitError, "the agent of this join request was deleted before its key was claimed; ask for a new invite link")
	case client.IsCode(err, "claim_expired"), client.StatusOf(err) == http.StatusGone:
		return fail(exitExpired, "the join request's key was not claimed in time; ask an operator to re-issue the claim (Agents → Join requests), or for a new invite link")
	case client.IsCode(err, "already_claimed"):
		return fail(exitError, "the key of this join request was already claimed; ask for a new invite link")
	case client.StatusOf(err) == http.StatusUnauthorized:
		return fail(exitError, "the server does not recognise this join request or its claim secret; ask for a new invite link")
	}
	return fmt.Errorf("waiting for approval: %w", err)
}

// randomSecret is the clientSecret byob joins with: 64 hex characters.
func randomSecret() string {
	var b [32]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func randomKey() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
