package handlers

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/agentroster/agentroster/handlers/webhooks"
	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/models/testdb"
)

// TestWebhookDestinationsRefused: with no allow list, webhooks cannot reach
// loopback, private or metadata addresses, neither when added nor when a
// delivery dials (a literal address stored earlier, localhost, or a name
// that resolves inside). Nothing leaves the machine: the private and
// metadata cases are refused before any dial.
func TestWebhookDestinationsRefused(t *testing.T) {
	_, dbURL := testdb.Fresh(t)
	e := newEnvWith(t, dbURL, func(d *Deps) { d.Config.WebhookAllowCIDRs = nil })
	tok := e.token("root@example.com")
	e.user("viewer@example.com", models.RoleViewer)
	viewer := e.token("viewer@example.com")
	recv := newReceiver(t, func(int) int { return http.StatusNoContent })
	port := must(url.Parse(recv.srv.URL)).Port()
	hooks := "/api/v1/organizations/" + e.org.ID.String() + "/webhooks"

	// Refused when added: literal addresses and localhost, JSON and form.
	for _, u := range []string{
		recv.srv.URL + "/hook", "http://localhost:" + port + "/hook", "http://LOCALHOST./x", "http://[::1]:" + port + "/x",
		"http://10.0.0.1/x", "http://169.254.169.254/latest/meta-data/", "http://[::ffff:127.0.0.1]/x",
		"http://0.0.0.0:" + port + "/", "http://[fd00::1]/x", "http://100.64.1.1/x",
	} {
		r := e.call(http.MethodPost, hooks, tok, map[string]any{"url": u, "events": []string{models.NotifyAgentPending}})
		r.wantError(http.StatusBadRequest, "invalid_input")
		if !strings.Contains(string(r.Body), `"url"`) {
			t.Fatalf("%s: the refusal does not name the url field: %s", u, r.Body)
		}
	}
	c := e.signIn("root@example.com")
	status, _, page := e.post(c, "/settings/notifications", url.Values{"url": {"http://127.0.0.1:" + port + "/x"}, "events": {models.NotifyAgentPending}})
	if status != http.StatusBadRequest || !parseHTML(t, page).has(`[data-testid="new-webhook-form"] [data-testid="error-url"]`) {
		t.Fatalf("form with a loopback webhook: %d", status)
	}
	if n := len(must(models.ListWebhooks(t.Context(), e.db, e.org.ID))); n != 0 {
		t.Fatalf("%d webhooks created", n)
	}

	// Refused when dialled. Endpoints stored before the rule (or names that
	// resolve inside) go through the models directly.
	add := func(u string) uuid.UUID {
		w, _, err := models.CreateWebhook(t.Context(), e.db, e.h.sealer, e.org.ID, models.WebhookInput{URL: u, Events: []string{models.NotifyAgentPending}}, e.actor)
		if err != nil {
			t.Fatal(err)
		}
		return w.ID
	}
	targets := map[string]uuid.UUID{
		"loopback by IP":          add(recv.srv.URL + "/hook"),
		"localhost":               add("http://localhost:" + port + "/hook"),
		"[::1]":                   add("http://[::1]:" + port + "/hook"),
		"private range":           add("http://10.0.0.1/hook"),
		"metadata":                add("http://169.254.169.254/latest/meta-data/"),
		"name resolving inside":   add("http://hooks.example.test:" + port + "/hook"),
		"mapped IPv6 of loopback": add("http://[::ffff:127.0.0.1]:" + port + "/hook"),
	}
	// A created endpoint passes the add-time check (its host is a name) yet
	// resolves to loopback at dial time.
	var mu sync.Mutex
	var lookups []string
	lookup := func(ctx context.Context, host string) ([]netip.Addr, error) {
		mu.Lock()
		lookups = append(lookups, host)
		mu.Unlock()
		if host == "hooks.example.test" {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		}
		return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	}
	e.call(http.MethodPost, hooks+"/"+targets["name resolving inside"].String()+"/test", tok, nil).want(http.StatusAccepted)
	for name, id := range targets {
		if name != "name resolving inside" {
			e.call(http.MethodPost, hooks+"/"+id.String()+"/test", tok, nil).want(http.StatusAccepted)
		}
	}
	n := webhooks.New(e.h.WebhookDeps(), webhooks.Options{MaxAttempts: 1, Timeout: 2 * time.Second, LookupIP: lookup})
	e.drain(n)
	if got := recv.requests(); len(got) != 0 {
		t.Fatalf("the receiver on loopback got %d deliveries", len(got))
	}
	if !strings.Contains(strings.Join(lookups, ","), "hooks.example.test") {
		t.Fatalf("the injected resolver was not asked: %v", lookups)
	}
	for name, id := range targets {
		var as []models.Attempt
		e.call(http.MethodGet, hooks+"/"+id.String()+"/deliveries", viewer, nil).want(http.StatusOK).decode(&as)
		if len(as) != 1 || as[0].Error != "blocked destination" || as[0].StatusCode != 0 || as[0].LatencyMS != 0 {
			t.Fatalf("%s: delivery log %+v, want one \"blocked destination\"", name, as)
		}
	}

	// Viewers read scheme and host only; admins the whole URL.
	var seen []models.WebhookEndpoint
	e.call(http.MethodGet, hooks, viewer, nil).want(http.StatusOK).decode(&seen)
	for _, w := range seen {
		if u := must(url.Parse(w.URL)); u.Path != "" || u.RawQuery != "" || u.Scheme != "http" || u.Host == "" {
			t.Fatalf("viewer reads the full URL %q", w.URL)
		}
	}
	if len(seen) != len(targets) {
		t.Fatalf("viewer list: %+v", seen)
	}
	e.call(http.MethodGet, hooks, tok, nil).want(http.StatusOK).decode(&seen)
	for _, w := range seen {
		if !strings.HasSuffix(w.URL, "/hook") && !strings.HasSuffix(w.URL, "/meta-data/") {
			t.Fatalf("admin reads %q, want the full URL", w.URL)
		}
	}
}

// TestWebhookAllowedCIDR: an address inside WEBHOOK_ALLOW_CIDRS is added and
// delivered to, by name as by address; other internal addresses stay refused.
func TestWebhookAllowedCIDR(t *testing.T) {
	_, dbURL := testdb.Fresh(t)
	e := newEnvWith(t, dbURL, func(d *Deps) {
		d.Config.WebhookAllowCIDRs = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	tok := e.token("root@example.com")
	recv := newReceiver(t, func(int) int { return http.StatusNoContent })
	port := must(url.Parse(recv.srv.URL)).Port()
	hooks := "/api/v1/organizations/" + e.org.ID.String() + "/webhooks"
	byIP, _ := e.webhook(tok, recv.srv.URL+"/a", models.NotifyAgentPending)
	// localhost resolves to 127.0.0.1 (allowed) and perhaps ::1 (not): the
	// allowed address is dialled.
	lookup := func(ctx context.Context, host string) ([]netip.Addr, error) {
		if host == "localhost" {
			return []netip.Addr{netip.MustParseAddr("::1"), netip.MustParseAddr("127.0.0.1")}, nil
		}
		return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	}
	byName, _ := e.webhook(tok, "http://localhost:"+port+"/b", models.NotifyAgentPending)
	e.call(http.MethodPost, hooks, tok, map[string]any{"url": "http://10.0.0.1/x", "events": []string{models.NotifyAgentPending}}).
		wantError(http.StatusBadRequest, "invalid_input")
	for _, id := range []uuid.UUID{byIP, byName} {
		e.call(http.MethodPost, hooks+"/"+id.String()+"/test", tok, nil).want(http.StatusAccepted)
	}
	e.drain(webhooks.New(e.h.WebhookDeps(), webhooks.Options{MaxAttempts: 1, LookupIP: lookup}))
	if got := recv.requests(); len(got) != 2 {
		t.Fatalf("the allowed receiver got %d deliveries, want 2", len(got))
	}
}
