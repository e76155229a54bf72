package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseFlagsAroundArguments(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	adapter := fs.String("adapter", "http", "")
	printKey := fs.Bool("print-key", false, "")
	pos, err := parse(fs, []string{"https://x/invite/tok", "--adapter", "mcp", "--print-key"})
	if err != nil || len(pos) != 1 || pos[0] != "https://x/invite/tok" || *adapter != "mcp" || !*printKey {
		t.Fatalf("pos %v adapter %q print %v err %v", pos, *adapter, *printKey, err)
	}
	if _, err := parse(flag.NewFlagSet("t", flag.ContinueOnError), []string{"--nope"}); err == nil {
		t.Fatal("unknown flag accepted")
	}
}

func TestConfigIsWrittenPrivately(t *testing.T) {
	p := filepath.Join(t.TempDir(), "dir", "config.json")
	if err := save(p, &config{Server: "http://x", APIKey: "ag_ak_secret", AgentID: "a"}); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{p: 0o600, filepath.Dir(p): 0o700} {
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != want {
			t.Fatalf("%s: mode %v, want %v (%v)", path, fi.Mode().Perm(), want, err)
		}
	}
	a := &app{configPath: p}
	c, _, err := a.loadAgent()
	if err != nil || c.APIKey != "ag_ak_secret" {
		t.Fatalf("load: %+v %v", c, err)
	}
}

func TestUsageAndExitCodes(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(nil, &out, &errOut); code != exitUsage || !strings.Contains(errOut.String(), "byob join <invite-url>") {
		t.Fatalf("no args: %d %s", code, errOut.String())
	}
	errOut.Reset()
	if code := run([]string{"join", "not-a-link"}, &out, &errOut); code != exitUsage || !strings.Contains(errOut.String(), "not an invite link") {
		t.Fatalf("bad link: %d %s", code, errOut.String())
	}
	errOut.Reset()
	if code := run([]string{"run", "--config", filepath.Join(t.TempDir(), "none.json")}, &out, &errOut); code != exitUsage || !strings.Contains(errOut.String(), "no agent configured") {
		t.Fatalf("run without config: %d %s", code, errOut.String())
	}
}

func TestElapsed(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0:00", 75 * time.Second: "1:15", 3725 * time.Second: "1:02:05"} {
		if got := elapsed(d); got != want {
			t.Errorf("elapsed(%s) = %s, want %s", d, got, want)
		}
	}
}

func TestMCPConfigPrintsTheStoredKey(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.json")
	if err := save(p, &config{Server: "https://roster.example.com/", APIKey: "ag_ak_secret", AgentID: "a"}); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"mcp-config", "--config", p}, &out, &errOut); code != exitOK {
		t.Fatalf("mcp-config: %d %s", code, errOut.String())
	}
	var block struct {
		MCPServers map[string]struct {
			Type    string            `json:"type"`
			URL     string            `json:"url"`
			Headers map[string]string `json:"headers"`
		} `json:"mcpServers"`
	}
	if err := json.Unmarshal(out.Bytes(), &block); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	s := block.MCPServers["agentroster"]
	if s.Type != "http" || s.URL != "https://roster.example.com/mcp" || s.Headers["Authorization"] != "ApiKey ag_ak_secret" {
		t.Fatalf("block %+v", block)
	}
	out.Reset()
	if code := run([]string{"mcp-config", "--cli", "--config", p}, &out, &errOut); code != exitOK ||
		!strings.Contains(out.String(), `https://roster.example.com/mcp --header "Authorization: ApiKey ag_ak_secret"`) {
		t.Fatalf("--cli: %d %s", code, out.String())
	}
	if code := run([]string{"mcp-config", "--config", filepath.Join(t.TempDir(), "none.json")}, &out, &errOut); code != exitUsage {
		t.Fatalf("without a key: %d", code)
	}
}
