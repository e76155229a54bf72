package models

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// Notification events an endpoint can subscribe to.
const (
	NotifyJoinRequestCreated = "join_request.created" // a runtime asked to join through an invite
	NotifyAgentPending       = "agent.pending"        // an agent registered and awaits approval
	NotifyAgentStale         = "agent.stale"          // an online agent stopped reporting
	NotifyKeyRevoked         = "key.revoked"          // an API key was revoked
	NotifyTest               = "test"                 // the Send test button; never subscribed to
)

// NotifyEvents are the events endpoints may choose, in display order.
var NotifyEvents = []string{NotifyJoinRequestCreated, NotifyAgentPending, NotifyAgentStale, NotifyKeyRevoked}

// WebhookSecretPrefix starts every webhook signing secret.
const WebhookSecretPrefix = "whsec_"

// WebhookEndpoint is where an org's notifications are POSTed.
type WebhookEndpoint struct {
	bun.BaseModel `bun:"table:webhook_endpoints"`

	ID                  uuid.UUID  `bun:",pk,type:uuid,default:gen_random_uuid()" json:"id"`
	OrgID               uuid.UUID  `bun:"org_id,type:uuid" json:"orgId"`
	URL                 string     `bun:"url" json:"url"`
	Events              []string   `bun:"events,array" json:"events"`
	SecretEnc           []byte     `json:"-"`
	SecretPrefix        string     `json:"secretPrefix"`
	Enabled             bool       `json:"enabled"`
	ConsecutiveFailures int        `json:"consecutiveFailures"`
	DisabledReason      string     `json:"disabledReason,omitempty"`
	DisabledAt          *time.Time `json:"disabledAt,omitempty"`
	CreatedBy           *uuid.UUID `bun:"created_by,type:uuid" json:"createdBy,omitempty"`
	CreatedAt           time.Time  `bun:",nullzero,default:now()" json:"createdAt"`
}

// AutoDisabled reports whether the server turned the endpoint off after failures.
func (w *WebhookEndpoint) AutoDisabled() bool { return !w.Enabled && w.DisabledReason != "" }

// WebhookInput is what an admin gives when adding an endpoint.
type WebhookInput struct {
	URL    string
	Events []string
}

// MaxWebhookURLLen bounds an endpoint URL.
const MaxWebhookURLLen = 2000

// ValidateWebhookURL accepts only absolute http(s) URLs with a host and no
// credentials in them.
func ValidateWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return Invalid("url", "is required")
	case len(raw) > MaxWebhookURLLen:
		return Invalid("url", "is too long")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "":
		return Invalid("url", "must be an http:// or https:// URL")
	case u.User != nil:
		return Invalid("url", "must not carry a user name or password")
	case strings.ContainsAny(raw, " \t\r\n"):
		return Invalid("url", "must not contain spaces")
	}
	return nil
}

func (in *WebhookInput) validate() error {
	in.URL = strings.TrimSpace(in.URL)
	var v Validator
	if err := ValidateWebhookURL(in.URL); err != nil {
		var ve *ValidationError
		errors.As(err, &ve)
		v.Check(false, "url", ve.Fields["url"])
	}
	seen := map[string]bool{}
	events := in.Events[:0:0]
	for _, e := range in.Events {
		v.Check(slices.Contains(NotifyEvents, e), "events", "must be among "+strings.Join(NotifyEvents, ", "))
		if !seen[e] {
			seen[e] = true
			events = append(events, e)
		}
	}
	v.Check(len(events) > 0, "events", "choose at least one event")
	in.Events = events
	return v.Err()
}

// WebhookHost is the scheme and host of an endpoint URL, for audit details
// and lists (the path of a chat webhook often is its secret).
func WebhookHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// MaxWebhooksPerOrg bounds an org's endpoints.
const MaxWebhooksPerOrg = 20

// CreateWebhook adds an endpoint to org and returns it with its signing
// secret, shown once; the secret is stored sealed (it is needed to sign).
// An org with MaxWebhooksPerOrg endpoints already is a 409 too_many_webhooks.
func CreateWebhook(ctx context.Context, db bun.IDB, sealer *Sealer, org uuid.UUID, in WebhookInput, by Actor) (*WebhookEndpoint, string, error) {
	if err := in.validate(); err != nil {
		return nil, "", err
	}
	secret := WebhookSecretPrefix + RandomBase62(32)
	w := &WebhookEndpoint{OrgID: org, URL: in.URL, Events: in.Events, SecretEnc: sealer.Seal(secret),
		SecretPrefix: secret[:len(WebhookSecretPrefix)+4], Enabled: true, CreatedBy: by.UserID()}
	err := InTx(ctx, db, func(tx bun.Tx) error {
		if err := lockOrg(ctx, tx, org); err != nil {
			return err
		}
		n, err := tx.NewSelect().Model((*WebhookEndpoint)(nil)).Where("org_id = ?", org).Count(ctx)
		if err != nil {
			return translate(err, "count webhooks")
		}
		if n >= MaxWebhooksPerOrg {
			return Conflict("too_many_webhooks", fmt.Sprintf("an organization can have at most %d webhooks", MaxWebhooksPerOrg), nil)
		}
		if _, err := tx.NewInsert().Model(w).Returning("*").Exec(ctx); err != nil {
			return translate(err, "create webhook")
		}
		return Audit(ctx, tx, org, by, "webhook.created", "webhook", w.ID.String(),
			map[string]any{"host": WebhookHost(w.URL), "events": w.Events})
	})
	if err != nil {
		return nil, "", err
	}
	return w, secret, nil
}

// ListWebhooks returns an org's endpoints, oldest first.
func ListWebhooks(ctx context.Context, db bun.IDB, org uuid.UUID) ([]WebhookEndpoint, error) {
	ws := []WebhookEndpoint{}
	err := db.NewSelect().Model(&ws).Where("org_id = ?", org).OrderExpr("created_at, id").Scan(ctx)
	return ws, translate(err, "list webhooks")
}

// GetWebhook returns an endpoint of org, or ErrNotFound.
func GetWebhook(ctx context.Context, db bun.IDB, org, id uuid.UUID) (*WebhookEndpoint, error) {
	w := new(WebhookEndpoint)
	err := db.NewSelect().Model(w).Where("org_id = ? AND id = ?", org, id).Scan(ctx)
	return w, translate(err, "get webhook")
}

// SetWebhookEnabled turns an endpoint on or off. Turning it on clears its
// failure count and the reason it was turned off. Asking for the current
// state changes nothing. ErrNotFound when it is not in org.
func SetWebhookEnabled(ctx context.Context, db bun.IDB, org, id uuid.UUID, enabled bool, by Actor) (*WebhookEndpoint, error) {
	w := new(WebhookEndpoint)
	err := InTx(ctx, db, func(tx bun.Tx) error {
		q := tx.NewUpdate().Model(w).Set("enabled = ?", enabled).
			Where("org_id = ? AND id = ? AND enabled = ?", org, id, !enabled).Returning("*")
		if enabled {
			q.Set("consecutive_failures = 0").Set("disabled_reason = ''").Set("disabled_at = NULL")
		} else {
			q.Set("disabled_at = now()").Set("disabled_reason = ''")
		}
		err := q.Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			got, err := GetWebhook(ctx, tx, org, id)
			if err == nil {
				*w = *got
			}
			return err
		}
		if err != nil {
			return translate(err, "set webhook enabled")
		}
		action := "webhook.disabled"
		if enabled {
			action = "webhook.enabled"
		}
		return Audit(ctx, tx, org, by, action, "webhook", id.String(), map[string]any{"host": WebhookHost(w.URL)})
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// DeleteWebhook removes an endpoint with its queue and log. ErrNotFound when
// it is not in org.
func DeleteWebhook(ctx context.Context, db bun.IDB, org, id uuid.UUID, by Actor) error {
	return InTx(ctx, db, func(tx bun.Tx) error {
		var u string
		err := tx.NewDelete().Model((*WebhookEndpoint)(nil)).Where("org_id = ? AND id = ?", org, id).Returning("url").Scan(ctx, &u)
		if err != nil {
			return translate(err, "delete webhook")
		}
		return Audit(ctx, tx, org, by, "webhook.deleted", "webhook", id.String(), map[string]any{"host": WebhookHost(u)})
	})
}

// EnqueueNotification queues event for every enabled endpoint of org that
// subscribes to it. Call it with the transaction that makes the change, so
// the notification is sent exactly when the change commits. payload is the
// event's data (ids, names); a "path" entry (like "/agents/x") becomes the
// link in the message. The worker (handlers.Notifier) sends the queue.
//
// Call sites: agent registration (agent.pending), API key revocation
// (key.revoked), the stale-agent sweep (agent.stale) and join request
// creation (join_request.created, with agentName, joinRequestId and path
// "/agents/join-requests"; queued by the join request's INSERT).
func EnqueueNotification(ctx context.Context, tx bun.IDB, orgID uuid.UUID, event string, payload map[string]any) error {
	q, err := notificationQuery(tx, orgID, event, payload)
	if err != nil {
		return err
	}
	_, err = q.Exec(ctx)
	return translate(err, "enqueue notification")
}

// notificationQuery is the INSERT of EnqueueNotification. Given to the
// statement that makes the change as a WITH query, it queues the
// notifications with that statement (see Audits.Query).
func notificationQuery(db bun.IDB, orgID uuid.UUID, event string, payload map[string]any) (*bun.RawQuery, error) {
	if payload == nil {
		payload = map[string]any{}
	}
	b, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("notification payload: %w", err)
	}
	return db.NewRaw(`INSERT INTO notification_outbox (org_id, endpoint_id, event, payload)
		SELECT org_id, id, ?, ? FROM webhook_endpoints WHERE org_id = ? AND enabled AND ? = ANY(events)`,
		event, string(b), orgID, event), nil
}

// EnqueueTest queues a test notification for one endpoint, whatever its
// events, and audits it. ErrNotFound when the endpoint is not in org; a 409
// test_pending while an earlier test has not gone out yet.
func EnqueueTest(ctx context.Context, db bun.IDB, org, id uuid.UUID, by Actor) error {
	return InTx(ctx, db, func(tx bun.Tx) error {
		w, err := GetWebhook(ctx, tx, org, id)
		if err != nil {
			return err
		}
		pending, err := tx.NewSelect().Table("notification_outbox").
			Where("endpoint_id = ? AND event = ? AND status = 'pending'", id, NotifyTest).Exists(ctx)
		if err != nil {
			return translate(err, "find pending test")
		}
		if pending {
			return Conflict("test_pending", "a test delivery to this webhook is already waiting to be sent", nil)
		}
		b, _ := json.Marshal(map[string]any{"path": "/settings/notifications", "requestedBy": by.Label})
		if _, err := tx.ExecContext(ctx, `INSERT INTO notification_outbox (org_id, endpoint_id, event, payload) VALUES (?, ?, ?, ?)`,
			org, id, NotifyTest, string(b)); err != nil {
			return translate(err, "enqueue test")
		}
		return Audit(ctx, tx, org, by, "webhook.test_sent", "webhook", id.String(), map[string]any{"host": WebhookHost(w.URL)})
	})
}

// Delivery is a claimed outbox row with what sending it needs.
type Delivery struct {
	ID         int64
	OrgID      uuid.UUID
	OrgTitle   string
	EndpointID uuid.UUID
	Event      string
	Payload    map[string]any
	Attempt    int // this attempt's number, from 1
	CreatedAt  time.Time
	URL        string
	SecretEnc  []byte
}

// ClaimDeliveries takes up to n due deliveries of enabled endpoints for this
// worker: rows are picked with FOR UPDATE SKIP LOCKED and leased until lease
// from now, so concurrent workers (other replicas) never take the same row.
// A worker that dies leaves its rows to be taken again when the lease ends.
func ClaimDeliveries(ctx context.Context, db bun.IDB, n int, lease time.Duration) ([]Delivery, error) {
	if n <= 0 {
		return nil, nil
	}
	rows, err := db.QueryContext(ctx, `WITH due AS (
			SELECT o.id FROM notification_outbox AS o JOIN webhook_endpoints AS w ON w.id = o.endpoint_id
			WHERE o.status = 'pending' AND o.next_attempt_at <= now() AND (o.locked_until IS NULL OR o.locked_until < now()) AND w.enabled
			ORDER BY o.next_attempt_at, o.id LIMIT ? FOR UPDATE OF o SKIP LOCKED)
		UPDATE notification_outbox AS o SET locked_until = now() + make_interval(secs => ?), attempts = o.attempts + 1
		FROM due, webhook_endpoints AS w, organizations AS g
		WHERE o.id = due.id AND w.id = o.endpoint_id AND g.id = o.org_id
		RETURNING o.id, o.org_id, g.title, o.endpoint_id, o.event, o.payload, o.attempts, o.created_at, w.url, w.secret_enc`,
		n, lease.Seconds())
	if err != nil {
		return nil, translate(err, "claim deliveries")
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var d Delivery
		var payload []byte
		if err := rows.Scan(&d.ID, &d.OrgID, &d.OrgTitle, &d.EndpointID, &d.Event, &payload, &d.Attempt, &d.CreatedAt, &d.URL, &d.SecretEnc); err != nil {
			return nil, translate(err, "scan delivery")
		}
		if err := json.Unmarshal(payload, &d.Payload); err != nil {
			return nil, fmt.Errorf("delivery %d payload: %w", d.ID, err)
		}
		out = append(out, d)
	}
	return out, translate(rows.Err(), "claim deliveries")
}

// AttemptResult is how one delivery attempt went.
type AttemptResult struct {
	StatusCode int // 0 when no answer came
	Latency    time.Duration
	Error      string
}

// OK reports whether the receiver accepted the delivery (2xx).
func (r AttemptResult) OK() bool { return r.StatusCode >= 200 && r.StatusCode < 300 }

// RetryPolicy says how failed deliveries are retried and when an endpoint is
// turned off.
type RetryPolicy struct {
	MaxAttempts  int           // attempts per delivery before giving up
	Backoff      time.Duration // wait after the first failure; doubles each time
	MaxBackoff   time.Duration
	DisableAfter int // consecutive failed attempts that turn an endpoint off
}

// Delay is the wait before retrying after attempt failed.
func (p RetryPolicy) Delay(attempt int) time.Duration {
	d := p.Backoff
	for i := 1; i < attempt && d < p.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, p.MaxBackoff)
}

// Delivery outcomes, also the values of the deliveries metric.
const (
	OutcomeDelivered = "delivered"
	OutcomeFailed    = "failed"  // will be retried
	OutcomeGaveUp    = "gave_up" // no attempts left
)

// RecordAttempt logs an attempt of d and settles the delivery: delivered,
// retried after the policy's backoff, or given up. A failure counts against
// the endpoint; after p.DisableAfter in a row it is turned off (and that is
// audited). It reports the outcome and whether the endpoint was turned off now.
func RecordAttempt(ctx context.Context, db bun.IDB, d *Delivery, r AttemptResult, p RetryPolicy) (string, bool, error) {
	outcome, disabled := OutcomeDelivered, false
	if len(r.Error) > 300 {
		r.Error = r.Error[:300]
	}
	err := InTx(ctx, db, func(tx bun.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO notification_attempts (outbox_id, endpoint_id, attempt, status_code, latency_ms, error)
			VALUES (?, ?, ?, ?, ?, ?)`, d.ID, d.EndpointID, d.Attempt, r.StatusCode, r.Latency.Milliseconds(), r.Error)
		if err != nil {
			return translate(err, "log attempt")
		}
		if r.OK() {
			if _, err := tx.ExecContext(ctx, `UPDATE notification_outbox SET status = 'delivered', finished_at = now(), locked_until = NULL
				WHERE id = ? AND status = 'pending'`, d.ID); err != nil {
				return translate(err, "settle delivery")
			}
			_, err := tx.ExecContext(ctx, `UPDATE webhook_endpoints SET consecutive_failures = 0 WHERE id = ? AND consecutive_failures <> 0`, d.EndpointID)
			return translate(err, "reset failures")
		}
		if d.Attempt >= p.MaxAttempts {
			outcome = OutcomeGaveUp
			_, err = tx.ExecContext(ctx, `UPDATE notification_outbox SET status = 'failed', finished_at = now(), locked_until = NULL
				WHERE id = ? AND status = 'pending'`, d.ID)
		} else {
			outcome = OutcomeFailed
			_, err = tx.ExecContext(ctx, `UPDATE notification_outbox SET next_attempt_at = now() + make_interval(secs => ?), locked_until = NULL
				WHERE id = ? AND status = 'pending'`, p.Delay(d.Attempt).Seconds(), d.ID)
		}
		if err != nil {
			return translate(err, "settle delivery")
		}
		what := r.Error
		if r.StatusCode != 0 {
			what = fmt.Sprintf("HTTP %d", r.StatusCode)
		}
		reason := fmt.Sprintf("turned off after %d failed deliveries in a row (last: %s)", p.DisableAfter, what)
		var failures int
		err = tx.NewRaw(`UPDATE webhook_endpoints SET consecutive_failures = consecutive_failures + 1,
				enabled = CASE WHEN consecutive_failures + 1 >= ? THEN false ELSE enabled END,
				disabled_at = CASE WHEN enabled AND consecutive_failures + 1 >= ? THEN now() ELSE disabled_at END,
				disabled_reason = CASE WHEN enabled AND consecutive_failures + 1 >= ? THEN ? ELSE disabled_reason END
			WHERE id = ? RETURNING consecutive_failures, (consecutive_failures = ?)`,
			p.DisableAfter, p.DisableAfter, p.DisableAfter, reason, d.EndpointID, p.DisableAfter).Scan(ctx, &failures, &disabled)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // the endpoint was deleted meanwhile
		}
		if err != nil {
			return translate(err, "count failure")
		}
		if disabled {
			return Audit(ctx, tx, d.OrgID, System, "webhook.auto_disabled", "webhook", d.EndpointID.String(),
				map[string]any{"failures": failures, "reason": reason})
		}
		return nil
	})
	return outcome, disabled, err
}

// Attempt is one line of an endpoint's delivery log.
type Attempt struct {
	ID         int64     `json:"id"`
	DeliveryID int64     `json:"deliveryId"`
	Event      string    `json:"event"`
	Attempt    int       `json:"attempt"`
	StatusCode int       `json:"statusCode"`
	LatencyMS  int       `json:"latencyMs"`
	Error      string    `json:"error,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
}

// ListAttempts returns an endpoint's latest delivery attempts, newest first
// (at most 100).
func ListAttempts(ctx context.Context, db bun.IDB, org, endpoint uuid.UUID) ([]Attempt, error) {
	rows, err := db.QueryContext(ctx, `SELECT a.id, a.outbox_id, o.event, a.attempt, a.status_code, a.latency_ms, a.error, a.created_at
		FROM notification_attempts AS a JOIN notification_outbox AS o ON o.id = a.outbox_id
		WHERE a.endpoint_id = ? AND o.org_id = ? ORDER BY a.id DESC LIMIT 100`, endpoint, org)
	if err != nil {
		return nil, translate(err, "list attempts")
	}
	defer rows.Close()
	out := []Attempt{}
	for rows.Next() {
		var a Attempt
		if err := rows.Scan(&a.ID, &a.DeliveryID, &a.Event, &a.Attempt, &a.StatusCode, &a.LatencyMS, &a.Error, &a.CreatedAt); err != nil {
			return nil, translate(err, "scan attempt")
		}
		out = append(out, a)
	}
	return out, translate(rows.Err(), "list attempts")
}

// PruneNotifications deletes settled deliveries (and their attempt logs)
// finished more than keep ago. It returns how many deliveries went.
func PruneNotifications(ctx context.Context, db bun.IDB, keep time.Duration) (int64, error) {
	res, err := db.ExecContext(ctx, `DELETE FROM notification_outbox
		WHERE status <> 'pending' AND finished_at < now() - make_interval(secs => ?)`, keep.Seconds())
	if err != nil {
		return 0, translate(err, "prune notifications")
	}
	return res.RowsAffected()
}

// EnqueueStaleAgents finds online agents not heard from within window and
// queues agent.stale for each, once per silence (an agent that reports again
// and falls silent again is announced again). It returns how many it found.
func EnqueueStaleAgents(ctx context.Context, db bun.IDB, window time.Duration) (int, error) {
	n := 0
	err := InTx(ctx, db, func(tx bun.Tx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE agents SET stale_notified_at = now()
			WHERE is_online AND last_seen_at < now() - make_interval(secs => ?)
			  AND (stale_notified_at IS NULL OR stale_notified_at < last_seen_at)
			RETURNING org_id, id, title, last_seen_at`, window.Seconds())
		if err != nil {
			return translate(err, "find stale agents")
		}
		type stale struct {
			org      uuid.UUID
			id, name string
			seen     time.Time
		}
		var found []stale
		for rows.Next() {
			var s stale
			if err := rows.Scan(&s.org, &s.id, &s.name, &s.seen); err != nil {
				rows.Close()
				return translate(err, "scan stale agent")
			}
			found = append(found, s)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return translate(err, "find stale agents")
		}
		for _, s := range found {
			payload := map[string]any{"agentId": s.id, "title": s.name, "lastSeenAt": s.seen.UTC().Format(time.RFC3339), "path": "/agents/" + s.id}
			if err := EnqueueNotification(ctx, tx, s.org, NotifyAgentStale, payload); err != nil {
				return err
			}
			if err := Audit(ctx, tx, s.org, System, "agent.stale", "agent", s.id, map[string]any{"lastSeenAt": payload["lastSeenAt"]}); err != nil {
				return err
			}
		}
		n = len(found)
		return nil
	})
	return n, err
}
