// Package views holds the templ components of every screen: layout.templ and
// components.templ are shared; each screen has its own file, which starts
// with the screen's view types. This file holds the helpers several screens use.
package views

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
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
	// PendingAgents counts agents awaiting approval (registered with a key).
	PendingAgents int
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

// fieldLabels name form fields in error sentences.
var fieldLabels = map[string]string{
	"agentName": "Agent name", "maxUses": "Max uses", "ttlSeconds": "Expires in", "teamId": "Team",
	"adapterType": "Adapter type", "title": "Title", "machineName": "Machine name", "name": "Name",
	"password": "Password", "currentPassword": "Current password", "url": "URL", "role": "Role",
	"email": "Email", "id": "Id", "events": "Events", "onboarding": "Onboarding document",
	"transitions": "Transitions", "color": "Colour", "expiry": "Expiry", "until": "Until", "since": "Since",
	"target": "Target", "actor": "Actor", "action": "Action", "names": "Names", "line": "Names",
	"secret": "Secret", "description": "Description", "position": "Position",
}

// FieldSentence turns a field's validation message ("must be …") into a
// whole sentence that names the field ("Max uses must be …."). A message that
// already starts with a capital is a sentence of its own.
func FieldSentence(field, msg string) string {
	msg = strings.TrimSpace(msg)
	if msg == "" {
		return msg
	}
	if r, _ := utf8.DecodeRuneInString(msg); !(r >= 'a' && r <= 'z') {
		return endSentence(msg)
	}
	if i := strings.LastIndexByte(field, '.'); i >= 0 {
		field = field[i+1:] // invites[2].agentName
	}
	label, ok := fieldLabels[field]
	if !ok {
		label = "This field"
	}
	return endSentence(label + " " + msg)
}

func endSentence(s string) string {
	if strings.HasSuffix(s, ".") || strings.HasSuffix(s, "?") || strings.HasSuffix(s, "!") {
		return s
	}
	return s + "."
}

// ErrorInfo is what an error page says: a heading, one sentence of what
// happened and a link onward.
type ErrorInfo struct {
	Status             int
	Heading, Sentence  string
	LinkText, LinkHref string
}

// ErrorInfoOf words an error for its page; signedIn picks the way on (the
// roster, or the sign-in page for a visitor such as a runtime owner).
func ErrorInfoOf(status int, message string, signedIn bool) ErrorInfo {
	e := ErrorInfo{Status: status, LinkText: "Back to agents", LinkHref: "/agents"}
	if !signedIn {
		e.LinkText, e.LinkHref = "Operator sign-in", "/login"
	}
	said := endSentence(capitalize(strings.TrimSpace(message)))
	switch status {
	case 403:
		e.Heading = "You don't have access to this"
		e.Sentence = "Your account may not see or do this here; an admin of the organization (or of the platform) can change that."
	case 404:
		e.Heading = "Page not found"
		e.Sentence = "There is nothing at this address: check the link, or start again from the agents."
		if !signedIn {
			e.Sentence = "There is nothing at this address: check the link you were sent, or ask for a new one."
		}
	case 410:
		e.Heading = "This link no longer works"
		e.Sentence = said + " Ask whoever sent it for a new link."
	case 429:
		e.Heading = "Too many attempts"
		e.Sentence = "Too many requests came from your address in a short time: wait a minute, then try again."
	case 500, 503:
		e.Heading = "Something went wrong"
		e.Sentence = "The server could not complete this request; the error was logged. Try again in a moment."
	default:
		e.Heading = "Request refused"
		e.Sentence = said
	}
	return e
}

func capitalize(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if r >= 'a' && r <= 'z' {
		return string(r-'a'+'A') + s[n:]
	}
	return s
}

// teamChosen reports whether team t is the selected option: the one chosen,
// else the org's default team.
func teamChosen(chosen string, t models.Team) bool {
	if chosen == "" {
		return t.Name == "default"
	}
	return chosen == t.ID.String()
}

// HumanBytes formats a byte count in binary units: 17179869184 → "16 GiB".
func HumanBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v, i := float64(n), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d %s", int64(v), units[i])
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}

const notReported = "not reported"

func optBytes(n *int64) string {
	if n == nil {
		return notReported
	}
	return HumanBytes(*n)
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func storageText(a models.Agent) string {
	if a.StorageBytes == nil && a.StorageType == nil {
		return notReported
	}
	parts := []string{}
	if a.StorageBytes != nil {
		parts = append(parts, HumanBytes(*a.StorageBytes))
	}
	if a.StorageType != nil && *a.StorageType != "" {
		parts = append(parts, *a.StorageType)
	}
	return strings.Join(parts, " ")
}

func osText(a models.Agent) string {
	if a.OSName == nil && a.OSVersion == nil {
		return notReported
	}
	s := strings.TrimSpace(optVal(a.OSName) + " " + optVal(a.OSVersion))
	if s == "" {
		return notReported
	}
	return s
}

func optVal(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func agentURL(id string, suffix string) string { return "/agents/" + url.PathEscape(id) + suffix }

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// claimCurl is the command that exchanges the claim secret for the API key.
func claimCurl(claimURL, secret string) string {
	if claimURL == "" {
		claimURL = "<claimUrl>"
	}
	if secret == "" {
		// The runtime's own secret from the join command.
		return "curl -s -X POST " + claimURL + " \\\n  -H 'Content-Type: application/json' -d \"{\\\"claimSecret\\\":\\\"$CLIENT_SECRET\\\"}\""
	}
	return "curl -s -X POST " + claimURL + " \\\n  -H 'Content-Type: application/json' -d '{\"claimSecret\":\"" + secret + "\"}'"
}

func itoaV(n int) string { return strconv.Itoa(n) }

func lower(s string) string { return strings.ToLower(s) }

// badgeCount is a nav badge's text: the count, or "99+" from
// models.BadgeCap on (the count stops there).
func badgeCount(n int) string {
	if n >= models.BadgeCap {
		return strconv.Itoa(models.BadgeCap-1) + "+"
	}
	return strconv.Itoa(n)
}
