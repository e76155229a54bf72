package views

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"golang.org/x/net/html"
)

// parseHTML parses a rendered component for assertions by CSS selector.
func parseHTML(t *testing.T, page string) *goquery.Document {
	t.Helper()
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestErrorPagesSayWhatAndWhereTo: every error page has a heading, one
// sentence of what happened and a link onward.
func TestErrorPagesSayWhatAndWhereTo(t *testing.T) {
	for _, tc := range []struct {
		status  int
		message string
		heading string
	}{
		{403, "admins only", "You don't have access to this"},
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
		doc := parseHTML(t, page)
		if h := doc.Find("h1"); h.Length() != 1 || h.Text() != tc.heading {
			t.Errorf("%d: heading %q, want %q", tc.status, h.Text(), tc.heading)
		}
		if s := doc.Find(`p[data-testid="error-sentence"]`); s.Length() != 1 || !strings.HasSuffix(s.Text(), ".") || s.Text()[0] < 'A' || s.Text()[0] > 'Z' {
			t.Errorf("%d: sentence %q", tc.status, s.Text())
		}
		if l := doc.Find(`a[data-testid="error-link"]`); l.Length() != 1 || l.AttrOr("href", "") != "/login" || l.Text() == "" {
			t.Errorf("%d: link %q", tc.status, l.AttrOr("href", ""))
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
	// The text before the <time> element ends in a space.
	if tm := parseHTML(t, buf.String()).Find(`[data-testid="presence-dot"] time`); tm.Length() != 1 || tm.Nodes[0].PrevSibling == nil ||
		tm.Nodes[0].PrevSibling.Type != html.TextNode || tm.Nodes[0].PrevSibling.Data != "last seen " {
		t.Fatalf("presence cell %s", buf.String())
	}
}
