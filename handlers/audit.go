package handlers

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/views"
)

// auditTimeLayouts are accepted for since/until: RFC 3339, the browser's
// datetime-local value (read as UTC) and a plain date.
var auditTimeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"}

func parseAuditTime(s string) (*time.Time, bool) {
	if s == "" {
		return nil, true
	}
	for _, l := range auditTimeLayouts {
		if t, err := time.ParseInLocation(l, s, time.UTC); err == nil {
			return &t, true
		}
	}
	return nil, false
}

// auditFilter reads the filters shared by the page, the CSV export and the
// JSON listing, and scopes them: the caller's current org, or every org for a
// platform admin asking for scope=all.
func (h *Handler) auditFilter(c *gin.Context) (models.AuditFilter, views.AuditFilterForm, error) {
	form := views.AuditFilterForm{
		Action: strings.TrimSpace(c.Query("action")), Actor: strings.TrimSpace(c.Query("actor")),
		TargetType: strings.TrimSpace(c.Query("targetType")), Target: strings.TrimSpace(c.Query("target")),
		Since: c.Query("since"), Until: c.Query("until"), All: c.Query("scope") == "all",
	}
	f := models.AuditFilter{Action: form.Action, Actor: form.Actor, TargetType: form.TargetType, TargetID: form.Target}
	var v models.Validator
	var ok bool
	f.Since, ok = parseAuditTime(form.Since)
	v.Check(ok, "since", "must be a time like 2026-01-31T12:00:00Z")
	f.Until, ok = parseAuditTime(form.Until)
	v.Check(ok, "until", "must be a time like 2026-01-31T12:00:00Z")
	if b := c.Query("before"); b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		v.Check(err == nil && n > 0, "before", "must be an event id")
		f.Before = n
	}
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		v.Check(err == nil && n >= 1 && n <= 500, "limit", "must be 1 to 500")
		f.Limit = n
	}
	if err := v.Err(); err != nil {
		return f, form, err
	}
	if err := f.Validate(); err != nil {
		return f, form, err
	}
	if form.All {
		if !currentPrincipal(c).User.IsSA {
			return f, form, errNotPlatformAdmin
		}
		f.AllOrgs = true
		return f, form, nil
	}
	s := scopeOf(c)
	f.Org = s.OrgID
	return f, form, nil
}

// auditQuery is the filter as a query string, without the page cursor.
func auditQuery(c *gin.Context) url.Values {
	q := url.Values{}
	for _, k := range []string{"action", "actor", "targetType", "target", "since", "until", "scope", "orgId"} {
		if v := c.Query(k); v != "" {
			q.Set(k, v)
		}
	}
	return q
}

// auditPage serves GET /audit.
func (h *Handler) auditPage(c *gin.Context) {
	_, n := h.page(c, "Audit", "audit")
	f, form, err := h.auditFilter(c)
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		form.Errors = ve.Fields
	} else if err != nil {
		h.fail(c, err)
		return
	}
	d := views.AuditData{Filter: form, CanAll: currentPrincipal(c).User.IsSA}
	q := auditQuery(c)
	d.ExportURL = "/audit/export?" + q.Encode()
	if ve == nil {
		f.Limit = 50
		if d.Events, err = models.ListAudit(c.Request.Context(), h.db, f); err != nil {
			h.fail(c, err)
			return
		}
		if len(d.Events) == f.Limit {
			next := url.Values{}
			for k, v := range q {
				next[k] = v
			}
			next.Set("before", strconv.FormatInt(d.Events[len(d.Events)-1].ID, 10))
			d.NextURL = "/audit?" + next.Encode()
		}
		if f.Before > 0 {
			d.FirstURL = "/audit?" + q.Encode()
		}
		if d.TargetNames, err = models.AuditTargetNames(c.Request.Context(), h.db, d.Events); err != nil {
			h.fail(c, err)
			return
		}
		d.OrgTitles = map[string]string{}
		for _, o := range n.Orgs {
			d.OrgTitles[o.ID.String()] = o.Title
		}
	}
	status := http.StatusOK
	if ve != nil {
		status = http.StatusBadRequest
	}
	h.renderStatus(c, status, views.AuditPage(n, d))
}

// auditAPI serves GET /api/v1/audit with the page's filters, newest first;
// the next page is in the Link header (before=<last id>).
func (h *Handler) auditAPI(c *gin.Context) {
	f, _, err := h.auditFilter(c)
	if err != nil {
		h.fail(c, err)
		return
	}
	evs, err := models.ListAudit(c.Request.Context(), h.db, f)
	if err != nil {
		h.fail(c, err)
		return
	}
	limit := f.Limit
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	if len(evs) == limit {
		q := c.Request.URL.Query()
		q.Set("before", strconv.FormatInt(evs[len(evs)-1].ID, 10))
		u := url.URL{Path: c.Request.URL.Path, RawQuery: q.Encode()}
		c.Header("Link", "<"+u.String()+`>; rel="next"`)
	}
	if evs == nil {
		evs = []models.AuditEvent{}
	}
	c.JSON(http.StatusOK, jsonList(evs, toAuditEventJSON))
}

// auditCSVHeader names the export's columns.
var auditCSVHeader = []string{"id", "created_at", "org_id", "actor_type", "actor_id", "actor_label", "action", "target_type", "target_id", "ip", "request_id", "details"}

// csvCell keeps a spreadsheet from reading a cell as a formula.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// maxExports is how many audit exports run at once, one per organization
// at most. Each holds a database connection while its client reads, so slow
// readers cannot take the pool from everyone else, nor one organization the
// exports of the others.
const maxExports = 4

// exportStall is how long an export waits on a client that reads nothing:
// the write deadline moves on by this much with every thousand rows.
const exportStall = 30 * time.Second

var errExportsBusy = newErr(http.StatusTooManyRequests, "exports_busy", "other audit exports are running; try again shortly")

// exportSlots counts the audit exports running, per organization (uuid.Nil:
// every organization's, a platform admin's scope=all).
type exportSlots struct {
	mu      sync.Mutex
	running map[uuid.UUID]bool
}

// take reserves org's slot, or reports false when org already has one or
// maxExports are running.
func (s *exportSlots) take(org uuid.UUID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running == nil {
		s.running = map[uuid.UUID]bool{}
	}
	if s.running[org] || len(s.running) >= maxExports {
		return false
	}
	s.running[org] = true
	return true
}

func (s *exportSlots) release(org uuid.UUID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.running, org)
}

// auditExport serves GET /audit/export (and /api/v1/audit/export): the
// filtered events as CSV, streamed row by row from the database, so memory
// stays flat however many rows match. An export that fails once rows went out
// aborts the connection, so the client sees a failed download rather than a
// file that ends early but looks whole.
func (h *Handler) auditExport(c *gin.Context) {
	f, _, err := h.auditFilter(c)
	if err != nil {
		h.fail(c, err)
		return
	}
	slot := f.Org
	if f.AllOrgs {
		slot = uuid.Nil
	}
	if !h.exports.take(slot) {
		c.Header("Retry-After", "5")
		h.fail(c, errExportsBusy)
		return
	}
	defer h.exports.release(slot)
	details := map[string]any{}
	for k, v := range auditQuery(c) {
		details[k] = v[0]
	}
	if err := models.Audit(c.Request.Context(), h.db, f.Org, h.actor(c), "audit.exported", "audit", "", details); err != nil {
		h.fail(c, err)
		return
	}
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Content-Disposition", `attachment; filename="audit-`+time.Now().UTC().Format("20060102-150405")+`.csv"`)
	c.Status(http.StatusOK)
	// Exports can take a while: instead of the server's write timeout, a
	// client gets exportStall to take each thousand rows.
	rc := http.NewResponseController(c.Writer)
	rc.SetWriteDeadline(time.Now().Add(exportStall))
	w := csv.NewWriter(c.Writer)
	w.Write(auditCSVHeader)
	rec := make([]string, len(auditCSVHeader))
	n := 0
	err = models.StreamAudit(c.Request.Context(), h.db, f, func(ev *models.AuditEvent) error {
		org := ""
		if ev.OrgID != nil {
			org = ev.OrgID.String()
		}
		details, _ := json.Marshal(ev.Details)
		rec[0], rec[1], rec[2] = strconv.FormatInt(ev.ID, 10), ev.CreatedAt.UTC().Format(time.RFC3339Nano), org
		rec[3], rec[4], rec[5] = ev.ActorType, ev.ActorID, ev.ActorLabel
		rec[6], rec[7], rec[8] = ev.Action, ev.TargetType, ev.TargetID
		rec[9], rec[10], rec[11] = ev.IP, ev.RequestID, string(details)
		// Every cell, whatever its column holds today; quoting is
		// encoding/csv's.
		for i := range rec {
			rec[i] = csvCell(rec[i])
		}
		if err := w.Write(rec); err != nil {
			return err
		}
		if n++; n%1000 == 0 {
			w.Flush()
			rc.SetWriteDeadline(time.Now().Add(exportStall))
			return w.Error()
		}
		return nil
	})
	if err != nil && !c.Writer.Written() {
		// Nothing has gone out yet (the first rows wait in w): an error answer.
		c.Writer.Header().Del("Content-Disposition")
		h.fail(c, err)
		return
	}
	w.Flush()
	if err := errors.Join(err, w.Error()); err != nil {
		// The status is sent: only a broken connection tells the client.
		logger(c).Error("audit export stopped", "err", err, "rows", n)
		panic(http.ErrAbortHandler)
	}
}
