// Command server runs the agent onboarding and roster server.
//
//	server                     serve (the default)
//	server migrate up|down|status
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/uptrace/bun"

	"github.com/agentroster/agentroster/handlers"
	"github.com/agentroster/agentroster/handlers/live"
	"github.com/agentroster/agentroster/handlers/webhooks"
	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/models/cache"
	"github.com/agentroster/agentroster/models/pgcluster"
	"github.com/agentroster/agentroster/models/presence"
)

func main() {
	// Heap profiles are served only on PPROF_ADDR; without it the runtime
	// keeps no allocation samples (their tables take 2 MiB under load).
	if os.Getenv("PPROF_ADDR") == "" {
		runtime.MemProfileRate = 0
	}
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub := ""
	if len(args) > 0 && args[0] == "migrate" {
		if len(args) < 2 {
			return errors.New("usage: server migrate up|down|status")
		}
		sub, args = args[1], args[2:]
	}
	cfg, err := loadConfig(args)
	if err != nil {
		return err
	}
	log := newLogger(cfg.LogFormat, stderr)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	db, dbURL, cluster, err := openDatabase(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		db.Close()
		if err := cluster.Stop(); err != nil {
			log.Error("stop PostgreSQL", "err", err)
		} else if cluster != nil {
			log.Info("private PostgreSQL stopped")
		}
	}()

	// Migrations hold a session-level advisory lock and LISTEN holds its
	// connection: neither survives a transaction pooler, so both take
	// LISTEN_DATABASE_URL (direct) when it is set.
	migrateDB, listenURL := db, dbURL
	if cfg.ListenDatabaseURL != "" {
		direct, err := models.Open(cfg.ListenDatabaseURL, 2)
		if err == nil {
			err = models.Ping(ctx, direct, 10*time.Second)
		}
		if err != nil {
			return fmt.Errorf("connect to LISTEN_DATABASE_URL: %w", err)
		}
		defer direct.Close()
		migrateDB, listenURL = direct, cfg.ListenDatabaseURL
	}

	switch sub {
	case "":
	case "up":
		return models.Migrate(ctx, migrateDB, log)
	case "down":
		return models.Rollback(ctx, migrateDB, log)
	case "status":
		return models.MigrationStatus(ctx, migrateDB, stdout)
	default:
		return fmt.Errorf("unknown migrate command %q: use up, down or status", sub)
	}

	limit, source := setMemoryLimit(ctx)
	log.Info("soft memory limit", "MiB", limit>>20, "from", source)

	if err := models.Migrate(ctx, migrateDB, log); err != nil {
		return err
	}
	if migrateDB != db {
		migrateDB.Close() // only LISTEN keeps a direct connection from here on
	}
	if err := bootstrap(ctx, db, cfg, log); err != nil {
		return err
	}
	secret, err := cfg.secret()
	if err != nil {
		return err
	}
	// The work the handlers rely on beside the requests (README, "Layout"):
	// the runtime cache, the live-update listener that keeps it coherent and
	// feeds the streams, the presence writer and the announcer.
	cached := cache.New(cache.TTL, models.RandomBase62(12), cache.MaxEntries)
	broker := live.NewBroker(log, listenURL, cached)
	writer := presence.New(db, cached)
	announcer := live.NewAnnouncer(db)
	h, err := handlers.New(handlers.Deps{
		DB: db, Log: log, Secret: secret,
		Cache: cached, Broker: broker, Writer: writer, Announcer: announcer,
		Config: handlers.Config{
			PublicURL: cfg.PublicURL, TrustedProxies: cfg.TrustedProxies,
			PresenceWindow: cfg.PresenceWindow, MetricsToken: cfg.MetricsToken,
			MetricsAddr:       cfg.MetricsAddr,
			WebhookAllowCIDRs: cfg.WebhookAllowCIDRs,
		},
	})
	if err != nil {
		return err
	}
	// The listener and the housekeeping stop when shutdown begins, with the
	// streams they serve; the presence writer and the announcer once the
	// requests have drained (requests still draining need them), and the
	// writer flushes what it holds. The database closes after them.
	listening, stopListening := context.WithCancel(context.Background())
	writing, stopWriting := context.WithCancel(context.Background())
	var background sync.WaitGroup
	background.Go(func() { broker.Run(listening) })
	background.Go(func() { h.Housekeeping(listening) })
	background.Go(func() { writer.Run(writing) })
	background.Go(func() { announcer.Run(writing) })
	defer func() {
		stopListening()
		h.Close() // waits for the detached streams
		stopWriting()
		background.Wait()
	}()

	// The webhook worker: sends queued notifications until shutdown, then
	// lets deliveries in flight finish (each is bounded by its timeout).
	notifyCtx, stopNotify := context.WithCancel(context.Background())
	notifyDone := make(chan struct{})
	go func() { defer close(notifyDone); webhooks.New(h.WebhookDeps(), webhooks.Options{}).Run(notifyCtx) }()
	defer func() { stopNotify(); <-notifyDone }()

	srv := &http.Server{
		Addr:              cfg.Addr,
		Handler:           h.Routes(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return h.BaseContext() },
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.ListenAndServe() }()
	// Metrics on a listener of their own, without a token: keep it private.
	var metricsSrv *http.Server
	if cfg.MetricsAddr != "" {
		metricsSrv = &http.Server{
			Addr:              cfg.MetricsAddr,
			Handler:           h.MetricsHandler(),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    16 << 10,
		}
		go func() {
			if err := metricsSrv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("metrics listener: %w", err)
			}
		}()
		log.Info("serving metrics", "addr", cfg.MetricsAddr)
	}
	if cfg.PprofAddr != "" {
		go servePprof(cfg.PprofAddr, log)
	}
	log.Info("serving", "addr", cfg.Addr, "url", cfg.PublicURL+"/login")

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: draining requests", "grace", cfg.ShutdownGrace)
	h.BeginShutdown() // ends long-lived streams so they do not hold the drain
	stopListening()
	shutCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		log.Warn("drain incomplete", "err", err)
	}
	if metricsSrv != nil {
		if err := metricsSrv.Shutdown(shutCtx); err != nil {
			log.Warn("metrics listener drain incomplete", "err", err)
		}
	}
	return nil
}

// servePprof serves the runtime profiles on their own listener (keep it on
// localhost): go tool pprof http://ADDR/debug/pprof/profile?seconds=10
func servePprof(addr string, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	log.Info("serving profiles", "addr", addr)
	if err := http.ListenAndServe(addr, mux); err != nil {
		log.Error("pprof listener", "err", err)
	}
}

func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

// openDatabase connects to DATABASE_URL, or starts the private cluster in
// DATA_DIR/postgres and connects to its `agentroster` database.
func openDatabase(ctx context.Context, cfg config, log *slog.Logger) (*bun.DB, string, *pgcluster.Cluster, error) {
	url := cfg.DatabaseURL
	var cluster *pgcluster.Cluster
	if url == "" {
		if err := os.MkdirAll(cfg.DataDir, 0o711); err != nil {
			return nil, "", nil, err
		}
		start := time.Now()
		var err error
		cluster, err = pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(cfg.DataDir, "postgres"), Logger: log})
		if err != nil {
			if errors.Is(err, pgcluster.ErrNoBinaries) {
				return nil, "", nil, errors.New("no database: set DATABASE_URL to an existing PostgreSQL, or install the PostgreSQL server package (apt-get install postgresql) so a private cluster can start in DATA_DIR")
			}
			return nil, "", nil, err
		}
		if err := cluster.CreateDatabase(ctx, "agentroster"); err != nil {
			cluster.Stop()
			return nil, "", nil, err
		}
		url = cluster.URL("agentroster")
		log.Info("private PostgreSQL ready", "dir", cluster.Dir(), "took", time.Since(start).Round(time.Millisecond))
	}
	db, err := models.Open(url, models.PoolSize)
	if err == nil {
		err = models.Ping(ctx, db, 10*time.Second)
	}
	if err != nil {
		cluster.Stop()
		return nil, "", nil, fmt.Errorf("connect to database: %w", err)
	}
	return db, url, cluster, nil
}

// bootstrap creates the first platform admin; a generated password is printed once.
func bootstrap(ctx context.Context, db *bun.DB, cfg config, log *slog.Logger) error {
	u, generated, err := models.EnsureBootstrapSA(ctx, db, cfg.BootstrapEmail, cfg.BootstrapPass)
	if err != nil {
		return fmt.Errorf("bootstrap platform admin: %w", err)
	}
	if u == nil {
		return nil
	}
	log.Info("created platform admin", "email", u.Email)
	if generated != "" {
		log.Warn("generated platform admin password, shown only this once: sign in and change it",
			"email", u.Email, "password", generated)
	}
	return nil
}
