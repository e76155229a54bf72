package handlers

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/agentroster/agentroster/handlers/webhooks"
	"github.com/agentroster/agentroster/models"
)

func TestWebhookSignedRetriedThenDelivered(t *testing.T) {
	e := newEnv(t)
	tok := e.token("root@example.com")
	recv := newReceiver(t, func(n int) int {
		if n <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusNoContent
	})
	id, secret := e.webhook(tok, recv.srv.URL+"/hook", models.NotifyAgentPending)
	_, key := e.teamKey(e.org.ID)

	e.register(key, "builder-1").want(http.StatusOK)
	// The outbox row is written with the change, and only then: a refused
	// registration queues nothing.
	if e.pendingDeliveries() != 1 {
		t.Fatalf("%d deliveries queued by a registration", e.pendingDeliveries())
	}
	e.register(key, "builder-1").wantError(http.StatusConflict, "agent_exists")
	if e.pendingDeliveries() != 1 {
		t.Fatal("a refused registration queued a notification")
	}

	n := webhooks.New(e.h.WebhookDeps(), webhooks.Options{Backoff: time.Millisecond})
	e.drain(n)
	got := recv.requests()
	if len(got) != 3 {
		t.Fatalf("receiver got %d requests, want 500, 500, then success", len(got))
	}
	for i, r := range got {
		mac := webhooks.Signature(secret, r.Body)
		if !hmac.Equal([]byte(r.Header.Get("X-Signature-256")), []byte(mac)) {
			t.Fatalf("request %d: signature %q does not verify", i+1, r.Header.Get("X-Signature-256"))
		}
		if string(r.Body) != string(got[0].Body) || r.Header.Get("X-Agentroster-Delivery") != got[0].Header.Get("X-Agentroster-Delivery") {
			t.Fatal("retries differ from the first attempt")
		}
	}
	if webhooks.Signature("wrong secret", got[0].Body) == got[0].Header.Get("X-Signature-256") {
		t.Fatal("signature does not depend on the secret")
	}
	var body struct {
		Event string         `json:"event"`
		Text  string         `json:"text"`
		URL   string         `json:"url"`
		Data  map[string]any `json:"data"`
		Org   struct{ Title string }
	}
	json.Unmarshal(got[2].Body, &body)
	link := e.srv.URL + "/agents/builder-1"
	if body.Event != models.NotifyAgentPending || body.URL != link || !strings.Contains(body.Text, "builder-1") ||
		!strings.Contains(body.Text, link) || body.Data["agentId"] != "builder-1" || body.Org.Title == "" {
		t.Fatalf("delivery body: %s", got[2].Body)
	}
	if got[0].Header.Get("Content-Type") != "application/json" || got[0].Header.Get("X-Agentroster-Event") != models.NotifyAgentPending {
		t.Fatalf("delivery headers: %v", got[0].Header)
	}

	// The endpoint's log: newest first, status code and latency.
	var log []models.Attempt
	e.call(http.MethodGet, "/api/v1/organizations/"+e.org.ID.String()+"/webhooks/"+id.String()+"/deliveries", tok, nil).want(http.StatusOK).decode(&log)
	if len(log) != 3 || log[0].StatusCode != 204 || log[1].StatusCode != 500 || log[2].StatusCode != 500 || log[0].Attempt != 3 || log[0].LatencyMS < 0 {
		t.Fatalf("delivery log: %+v", log)
	}
	c := e.signIn("root@example.com")
	if status, page := e.get(c, "/settings/notifications/"+id.String()); status != http.StatusOK || parseHTML(t, page).count(`[data-testid="attempt-row"]`) != 3 {
		t.Fatalf("delivery log page: %d", status)
	}
	s := e.scrape("")
	if metricValue(s, "agentroster_notification_deliveries_total", map[string]string{"outcome": "failed"}) != 2 ||
		metricValue(s, "agentroster_notification_deliveries_total", map[string]string{"outcome": "delivered"}) != 1 {
		t.Fatal("delivery metrics did not move")
	}
	// Settled deliveries and their log are pruned after the retention time.
	if n, err := models.PruneNotifications(t.Context(), e.db, 0); err != nil || n != 1 {
		t.Fatalf("prune: %d, %v", n, err)
	}
	if as, _ := models.ListAttempts(t.Context(), e.db, e.org.ID, id); len(as) != 0 {
		t.Fatal("attempt log outlived its delivery")
	}
}

func TestWebhookTwoWorkersSendEachOnce(t *testing.T) {
	e := newEnv(t)
	tok := e.token("root@example.com")
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Header.Get("X-Agentroster-Delivery")]++
		mu.Unlock()
		time.Sleep(2 * time.Millisecond)
	}))
	defer srv.Close()
	e.webhook(tok, srv.URL, models.NotifyKeyRevoked)
	const total = 60
	err := models.InTx(t.Context(), e.db, func(tx bun.Tx) error {
		for i := range total {
			if err := models.EnqueueNotification(t.Context(), tx, e.org.ID, models.NotifyKeyRevoked, map[string]any{"n": i}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	workers := []*webhooks.Notifier{webhooks.New(e.h.WebhookDeps(), webhooks.Options{Concurrency: 4}), webhooks.New(e.h.WebhookDeps(), webhooks.Options{Concurrency: 4})}
	var wg sync.WaitGroup
	var sent atomic.Int64
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				n, err := w.RunOnce(t.Context())
				if err != nil {
					t.Error(err)
					return
				}
				sent.Add(int64(n))
				if n == 0 && e.pendingDeliveries() == 0 {
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(seen) != total || sent.Load() != total {
		t.Fatalf("%d distinct deliveries received, %d sent, want %d", len(seen), sent.Load(), total)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("delivery %s received %d times", id, n)
		}
	}
}

func TestWebhookHangingReceiverDoesNotStallOthers(t *testing.T) {
	e := newEnv(t)
	tok := e.token("root@example.com")
	release := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hanging.Close()
	defer close(release)
	fine := make(chan string, 4)
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fine <- r.Header.Get("X-Agentroster-Event")
	}))
	defer ok.Close()
	e.webhook(tok, hanging.URL, models.NotifyAgentPending) // first in the queue
	e.webhook(tok, ok.URL, models.NotifyAgentPending)
	_, key := e.teamKey(e.org.ID)
	e.register(key, "builder-2").want(http.StatusOK)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		webhooks.New(e.h.WebhookDeps(), webhooks.Options{Timeout: time.Minute, Poll: 10 * time.Millisecond}).Run(ctx)
	}()
	select {
	case ev := <-fine:
		if ev != models.NotifyAgentPending {
			t.Fatalf("event %q", ev)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the second endpoint got nothing while the first hangs")
	}
	// The fine endpoint's attempt is logged while the other is still in flight.
	var logged []int
	for range 1000 {
		logged = nil
		e.db.NewRaw("SELECT status_code FROM notification_attempts").Scan(t.Context(), &logged)
		if len(logged) > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(logged) != 1 || logged[0] != http.StatusOK {
		t.Fatalf("attempts logged while one receiver hangs: %v", logged)
	}
	release <- struct{}{}
	cancel()
	<-done
}

func TestWebhookTimeoutNoRedirectAutoDisable(t *testing.T) {
	e := newEnv(t)
	tok := e.token("root@example.com")
	var followed atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { followed.Add(1) }))
	defer target.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(time.Second):
		}
	}))
	defer slow.Close()
	rid, _ := e.webhook(tok, redirect.URL, models.NotifyAgentStale)
	sid, _ := e.webhook(tok, slow.URL, models.NotifyAgentStale)

	n := webhooks.New(e.h.WebhookDeps(), webhooks.Options{Timeout: 100 * time.Millisecond, Backoff: time.Millisecond, DisableAfter: 3, MaxAttempts: 10})
	c := e.signIn("root@example.com")
	e.post(c, "/settings/notifications/"+rid.String()+"/test", nil)
	e.post(c, "/settings/notifications/"+sid.String()+"/test", nil)
	for range 100 {
		n.RunOnce(t.Context())
		if e.pendingDeliveries() == 0 {
			break
		}
		w1, _ := models.GetWebhook(t.Context(), e.db, e.org.ID, rid)
		w2, _ := models.GetWebhook(t.Context(), e.db, e.org.ID, sid)
		if !w1.Enabled && !w2.Enabled {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if followed.Load() != 0 {
		t.Fatal("a redirect was followed")
	}
	rlog, _ := models.ListAttempts(t.Context(), e.db, e.org.ID, rid)
	slog, _ := models.ListAttempts(t.Context(), e.db, e.org.ID, sid)
	if len(rlog) != 3 || rlog[0].StatusCode != http.StatusTemporaryRedirect || len(slog) != 3 || slog[0].StatusCode != 0 || slog[0].Error != "timed out" {
		t.Fatalf("attempts: redirect %+v, slow %+v", rlog, slog)
	}
	// Three failures in a row turned both off, with a banner and an audit event.
	w, _ := models.GetWebhook(t.Context(), e.db, e.org.ID, rid)
	if w.Enabled || !strings.Contains(w.DisabledReason, "3 failed deliveries in a row") {
		t.Fatalf("endpoint after 3 failures: %+v", w)
	}
	if e.auditCount("webhook.auto_disabled") != 2 {
		t.Fatal("turning off not audited")
	}
	status, page := e.get(c, "/settings/notifications")
	if doc := parseHTML(t, page); status != http.StatusOK || doc.count(`[data-testid="webhook-disabled-banner"]`) != 2 || !strings.Contains(doc.text(`[data-testid="webhook-disabled-banner"]`), "HTTP 307") {
		t.Fatalf("notifications page after auto-disable: %d", status)
	}
	// Turned off: nothing more is sent; enabling again clears the count and resumes.
	if sent, _ := n.RunOnce(t.Context()); sent != 0 {
		t.Fatal("a disabled endpoint was sent to")
	}
	if status, _, _ := e.post(c, "/settings/notifications/"+rid.String()+"/enable", nil); status != http.StatusSeeOther {
		t.Fatalf("enable: %d", status)
	}
	w, _ = models.GetWebhook(t.Context(), e.db, e.org.ID, rid)
	if !w.Enabled || w.ConsecutiveFailures != 0 || w.DisabledReason != "" {
		t.Fatalf("endpoint after enable: %+v", w)
	}
}

func TestWebhookInputAndPages(t *testing.T) {
	e := newEnv(t)
	tok := e.token("root@example.com")
	base := "/api/v1/organizations/" + e.org.ID.String() + "/webhooks"
	for _, u := range []string{"ftp://example.com/x", "javascript:alert(1)", "http://", "not a url", "http://user:pw@example.com/", "//example.com/x", ""} {
		d := e.call(http.MethodPost, base, tok, map[string]any{"url": u, "events": []string{models.NotifyAgentPending}}).wantError(http.StatusBadRequest, "invalid_input").errorDetails()
		if _, ok := d["fields"].(map[string]any)["url"]; !ok {
			t.Errorf("url %q: details %v", u, d)
		}
	}
	for _, ev := range [][]string{{}, {"agent.exploded"}} {
		e.call(http.MethodPost, base, tok, map[string]any{"url": "https://example.com/h", "events": ev}).wantError(http.StatusBadRequest, "invalid_input")
	}
	if ws, _ := models.ListWebhooks(t.Context(), e.db, e.org.ID); len(ws) != 0 {
		t.Fatal("refused input created an endpoint")
	}
	id, _ := e.webhook(tok, "https://chat.example.com/hooks/SECRETPATH", models.NotifyKeyRevoked, models.NotifyKeyRevoked)
	var list []map[string]any
	e.call(http.MethodGet, base, tok, nil).want(http.StatusOK).decode(&list)
	if len(list) != 1 || list[0]["secret"] != nil || len(list[0]["events"].([]any)) != 1 {
		t.Fatalf("list: %v", list)
	}
	// Viewers read, never change; another org's admin does not see it.
	e.user("viewer@example.com", models.RoleViewer)
	vt := e.token("viewer@example.com")
	e.call(http.MethodGet, base, vt, nil).want(http.StatusOK)
	e.call(http.MethodPost, base+"/"+id.String()+"/test", vt, nil).wantError(http.StatusForbidden, "forbidden")
	e.call(http.MethodPost, base+"/"+id.String()+"/test", tok, nil).want(http.StatusAccepted)
	e.call(http.MethodPost, base+"/"+id.String()+"/test", tok, nil).wantError(http.StatusConflict, "test_pending")
	e.otherOrg("Other", "other@example.com")
	e.call(http.MethodDelete, base+"/"+id.String(), e.token("other@example.com"), nil).wantError(http.StatusNotFound, "not_found")
	e.call(http.MethodPatch, base+"/"+id.String(), tok, map[string]bool{"enabled": false}).want(http.StatusOK)
	e.call(http.MethodDelete, base+"/"+id.String(), tok, nil).want(http.StatusOK)
	if e.auditCount("webhook.created") != 1 || e.auditCount("webhook.disabled") != 1 || e.auditCount("webhook.deleted") != 1 || e.auditCount("webhook.test_sent") != 1 {
		t.Fatal("webhook changes not audited")
	}
	for i := range models.MaxWebhooksPerOrg {
		e.webhook(tok, "https://example.com/h"+strconv.Itoa(i), models.NotifyKeyRevoked)
	}
	e.call(http.MethodPost, base, tok, map[string]any{"url": "https://example.com/one-more", "events": []string{models.NotifyKeyRevoked}}).wantError(http.StatusConflict, "too_many_webhooks")
	for _, w := range must(models.ListWebhooks(t.Context(), e.db, e.org.ID)) {
		models.DeleteWebhook(t.Context(), e.db, e.org.ID, w.ID, e.actor)
	}

	// HTML: the secret is shown once, with a copy button; the path is not shown.
	c := e.signIn("root@example.com")
	status, _, page := e.post(c, "/settings/notifications", url.Values{"url": {"https://chat.example.com/hooks/SECRETPATH"}, "events": {models.NotifyJoinRequestCreated}})
	if doc := parseHTML(t, page); status != http.StatusOK || !strings.HasPrefix(doc.attr(`[data-testid="webhook-secret"]`, "value"), "whsec_") || !doc.has(`[data-copy-target="#`+doc.attr(`[data-testid="webhook-secret"]`, "id")+`"]`) {
		t.Fatalf("create webhook page: %d", status)
	}
	status, page = e.get(c, "/settings/notifications")
	if status != http.StatusOK || parseHTML(t, page).has(`[data-testid="webhook-secret"]`) || strings.Contains(page, "SECRETPATH") {
		t.Fatalf("notifications page shows the secret or the URL path: %d", status)
	}
	status, _, page = e.post(c, "/settings/notifications", url.Values{"url": {"gopher://x"}})
	if doc := parseHTML(t, page); status != http.StatusBadRequest || !doc.has(`[data-testid="new-webhook-form"] [data-testid="error-url"]`) || !doc.has(`[data-testid="new-webhook-form"] [data-testid="error-events"]`) {
		t.Fatalf("bad webhook form: %d", status)
	}
	v := e.signIn("viewer@example.com")
	if _, page := e.get(v, "/settings/notifications"); parseHTML(t, page).has(`[data-testid="new-webhook-form"], [data-testid="webhooks-table"] form`) {
		t.Fatal("viewer sees webhook buttons")
	}
}

func TestNotificationsQueuedByRevokeAndStaleAgents(t *testing.T) {
	e := newEnv(t)
	tok := e.token("root@example.com")
	e.webhook(tok, "http://127.0.0.1:9/x", models.NotifyKeyRevoked, models.NotifyAgentStale)
	k, _ := e.teamKey(e.org.ID)
	e.call(http.MethodDelete, "/api/v1/settings/api-keys/"+k.ID.String(), tok, nil).want(http.StatusOK)
	e.call(http.MethodDelete, "/api/v1/settings/api-keys/"+k.ID.String(), tok, nil).want(http.StatusOK) // idempotent: queues nothing more
	e.agentIn(e.org.ID, "quiet", models.StatusApproved)
	e.db.ExecContext(t.Context(), "UPDATE agents SET is_online = true, last_seen_at = now() - interval '10 minutes' WHERE id = 'quiet'")
	for i, want := range []int{1, 0} {
		n, err := models.EnqueueStaleAgents(t.Context(), e.db, 2*time.Minute)
		if err != nil || n != want {
			t.Fatalf("stale sweep %d: %d, %v; want %d", i, n, err, want)
		}
	}
	var events []string
	e.db.NewRaw("SELECT event FROM notification_outbox ORDER BY id").Scan(t.Context(), &events)
	if strings.Join(events, ",") != models.NotifyKeyRevoked+","+models.NotifyAgentStale {
		t.Fatalf("queued: %v", events)
	}
}
