package main

import (
	"net/netip"
	"slices"
	"testing"
)

func TestConfigWebhookAllowCIDRs(t *testing.T) {
	t.Setenv("WEBHOOK_ALLOW_CIDRS", " 10.20.0.0/16, fd00:1::/64 ,")
	c, err := loadConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16"), netip.MustParsePrefix("fd00:1::/64")}
	if !slices.Equal(c.WebhookAllowCIDRs, want) {
		t.Fatalf("allow list %v, want %v", c.WebhookAllowCIDRs, want)
	}
	c, err = loadConfig([]string{"-webhook-allow-cidrs", "192.168.7.9/24"})
	if err != nil || !slices.Equal(c.WebhookAllowCIDRs, []netip.Prefix{netip.MustParsePrefix("192.168.7.0/24")}) {
		t.Fatalf("flag: %v %v", c.WebhookAllowCIDRs, err)
	}
	if _, err := loadConfig([]string{"-webhook-allow-cidrs", "10.0.0.1"}); err == nil {
		t.Fatal("a bare address was taken as a CIDR")
	}
}

func TestConfigListenDatabaseURL(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://u@pgbouncer:6432/roster")
	t.Setenv("LISTEN_DATABASE_URL", "postgres://u@db:5432/roster")
	c, err := loadConfig(nil)
	if err != nil || c.ListenDatabaseURL != "postgres://u@db:5432/roster" {
		t.Fatalf("LISTEN_DATABASE_URL: %q %v", c.ListenDatabaseURL, err)
	}
	t.Setenv("DATABASE_URL", "")
	if _, err := loadConfig(nil); err == nil {
		t.Fatal("LISTEN_DATABASE_URL without DATABASE_URL was accepted (the private cluster is direct)")
	}
}
