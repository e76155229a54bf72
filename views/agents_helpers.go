package views

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/google/uuid"

	"github.com/agentroster/agentroster/models"
)

// RosterRow is one agent as the roster shows it.
type RosterRow struct {
	Agent    models.Agent
	TeamName string
	Online   bool // effective presence: flag set and heard from within the window
}

// RosterFilter is the roster's query.
type RosterFilter struct {
	Status   string
	Presence string
	Team     string
	Q        string
}

// Query encodes the filter for links (page cursor excluded).
func (f RosterFilter) Query() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"status": f.Status, "presence": f.Presence, "team": f.Team, "q": f.Q} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// Active reports whether any filter is set.
func (f RosterFilter) Active() bool { return len(f.Query()) > 0 }

// RosterData is the roster screen.
type RosterData struct {
	Rows     []RosterRow
	Teams    []models.Team
	Filter   RosterFilter
	NextURL  string // empty on the last page
	FirstURL string // set when not on the first page
	SelfURL  string // this view, refetched when the list changes
	CanWrite bool
}

// AgentDetailData is the detail panel of one agent.
type AgentDetailData struct {
	Agent    models.Agent
	TeamName string
	Online   bool
	Keys     []KeyRow
	Perms    PermissionsData
	Audit    []models.AuditEvent
	CanWrite bool
}

// PermissionsData is the permissions editor of an agent.
type PermissionsData struct {
	AgentID     string
	Columns     []models.BoardColumn
	Grants      models.Grants
	Resolved    models.Permissions
	Transitions string // the textarea's text
	Errors      map[string]string
	Saved       bool
	CanWrite    bool
}

func (p PermissionsData) granted(col string) (read, moderate bool) {
	for _, g := range p.Grants.Columns {
		if g.ColumnID == col {
			return g.CanRead, g.CanModerate
		}
	}
	return false, false
}

func (p PermissionsData) effective(col string) models.ColumnAccess {
	for _, a := range p.Resolved.ColumnAccess {
		if a.ColumnID == col {
			return a
		}
	}
	return models.ColumnAccess{}
}

// TransitionsText renders grants one per line, as the editor shows them.
func TransitionsText(ts []models.TransitionGrant) string {
	lines := make([]string, len(ts))
	for i, t := range ts {
		lines[i] = t.String()
	}
	return strings.Join(lines, "\n")
}

// KeyRow is one API key in a list.
type KeyRow struct {
	Key      models.APIKey
	TeamName string
	State    string
}

// APIKeysData is the API keys screen.
type APIKeysData struct {
	Rows     []KeyRow
	Teams    []models.Team
	Form     KeyForm
	NewKey   *NewKey
	CanWrite bool
}

// KeyForm is the create-key form's state.
type KeyForm struct {
	Name   string
	TeamID string
	Expiry string // days, or "never"
	Errors map[string]string
}

// NewKey is a key just created: its plaintext is shown this once.
type NewKey struct {
	Raw    string
	Name   string
	Prefix string
}

// ExpiryPresets are the choices of the create-key form (days; "never").
var ExpiryPresets = []struct{ Value, Label string }{
	{"30", "30 days"}, {"90", "90 days"}, {"180", "180 days"}, {"365", "365 days"}, {"never", "Never"},
}

// ColumnsData is the board columns screen.
type ColumnsData struct {
	Columns  []models.BoardColumn
	Form     ColumnForm
	CanWrite bool
}

// ColumnForm is the create-column form's state.
type ColumnForm struct {
	ID       string
	Name     string
	Read     bool
	Moderate bool
	Errors   map[string]string
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

func keyURL(id uuid.UUID, suffix string) string { return "/settings/api-keys/" + id.String() + suffix }

func columnURL(id string, suffix string) string {
	return "/settings/columns/" + url.PathEscape(id) + suffix
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// auditDetails renders an event's details compactly, keys sorted.
func auditDetails(d map[string]any) string {
	if len(d) == 0 {
		return ""
	}
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		b, _ := json.Marshal(d[k])
		parts = append(parts, k+"="+string(b))
	}
	return strings.Join(parts, " ")
}

func teamSelected(f RosterFilter, id uuid.UUID) bool { return f.Team == id.String() }
