package views

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestErrorPagesSayWhatAndWhereTo: every error page has a heading, one
// sentence of what happened and a link onward.
func TestErrorPagesSayWhatAndWhereTo(t *testing.T) {
	h1 := regexp.MustCompile(`<h1[^>]*>([^<]+)</h1>`)
	sentence := regexp.MustCompile(`data-testid="error-sentence">([^<]+)</p>`)
	link := regexp.MustCompile(`<a href="([^"]+)"[^>]*data-testid="error-link">([^<]+)</a>`)
	for _, tc := range []struct {
		status  int
		message string
		heading string
	}{
		{403, "admins only", "You don&#39;t have access to this"},
		{404, "not found", "Page not found"},
		{410, "this invite has been used up", "This link no longer works"},
		{429, "too many requests; try again later", "Too many attempts"},
		{500, "internal error", "Something went wrong"},
	} {
		var buf bytes.Buffer
		if err := BareError(tc.status, tc.message).Render(context.Background(), &buf); err != nil {
			t.Fatal(err)
		}
		page := buf.String()
		h, s, l := h1.FindStringSubmatch(page), sentence.FindStringSubmatch(page), link.FindStringSubmatch(page)
		if h == nil || h[1] != tc.heading {
			t.Errorf("%d: heading %q, want %q", tc.status, h, tc.heading)
		}
		if s == nil || !strings.HasSuffix(s[1], ".") || s[1][0] < 'A' || s[1][0] > 'Z' {
			t.Errorf("%d: sentence %q", tc.status, s)
		}
		if l == nil || l[1] != "/login" {
			t.Errorf("%d: link %q", tc.status, l)
		}
		if strings.Contains(page, "internal error") {
			t.Errorf("%d: internals on the page", tc.status)
		}
	}
	if s := ErrorInfoOf(410, "this invite has been used up", false).Sentence; !strings.HasPrefix(s, "This invite has been used up.") {
		t.Errorf("410 sentence %q", s)
	}
}

func TestFieldSentence(t *testing.T) {
	for _, tc := range [][3]string{
		{"maxUses", "must be between 1 and 100", "Max uses must be between 1 and 100."},
		{"invites[2].agentName", "is required", "Agent name is required."},
		{"agentName", "This name is taken: another active invite already reserves it.", "This name is taken: another active invite already reserves it."},
		{"mystery", "is odd", "This field is odd."},
	} {
		if got := FieldSentence(tc[0], tc[1]); got != tc[2] {
			t.Errorf("FieldSentence(%q, %q) = %q, want %q", tc[0], tc[1], got, tc[2])
		}
	}
}

func TestPresenceDotReadsLastSeenWithASpace(t *testing.T) {
	seen := time.Now().Add(-time.Minute)
	var buf bytes.Buffer
	if err := PresenceDot(false, &seen).Render(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "last seen <time") {
		t.Fatalf("presence cell %s", buf.String())
	}
}
