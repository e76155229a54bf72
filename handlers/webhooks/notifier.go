// Package webhooks sends an organization's notifications to its webhook
// endpoints: a worker that claims queued deliveries from PostgreSQL, signs and
// POSTs them with retries, and never connects inside the server's network
// unless the operator allows a range.
package webhooks

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/uptrace/bun"

	"github.com/agentroster/agentroster/models"
)

// notificationLogKeep is how long settled deliveries and their attempt log are kept.
const notificationLogKeep = 30 * 24 * time.Hour

// Deps are what the worker needs from the server.
type Deps struct {
	DB             bun.IDB
	Log            *slog.Logger
	Sealer         *models.Sealer // opens the endpoints' signing secrets
	PublicURL      string         // links in the messages
	PresenceWindow time.Duration  // silence after which an online agent is stale
	Policy         Policy         // where deliveries may connect
	// Delivered counts each attempt's outcome (delivered, failed, gave_up).
	Delivered func(outcome string)
}

// Options tune the webhook worker; zero values take the defaults.
type Options struct {
	Timeout      time.Duration // per request (default 5 s)
	Poll         time.Duration // how often the queue is checked (default 2 s)
	Concurrency  int           // deliveries in flight at once (default 8)
	Backoff      time.Duration // wait after the first failure, doubling (default 10 s, at most 1 h)
	MaxAttempts  int           // per delivery (default 8)
	DisableAfter int           // consecutive failures that turn an endpoint off (default 10)
	StaleEvery   time.Duration // how often silent agents are looked for (default 1 min)
	// LookupIP resolves endpoint host names (default: the system resolver).
	// Every address it gives is checked against the destination policy.
	LookupIP func(ctx context.Context, host string) ([]netip.Addr, error)
}

// Notifier sends queued webhook deliveries: signed JSON POSTs with retries and
// exponential backoff. Any number of notifiers (one per replica) may run on
// one database; models.ClaimDeliveries makes sure each delivery goes out once.
type Notifier struct {
	deps   Deps
	opts   Options
	policy models.RetryPolicy
	client *http.Client
	slots  chan struct{}
	wg     sync.WaitGroup
}

// New returns a worker sending the notifications queued in d.DB. Start it
// with Run.
func New(d Deps, o Options) *Notifier {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.Backoff <= 0 {
		o.Backoff = 10 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.DisableAfter <= 0 {
		o.DisableAfter = 10
	}
	if o.StaleEvery <= 0 {
		o.StaleEvery = time.Minute
	}
	if o.LookupIP == nil {
		o.LookupIP = systemLookup
	}
	// No proxy: the destination check must see the address actually dialled.
	transport := &http.Transport{
		DialContext:           d.Policy.dialContext(&net.Dialer{Timeout: o.Timeout}, o.LookupIP),
		TLSHandshakeTimeout:   o.Timeout,
		ResponseHeaderTimeout: o.Timeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       30 * time.Second,
	}
	if d.Delivered == nil {
		d.Delivered = func(string) {}
	}
	return &Notifier{
		deps: d, opts: o,
		policy: models.RetryPolicy{MaxAttempts: o.MaxAttempts, Backoff: o.Backoff, MaxBackoff: time.Hour, DisableAfter: o.DisableAfter},
		client: &http.Client{
			Transport: transport,
			Timeout:   o.Timeout,
			// No redirects: a 3xx is an answer (and a failed delivery), never a hop elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		slots: make(chan struct{}, o.Concurrency),
	}
}

// Run sends deliveries until ctx ends, then waits for those in flight (each is
// bounded by the request timeout). Each delivery is sent on its own, so a
// receiver that never answers holds one slot, not the queue.
func (n *Notifier) Run(ctx context.Context) {
	defer n.wg.Wait()
	lastStale := time.Time{}
	for ctx.Err() == nil {
		if time.Since(lastStale) >= n.opts.StaleEvery {
			lastStale = time.Now()
			if _, err := models.EnqueueStaleAgents(ctx, n.deps.DB, n.deps.PresenceWindow); err != nil && ctx.Err() == nil {
				n.deps.Log.Warn("notifications: stale agents", "err", err)
			}
			if _, err := models.PruneNotifications(ctx, n.deps.DB, notificationLogKeep); err != nil && ctx.Err() == nil {
				n.deps.Log.Warn("notifications: prune", "err", err)
			}
		}
		claimed, free := n.dispatch(ctx)
		if claimed > 0 && claimed == free {
			continue // more may be due
		}
		select {
		case <-ctx.Done():
		case <-time.After(n.opts.Poll):
		}
	}
}

// dispatch claims as many due deliveries as there are free slots and starts
// sending them.
func (n *Notifier) dispatch(ctx context.Context) (claimed, free int) {
	free = cap(n.slots) - len(n.slots)
	if free == 0 {
		return 0, 0
	}
	ds, err := models.ClaimDeliveries(ctx, n.deps.DB, free, n.lease())
	if err != nil {
		if ctx.Err() == nil {
			n.deps.Log.Warn("notifications: claim", "err", err)
		}
		return 0, free
	}
	for i := range ds {
		n.slots <- struct{}{}
		n.wg.Add(1)
		go func(d *models.Delivery) {
			defer func() { <-n.slots; n.wg.Done() }()
			n.deliver(context.WithoutCancel(ctx), d)
		}(&ds[i])
	}
	return len(ds), free
}

// RunOnce claims the deliveries due now (up to the concurrency), sends them
// and waits for the results. It returns how many it sent.
func (n *Notifier) RunOnce(ctx context.Context) (int, error) {
	ds, err := models.ClaimDeliveries(ctx, n.deps.DB, n.opts.Concurrency, n.lease())
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	for i := range ds {
		wg.Add(1)
		go func() { defer wg.Done(); n.deliver(ctx, &ds[i]) }()
	}
	wg.Wait()
	return len(ds), nil
}

// lease is how long a claimed delivery stays this worker's: well past the
// request timeout, so it is never sent twice while in flight.
func (n *Notifier) lease() time.Duration { return 2*n.opts.Timeout + 30*time.Second }

// notificationBody is the JSON POSTed to an endpoint.
type notificationBody struct {
	ID        string         `json:"id"`
	Event     string         `json:"event"`
	CreatedAt time.Time      `json:"createdAt"`
	Org       notifyOrg      `json:"org"`
	Text      string         `json:"text"`
	URL       string         `json:"url"`
	Data      map[string]any `json:"data"`
}

type notifyOrg struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

// notificationText is the readable line chat webhooks show.
func notificationText(d *models.Delivery, link string) string {
	s := func(k string) string { v, _ := d.Payload[k].(string); return v }
	switch d.Event {
	case models.NotifyJoinRequestCreated:
		return fmt.Sprintf("Join request from agent “%s” is waiting for approval in %s: %s", s("agentName"), d.OrgTitle, link)
	case models.NotifyAgentPending:
		return fmt.Sprintf("Agent “%s” registered and is waiting for approval in %s: %s", s("agentId"), d.OrgTitle, link)
	case models.NotifyAgentStale:
		return fmt.Sprintf("Agent “%s” in %s stopped reporting (last seen %s): %s", s("agentId"), d.OrgTitle, s("lastSeenAt"), link)
	case models.NotifyKeyRevoked:
		return fmt.Sprintf("API key %s… (“%s”) was revoked in %s: %s", s("prefix"), s("name"), d.OrgTitle, link)
	case models.NotifyTest:
		return fmt.Sprintf("Test notification from Agent Roster for %s: %s", d.OrgTitle, link)
	}
	return fmt.Sprintf("%s in %s: %s", d.Event, d.OrgTitle, link)
}

// Signature returns the X-Signature-256 value for body: "sha256=" and the hex
// HMAC-SHA256 of the body under the endpoint's secret.
func Signature(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// deliver sends one delivery and records how it went.
func (n *Notifier) deliver(ctx context.Context, d *models.Delivery) {
	res := n.send(ctx, d)
	outcome, disabled, err := models.RecordAttempt(ctx, n.deps.DB, d, res, n.policy)
	if err != nil {
		n.deps.Log.Error("notifications: record attempt", "delivery", d.ID, "err", err)
		return
	}
	n.deps.Delivered(outcome)
	if disabled {
		n.deps.Log.Warn("notifications: endpoint turned off after repeated failures", "endpoint", d.EndpointID, "org", d.OrgID)
	}
}

func (n *Notifier) send(ctx context.Context, d *models.Delivery) models.AttemptResult {
	secret, err := n.deps.Sealer.Open(d.SecretEnc)
	if err != nil {
		return models.AttemptResult{Error: "cannot unseal the signing secret (SECRET_KEY changed?)"}
	}
	path, _ := d.Payload["path"].(string)
	link := n.deps.PublicURL + path
	body, err := json.Marshal(notificationBody{
		ID: strconv.FormatInt(d.ID, 10), Event: d.Event, CreatedAt: d.CreatedAt.UTC(),
		Org:  notifyOrg{ID: d.OrgID.String(), Title: d.OrgTitle},
		Text: notificationText(d, link), URL: link, Data: d.Payload,
	})
	if err != nil {
		return models.AttemptResult{Error: "encode body"}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(body))
	if err != nil {
		return models.AttemptResult{Error: "invalid URL"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "agentroster-webhook/1")
	req.Header.Set("X-Agentroster-Event", d.Event)
	req.Header.Set("X-Agentroster-Delivery", strconv.FormatInt(d.ID, 10))
	req.Header.Set("X-Signature-256", Signature(secret, body))
	start := time.Now()
	resp, err := n.client.Do(req)
	took := time.Since(start)
	if errors.Is(err, errBlockedDestination) {
		// Nothing left the server: no latency, no connection result.
		return models.AttemptResult{Error: errBlockedDestination.Error()}
	}
	if err != nil {
		return models.AttemptResult{Latency: took, Error: sendError(err)}
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	r := models.AttemptResult{StatusCode: resp.StatusCode, Latency: took}
	if !r.OK() {
		r.Error = resp.Status
	}
	return r
}

// sendError describes a transport failure without the URL (which may hold a
// chat webhook's secret path).
func sendError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return "timed out"
		}
		err = ue.Err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timed out"
	}
	return err.Error()
}
