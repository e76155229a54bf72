// Command byob is the reference runtime for Agent Roster ("bring your own
// bot"): it joins an organization through an invite link or registers with a
// team key, waits for an operator's approval, then reports presence and
// follows stop and resume until it is told to go.
//
//	byob join <invite-url> [--adapter http] [--title …] [--print-key]
//	byob register --team <id> --id <agent-id> [--server URL] (key in BYOB_API_KEY)
//	byob run
//	byob status
//	byob mcp-config [--cli]
//
// The key is kept in a config file of mode 0600 (default
// $XDG_CONFIG_HOME/byob/config.json; --config or BYOB_CONFIG to change it).
//
// Exit codes: 0 done, 1 error, 2 usage, 3 the server refused the key (revoked,
// disabled or expired), 4 join request rejected, 5 invite or join request
// expired, 130 interrupted while waiting for approval.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// Exit codes.
const (
	exitOK           = 0
	exitError        = 1
	exitUsage        = 2
	exitUnauthorized = 3
	exitRejected     = 4
	exitExpired      = 5
	exitInterrupted  = 130
)

// cliError carries an exit code and a message for the user.
type cliError struct {
	code int
	msg  string
}

func (e *cliError) Error() string { return e.msg }

func fail(code int, format string, args ...any) error {
	return &cliError{code: code, msg: fmt.Sprintf(format, args...)}
}

const usage = `byob is the reference runtime for Agent Roster.

Usage:
  byob join <invite-url> [--adapter http] [--title TITLE] [--print-key]
  byob register --team TEAM_ID --id AGENT_ID [--server URL] [--title TITLE]
  byob run [--interval 15s]
  byob status
  byob mcp-config [--cli]

mcp-config prints the MCP client configuration block (with --cli, a
"claude mcp add" command line) for the stored key.

Every command takes --config FILE (default: BYOB_CONFIG, else
$XDG_CONFIG_HOME/byob/config.json). register reads the team key from
BYOB_API_KEY (or --key). Run "byob <command> -h" for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// app is one invocation: where it writes and how it finds its config.
type app struct {
	out, errOut io.Writer
	configPath  string
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	a := &app{out: stdout, errOut: stderr}
	var err error
	switch args[0] {
	case "join":
		err = a.join(args[1:])
	case "register":
		err = a.register(args[1:])
	case "run":
		err = a.run(args[1:])
	case "status":
		err = a.status(args[1:])
	case "mcp-config":
		err = a.mcpConfig(args[1:])
	case "version":
		fmt.Fprintln(stdout, "byob", clientVersion)
	default:
		fmt.Fprintf(stderr, "byob: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	if err == nil {
		return exitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	var ce *cliError
	if errors.As(err, &ce) {
		fmt.Fprintln(stderr, "byob:", ce.msg)
		return ce.code
	}
	fmt.Fprintln(stderr, "byob:", err)
	return exitError
}

// newFlags is a flag set for a command with the shared --config flag.
func (a *app) newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("byob "+name, flag.ContinueOnError)
	fs.SetOutput(a.errOut)
	fs.StringVar(&a.configPath, "config", "", "config file (default BYOB_CONFIG, else $XDG_CONFIG_HOME/byob/config.json)")
	return fs
}

// parse parses flags placed before, between or after positional arguments
// and returns the positional ones. A usage error exits with code 2.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &cliError{code: exitUsage, msg: err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
