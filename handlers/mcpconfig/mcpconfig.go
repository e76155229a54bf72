// Package mcpconfig writes the client configuration block that adds an Agent
// Roster server to an MCP client: the server's onboarding documents and
// `byob mcp-config` print the same block.
package mcpconfig

import (
	"encoding/json"
	"strings"
)

// Name is the server's name in the block.
const Name = "agentroster"

// Endpoint is the MCP endpoint of the server at base (its PUBLIC_URL).
func Endpoint(base string) string {
	return strings.TrimRight(base, "/") + "/mcp"
}

// Block is the JSON configuration block of an MCP client (the "mcpServers"
// form read by Claude Desktop, Cursor and most others) that reaches the
// server at base with key, indented.
func Block(base, key string) string {
	type server struct {
		Type    string            `json:"type"`
		URL     string            `json:"url"`
		Headers map[string]string `json:"headers"`
	}
	v := map[string]map[string]server{"mcpServers": {Name: {
		Type: "http", URL: Endpoint(base), Headers: map[string]string{"Authorization": "ApiKey " + key},
	}}}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // a placeholder such as <your API key> stays readable
	enc.SetIndent("", "  ")
	enc.Encode(v)
	return strings.TrimSuffix(b.String(), "\n")
}

// AddCommand is the command line that adds the server to a client that takes
// `--header` (Claude Code's `claude mcp add`).
func AddCommand(base, key string) string {
	return "claude mcp add --transport http " + Name + " " + Endpoint(base) + ` --header "Authorization: ApiKey ` + key + `"`
}
