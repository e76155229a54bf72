// Package handlers serves the HTML pages and the JSON API. The route table is
// in routes.go; each resource has its own file.
package handlers

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"
	"github.com/uptrace/bun"

	"github.com/agentroster/agentroster/handlers/live"
	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/models/cache"
	"github.com/agentroster/agentroster/models/presence"
)

// Config is what the handlers need to know about the deployment.
type Config struct {
	PublicURL      string
	TrustedProxies []string
	PresenceWindow time.Duration
	MetricsToken   string
	SessionIdle    time.Duration
	SessionMaxAge  time.Duration
	TokenTTL       time.Duration
	// MetricsAddr, when set, is where the server runs MetricsHandler; the
	// main listener's /metrics then answers 404.
	MetricsAddr string
	// WebhookAllowCIDRs are internal ranges webhooks may reach anyway
	// (WEBHOOK_ALLOW_CIDRS); everything else inside is refused.
	WebhookAllowCIDRs []netip.Prefix
}

// Deps are the handler's dependencies. Cache, Broker, Writer and Announcer
// work in the background beside the requests: the caller (cmd/server) runs
// them and stops them after the handler has drained.
type Deps struct {
	DB     *bun.DB
	Log    *slog.Logger
	Secret []byte
	Config Config

	Cache     *cache.Cache     // keys and agents for runtime requests
	Broker    *live.Broker     // live-update streams
	Writer    *presence.Writer // presence batches and contact times
	Announcer *live.Announcer  // page-refresh events, after the request
}

// Handler holds the dependencies every route uses.
type Handler struct {
	db     *bun.DB
	log    *slog.Logger
	cfg    Config
	cookie *sessions.CookieStore
	tokens *securecookie.SecureCookie
	sealer *models.Sealer
	secure bool

	// loginIP counts every sign-in from an address (against spraying);
	// loginIPEmail counts failed sign-ins per address and email; password
	// counts wrong current passwords per user and address.
	loginIP, loginIPEmail, password, inviteIP, claimIP, badKeyIP, linkIP *limiter
	broker                                                               *live.Broker
	metrics                                                              *metrics
	cache                                                                *cache.Cache
	writer                                                               *presence.Writer
	announcer                                                            *live.Announcer
	policies                                                             map[string]access // each route's, filled by Routes
	exports                                                              exportSlots

	ctx      context.Context // cancelled by BeginShutdown: long-lived requests end
	shutdown context.CancelFunc
	streams  sync.WaitGroup // detached live-update streams (detachStream)
}

// derive returns a purpose-specific key from the server secret.
func derive(secret []byte, purpose string) []byte {
	sum := sha256.Sum256(append([]byte("agentroster "+purpose+"\x00"), secret...))
	return sum[:]
}

// New builds a Handler. It starts nothing: the caller runs Housekeeping and
// the background pieces of d.
func New(d Deps) (*Handler, error) {
	if len(d.Secret) < 32 {
		return nil, errors.New("handlers: secret must be at least 32 bytes")
	}
	if d.Cache == nil || d.Broker == nil || d.Writer == nil || d.Announcer == nil {
		return nil, errors.New("handlers: Deps needs Cache, Broker, Writer and Announcer")
	}
	cfg := d.Config
	if cfg.PresenceWindow <= 0 {
		cfg.PresenceWindow = 2 * time.Minute
	}
	if cfg.SessionIdle <= 0 {
		cfg.SessionIdle = 12 * time.Hour
	}
	if cfg.SessionMaxAge <= 0 {
		cfg.SessionMaxAge = 7 * 24 * time.Hour
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = time.Hour
	}
	sealer, err := models.NewSealer(derive(d.Secret, "seal"))
	if err != nil {
		return nil, err
	}
	h := &Handler{
		db: d.DB, log: d.Log, cfg: cfg, sealer: sealer,
		cache: d.Cache, broker: d.Broker, writer: d.Writer, announcer: d.Announcer,
		secure: strings.HasPrefix(cfg.PublicURL, "https://"),
		cookie: sessions.NewCookieStore(derive(d.Secret, "cookie-auth"), derive(d.Secret, "cookie-enc")),
		tokens: securecookie.New(derive(d.Secret, "bearer-auth"), derive(d.Secret, "bearer-enc")).
			MaxAge(int(cfg.TokenTTL / time.Second)),
		loginIP:      newLimiter(6*time.Second, 20),
		loginIPEmail: newLimiter(30*time.Second, 10),
		password:     newLimiter(30*time.Second, 10),
		inviteIP:     newLimiter(time.Second, 30),
		claimIP:      newLimiter(200*time.Millisecond, 60),
		badKeyIP:     newLimiter(2*time.Second, 20),
		linkIP:       newLimiter(time.Second, 30),
	}
	h.cookie.Options = &sessions.Options{
		Path: "/", MaxAge: int(cfg.SessionMaxAge / time.Second),
		HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteLaxMode,
	}
	h.ctx, h.shutdown = context.WithCancel(context.Background())
	h.metrics = newMetrics(h)
	for name, l := range map[string]*limiter{"login_ip": h.loginIP, "login_ip_email": h.loginIPEmail, "password_change": h.password, "invite_ip": h.inviteIP,
		"claim_ip": h.claimIP, "api_key_ip": h.badKeyIP, "link_ip": h.linkIP} {
		l.rejected = h.metrics.limiterRejected(name)
	}
	return h, nil
}

// BaseContext is the parent of every request context: cancelled on shutdown so
// long-lived streams end.
func (h *Handler) BaseContext() context.Context { return context.Background() }

// BeginShutdown ends the long-lived requests (live-update streams, MCP
// session streams) so they do not hold the drain; new ones end at once.
func (h *Handler) BeginShutdown() { h.shutdown() }

// Close ends the long-lived requests and waits for the detached streams,
// which the HTTP server's drain does not see.
func (h *Handler) Close() {
	h.shutdown()
	h.streams.Wait()
}

// Housekeeping sweeps the rate limiters and deletes expired sessions every
// five minutes until ctx ends. The caller runs it.
func (h *Handler) Housekeeping(ctx context.Context) {
	t := time.NewTicker(5 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, l := range []*limiter{h.loginIP, h.loginIPEmail, h.password, h.inviteIP, h.claimIP, h.badKeyIP, h.linkIP} {
				l.sweep()
			}
			if _, err := models.DeleteExpiredSessions(ctx, h.db); err != nil && ctx.Err() == nil {
				h.log.Warn("delete expired sessions", "err", err)
			}
		}
	}
}
