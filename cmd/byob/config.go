package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// config is what byob keeps between runs. It holds a credential, so it is
// written with mode 0600 in a directory of mode 0700.
type config struct {
	Server  string `json:"server"`
	APIKey  string `json:"apiKey,omitempty"`
	AgentID string `json:"agentId,omitempty"`
	OrgID   string `json:"orgId,omitempty"`
	TeamID  string `json:"teamId,omitempty"`
	// PendingJoin is a join request still waiting for approval, so an
	// interrupted `byob join` can pick it up again without using the invite twice.
	PendingJoin *pendingJoin `json:"pendingJoin,omitempty"`
}

type pendingJoin struct {
	Server         string    `json:"server"`
	InviteHash     string    `json:"inviteHash"` // SHA-256 of the invite token
	IdempotencyKey string    `json:"idempotencyKey"`
	JoinRequestID  string    `json:"joinRequestId,omitempty"`
	ClaimSecret    string    `json:"claimSecret,omitempty"` // the clientSecret byob generated (or a secret the server issued)
	CreatedAt      time.Time `json:"createdAt"`
}

// path is the config file: --config, BYOB_CONFIG, or the user config dir.
func (a *app) path() (string, error) {
	if a.configPath != "" {
		return a.configPath, nil
	}
	if p := os.Getenv("BYOB_CONFIG"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no config directory (%v); pass --config", err)
	}
	return filepath.Join(dir, "byob", "config.json"), nil
}

// load reads the config; a missing file is an empty config.
func (a *app) load() (*config, string, error) {
	p, err := a.path()
	if err != nil {
		return nil, "", err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return &config{}, p, nil
	}
	if err != nil {
		return nil, p, err
	}
	var c config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, p, fmt.Errorf("config %s is not valid JSON: %v", p, err)
	}
	return &c, p, nil
}

// loadAgent reads a config that has an agent and its key.
func (a *app) loadAgent() (*config, string, error) {
	c, p, err := a.load()
	if err != nil {
		return nil, p, err
	}
	if c.Server == "" || c.APIKey == "" || c.AgentID == "" {
		return nil, p, fail(exitUsage, "no agent configured in %s; run `byob join <invite-url>` or `byob register` first", p)
	}
	return c, p, nil
}

// save writes the config atomically with mode 0600.
func save(p string, c *config) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".config-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), p)
}
