package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/agentroster/agentroster/cmd/byob/client"
)

// status prints the configured agent's status as the server sees it.
func (a *app) status(args []string) error {
	fs := a.newFlags("status")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fail(exitUsage, "status takes no arguments")
	}
	cfg, cfgPath, err := a.loadAgent()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := client.New(cfg.Server, cfg.APIKey)
	st, err := c.Status(ctx, cfg.AgentID)
	if err != nil {
		return runError(err)
	}
	last := "never"
	if st.LastSeenAt != nil {
		last = st.LastSeenAt.Local().Format(time.DateTime)
	}
	fmt.Fprintf(a.out, "server:       %s\n", cfg.Server)
	fmt.Fprintf(a.out, "agent:        %s\n", cfg.AgentID)
	fmt.Fprintf(a.out, "status:       %s\n", st.Status)
	fmt.Fprintf(a.out, "online:       %t\n", st.IsOnline)
	fmt.Fprintf(a.out, "card pickup:  %s\n", onOff(st.AgentPickupEnabled))
	fmt.Fprintf(a.out, "last seen:    %s\n", last)
	fmt.Fprintf(a.out, "key:          %s… (in %s)\n", keyPrefix(cfg.APIKey), cfgPath)
	return nil
}

func keyPrefix(k string) string {
	if len(k) > 12 {
		return k[:12]
	}
	return k
}
