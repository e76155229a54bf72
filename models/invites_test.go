package models

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestInviteState(t *testing.T) {
	now := time.Now()
	past, future := now.Add(-time.Minute), now.Add(time.Hour)
	for _, tc := range []struct {
		inv  Invite
		want string
		left int
	}{
		{Invite{MaxUses: 3, Uses: 1, ExpiresAt: future}, InviteActive, 2},
		{Invite{MaxUses: 1, Uses: 1, ExpiresAt: future}, InviteSpent, 0},
		{Invite{MaxUses: 1, Uses: 0, ExpiresAt: past}, InviteExpired, 0},
		{Invite{MaxUses: 1, Uses: 1, ExpiresAt: past}, InviteSpent, 0},
		{Invite{MaxUses: 1, Uses: 0, ExpiresAt: future, RevokedAt: &past}, InviteRevoked, 0},
	} {
		if got := tc.inv.State(now); got != tc.want || tc.inv.UsesLeft(now) != tc.left {
			t.Errorf("%+v: state %s (uses left %d), want %s (%d)", tc.inv, got, tc.inv.UsesLeft(now), tc.want, tc.left)
		}
	}
}

func TestInviteInputValidate(t *testing.T) {
	ok := InviteInput{AgentName: "a", MaxUses: 1, TTLSeconds: 300}
	if err := ok.Validate(); err != nil || ok.AdapterType != "http" {
		t.Fatalf("valid input: %v %q", err, ok.AdapterType)
	}
	for field, in := range map[string]InviteInput{
		"agentName":   {AgentName: strings.Repeat("a", 64), MaxUses: 1, TTLSeconds: 300},
		"maxUses":     {AgentName: "a", MaxUses: 101, TTLSeconds: 300},
		"ttlSeconds":  {AgentName: "a", MaxUses: 1, TTLSeconds: 604801},
		"adapterType": {AgentName: "a", AdapterType: "grpc", MaxUses: 1, TTLSeconds: 300},
	} {
		var ve *ValidationError
		if err := in.Validate(); !errors.As(err, &ve) || ve.Fields[field] == "" {
			t.Errorf("%s: %v", field, err)
		}
	}
}

func FuzzJoinInputValidate(f *testing.F) {
	f.Add("http", "Claude", "10.0.0.1", "build-7", "boot-1")
	f.Add("http", "Claude", "10.0.0.1", strings.Repeat("s", 32), "boot-1")
	f.Add("grpc", "a\nb", "not-an-ip", strings.Repeat("x", 300), "\x00")
	f.Fuzz(func(t *testing.T, adapter, title, ip, machine, key string) {
		in := JoinInput{AdapterType: adapter, Title: title, MachineIP: ip, MachineName: machine, IdempotencyKey: key, UserAgent: title + machine,
			ClientSecret: machine}
		err := in.Validate()
		var ve *ValidationError
		if err != nil && !errors.As(err, &ve) {
			t.Fatalf("not a validation error: %v", err)
		}
		if err == nil && (strings.ContainsAny(in.Title, "\n\r\x00") || utf8.RuneCountInString(in.Title) > 200 || len(in.IdempotencyKey) > 200) {
			t.Fatalf("accepted %+v", in)
		}
		if err == nil && in.ClientSecret != "" && (len(in.ClientSecret) < ClientSecretMin || len(in.ClientSecret) > ClientSecretMax ||
			strings.ContainsFunc(in.ClientSecret, func(r rune) bool { return r <= 0x20 || r > 0x7e })) {
			t.Fatalf("accepted clientSecret %q", in.ClientSecret)
		}
		if c := clip(in.UserAgent, 50); len(c) > 50 || !utf8.ValidString(c) {
			t.Fatalf("clip %q", c)
		}
	})
}
