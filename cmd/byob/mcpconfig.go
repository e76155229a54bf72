package main

import (
	"fmt"

	"github.com/agentroster/agentroster/handlers/mcpconfig"
)

// mcpConfig prints the MCP client configuration block (or, with --cli, the
// `claude mcp add … --header` command line) that reaches the server with the
// stored key. The output holds the key: it is meant for the user's own
// client configuration.
func (a *app) mcpConfig(args []string) error {
	fs := a.newFlags("mcp-config")
	cli := fs.Bool("cli", false, "print a `claude mcp add --transport http … --header …` command line instead of the JSON block")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fail(exitUsage, "mcp-config takes no arguments")
	}
	c, p, err := a.load()
	if err != nil {
		return err
	}
	if c.Server == "" || c.APIKey == "" {
		return fail(exitUsage, "no API key stored in %s; run `byob join <invite-url>` or `byob register` first", p)
	}
	if *cli {
		fmt.Fprintln(a.out, mcpconfig.AddCommand(c.Server, c.APIKey))
		return nil
	}
	fmt.Fprintln(a.out, mcpconfig.Block(c.Server, c.APIKey))
	return nil
}
