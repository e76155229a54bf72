package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// config is the server's whole configuration, read from the environment;
// flags of the same meaning override it.
type config struct {
	Addr        string
	PublicURL   string
	DatabaseURL string
	// ListenDatabaseURL is a direct (or session-pooled) URL to the same
	// database, for LISTEN and migrations, when DATABASE_URL goes through a
	// transaction pooler such as PgBouncer.
	ListenDatabaseURL string
	DataDir           string
	SecretKey         string
	BootstrapEmail    string
	BootstrapPass     string
	LogFormat         string
	TrustedProxies    []string
	ShutdownGrace     time.Duration
	PresenceWindow    time.Duration
	MetricsToken      string
	MetricsAddr       string // serve /metrics here without a token (e.g. 127.0.0.1:9090)
	PprofAddr         string // serve net/http/pprof here when set (e.g. 127.0.0.1:6060)
	// WebhookAllowCIDRs are internal ranges webhooks may reach anyway.
	WebhookAllowCIDRs []netip.Prefix
}

func loadConfig(args []string) (config, error) {
	env := func(name, def string) string {
		if v, ok := os.LookupEnv(name); ok && v != "" {
			return v
		}
		return def
	}
	c := config{
		Addr:              env("ADDR", ":8080"),
		PublicURL:         env("PUBLIC_URL", ""),
		DatabaseURL:       env("DATABASE_URL", ""),
		ListenDatabaseURL: env("LISTEN_DATABASE_URL", ""),
		DataDir:           env("DATA_DIR", "./data"),
		SecretKey:         env("SECRET_KEY", ""),
		BootstrapEmail:    env("BOOTSTRAP_SA_EMAIL", "admin@localhost"),
		BootstrapPass:     env("BOOTSTRAP_SA_PASSWORD", ""),
		LogFormat:         env("LOG_FORMAT", "text"),
		MetricsToken:      env("METRICS_TOKEN", ""),
		MetricsAddr:       env("METRICS_ADDR", ""),
		PprofAddr:         env("PPROF_ADDR", ""),
	}
	grace, presence := env("SHUTDOWN_GRACE", "20s"), env("PRESENCE_WINDOW", "2m")
	proxies := env("TRUSTED_PROXIES", "")
	webhookAllow := env("WEBHOOK_ALLOW_CIDRS", "")
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen address (ADDR)")
	fs.StringVar(&c.PublicURL, "public-url", c.PublicURL, "base URL used in invite links (PUBLIC_URL)")
	fs.StringVar(&c.DatabaseURL, "database-url", c.DatabaseURL, "PostgreSQL URL; empty starts a private cluster (DATABASE_URL)")
	fs.StringVar(&c.ListenDatabaseURL, "listen-database-url", c.ListenDatabaseURL, "direct PostgreSQL URL for LISTEN and migrations when DATABASE_URL is a transaction pooler (LISTEN_DATABASE_URL)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory for the private cluster and the generated secret (DATA_DIR)")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "text or json (LOG_FORMAT)")
	fs.StringVar(&grace, "shutdown-grace", grace, "how long in-flight requests may finish on shutdown (SHUTDOWN_GRACE)")
	fs.StringVar(&presence, "presence-window", presence, "silence after which an agent shows offline (PRESENCE_WINDOW)")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", c.MetricsAddr, "serve /metrics only on this address, without a token (METRICS_ADDR)")
	fs.StringVar(&proxies, "trusted-proxies", proxies, "comma-separated proxy CIDRs whose X-Forwarded-For is believed (TRUSTED_PROXIES)")
	fs.StringVar(&webhookAllow, "webhook-allow-cidrs", webhookAllow, "comma-separated internal CIDRs webhooks may reach (WEBHOOK_ALLOW_CIDRS)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	var err error
	if c.ShutdownGrace, err = time.ParseDuration(grace); err != nil {
		return c, fmt.Errorf("SHUTDOWN_GRACE: %w", err)
	}
	if c.PresenceWindow, err = time.ParseDuration(presence); err != nil || c.PresenceWindow <= 0 {
		return c, fmt.Errorf("PRESENCE_WINDOW: must be a positive duration like 2m")
	}
	for _, p := range strings.Split(proxies, ",") {
		if p = strings.TrimSpace(p); p != "" {
			c.TrustedProxies = append(c.TrustedProxies, p)
		}
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			return c, fmt.Errorf("METRICS_ADDR: %w", err)
		}
		if c.MetricsAddr == c.Addr {
			return c, errors.New("METRICS_ADDR: must differ from ADDR")
		}
	}
	for _, p := range strings.Split(webhookAllow, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		pr, err := netip.ParsePrefix(p)
		if err != nil {
			return c, fmt.Errorf("WEBHOOK_ALLOW_CIDRS: %q is not a CIDR like 10.20.0.0/16", p)
		}
		c.WebhookAllowCIDRs = append(c.WebhookAllowCIDRs, pr.Masked())
	}
	if c.ListenDatabaseURL != "" && c.DatabaseURL == "" {
		return c, errors.New("LISTEN_DATABASE_URL: needs DATABASE_URL (the private cluster is always direct)")
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return c, errors.New("LOG_FORMAT: must be text or json")
	}
	if c.PublicURL == "" {
		host, port, err := net.SplitHostPort(c.Addr)
		if err != nil {
			return c, fmt.Errorf("ADDR: %w", err)
		}
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "localhost"
		}
		c.PublicURL = "http://" + net.JoinHostPort(host, port)
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if !strings.HasPrefix(c.PublicURL, "http://") && !strings.HasPrefix(c.PublicURL, "https://") {
		return c, errors.New("PUBLIC_URL: must start with http:// or https://")
	}
	return c, nil
}

// secret returns SECRET_KEY, or the key kept in DATA_DIR/secret_key, generated
// (mode 0600) on first use.
func (c config) secret() ([]byte, error) {
	if c.SecretKey != "" {
		if len(c.SecretKey) < 32 {
			return nil, errors.New("SECRET_KEY: must be at least 32 characters")
		}
		return []byte(c.SecretKey), nil
	}
	path := filepath.Join(c.DataDir, "secret_key")
	if b, err := os.ReadFile(path); err == nil {
		key, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(key) < 32 {
			return nil, fmt.Errorf("%s: not a hex key of 32 bytes or more", path)
		}
		return key, nil
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.DataDir, 0o711); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	defer f.Close()
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		return nil, err
	}
	return key, nil
}
