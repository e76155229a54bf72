// Package views holds the templ components of every screen: layout.templ and
// components.templ are shared; each screen has its own file.
package views

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/static"
)

// Nav is what the layout needs to draw the header.
type Nav struct {
	Title        string
	Active       string // agents, invites, join-requests, settings, audit, platform
	UserEmail    string
	IsSA         bool
	Orgs         []models.Organization
	Org          *models.Organization
	Role         string
	PendingJoins int
	Invitations  int // the user's membership invitations awaiting their decision
}

// CanWrite reports whether the viewer may change things in the current org.
func (n Nav) CanWrite() bool { return n.Role == models.RoleAdmin }

func asset(name string) string { return static.URL(name) }

// exact formats a time for a tooltip and for readers without JavaScript.
func exact(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// relative is the server-side rendering of a relative time; app.js keeps it fresh.
func relative(t time.Time) string {
	d := time.Since(t)
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < 45*time.Second:
		return "just now"
	case d < time.Hour:
		s = fmt.Sprintf("%d min", int(d.Minutes()+0.5))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%d h", int(d.Hours()+0.5))
	default:
		s = fmt.Sprintf("%d days", int(d.Hours()/24+0.5))
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

func navClass(active bool) string {
	if active {
		return "rounded-md bg-gray-900 px-3 py-2 text-sm font-medium text-white"
	}
	return "rounded-md px-3 py-2 text-sm font-medium text-gray-300 hover:bg-gray-700 hover:text-white"
}

func onboardingSummary(s string) string {
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(strings.TrimLeft(line, "# "))
		if line == "" {
			continue
		}
		if utf8.RuneCountInString(line) > 80 {
			return string([]rune(line)[:80]) + "…"
		}
		return line
	}
	return ""
}

// auditDetailsJSON pretty-prints an audit event's details for the expanded row.
func auditDetailsJSON(d map[string]any) string {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return fmt.Sprint(d)
	}
	return string(b)
}

func orgTitle(titles map[string]string, id string) string {
	if t, ok := titles[id]; ok {
		return t
	}
	return id
}
