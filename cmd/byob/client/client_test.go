package client

import (
	"errors"
	"net/http"
	"testing"
	"time"
)

func TestParseInviteURL(t *testing.T) {
	for _, tc := range []struct{ in, base, token string }{
		{"https://roster.example.com/invite/AbC123", "https://roster.example.com", "AbC123"},
		{"https://roster.example.com/invite/AbC123/", "https://roster.example.com", "AbC123"},
		{"http://localhost:8080/invite/tok?x=1#y", "http://localhost:8080", "tok"},
		{"https://example.com/roster/invite/tok", "https://example.com/roster", "tok"},
		{"https://example.com/api/v1/invites/tok", "https://example.com", "tok"},
	} {
		base, token, err := ParseInviteURL(tc.in)
		if err != nil || base != tc.base || token != tc.token {
			t.Errorf("ParseInviteURL(%q) = %q, %q, %v; want %q, %q", tc.in, base, token, err, tc.base, tc.token)
		}
	}
	for _, bad := range []string{"", "invite/tok", "ftp://x/invite/tok", "https://x/invite/", "https://x/other/tok", "https://x/invite/a/b"} {
		if _, _, err := ParseInviteURL(bad); err == nil {
			t.Errorf("ParseInviteURL(%q) accepted", bad)
		}
	}
}

func TestBackoffGrowsWithJitterUpToMax(t *testing.T) {
	b := NewBackoff(time.Second, 10*time.Second)
	want := []time.Duration{time.Second, 1500 * time.Millisecond, 2250 * time.Millisecond, 3375 * time.Millisecond}
	for i, w := range want {
		d := b.Next()
		if d < w*8/10 || d > w*12/10 {
			t.Fatalf("wait %d = %s, want %s ± 20 %%", i, d, w)
		}
	}
	for range 20 {
		if d := b.Next(); d > 12*time.Second {
			t.Fatalf("wait %s beyond max + jitter", d)
		}
	}
	b.Reset()
	if d := b.Next(); d > 1200*time.Millisecond {
		t.Fatalf("after reset %s", d)
	}
	// Retry-After wins when it is longer.
	if d := b.Wait(&APIError{Status: http.StatusTooManyRequests, RetryAfter: 30 * time.Second}); d != 30*time.Second {
		t.Fatalf("Retry-After ignored: %s", d)
	}
}

func TestTransient(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{errors.New("connection refused"), true},
		{&APIError{Status: 503}, true},
		{&APIError{Status: 429}, true},
		{&APIError{Status: 401}, false},
		{&APIError{Status: 409}, false},
		{&decodeError{errors.New("x")}, false},
		{nil, false},
	} {
		if got := Transient(tc.err); got != tc.want {
			t.Errorf("Transient(%v) = %v", tc.err, got)
		}
	}
}

func TestCollectTelemetry(t *testing.T) {
	tel := CollectTelemetry(t.TempDir())
	if tel.OSName == nil || *tel.OSName == "" {
		t.Fatal("no OS name")
	}
	if tel.RAMBytes != nil && *tel.RAMBytes <= 0 || tel.StorageBytes != nil && *tel.StorageBytes <= 0 {
		t.Fatalf("nonsense sizes %+v", tel)
	}
	if tel.StorageType != nil && *tel.StorageType != "SSD" && *tel.StorageType != "HDD" {
		t.Fatalf("storage type %q", *tel.StorageType)
	}
}
