package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/samplit/samplit/internal/api"
	"github.com/samplit/samplit/internal/apikey"
	"github.com/samplit/samplit/internal/config"
	"github.com/samplit/samplit/internal/connlimit"
	"github.com/samplit/samplit/internal/dashboard"
	"github.com/samplit/samplit/internal/decide"
	"github.com/samplit/samplit/internal/optimize"
	"github.com/samplit/samplit/internal/retention"
	"github.com/samplit/samplit/internal/store"
	"github.com/samplit/samplit/internal/store/backend"
	"github.com/samplit/samplit/internal/webhook"
)

// serve runs the HTTP server until ctx is cancelled (SIGINT/SIGTERM), then
// shuts down gracefully: it stops accepting, lets requests in flight finish
// within the shutdown timeout, and closes the database last.
func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	// The help goes to stdout like every command's; a flag error to stderr.
	var out bytes.Buffer
	cfg, err := config.Load(args, getenv, &out)
	if errors.Is(err, flag.ErrHelp) {
		_, _ = out.WriteTo(stdout)
		return flag.ErrHelp
	}
	_, _ = out.WriteTo(stderr)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	logger := newLogger(cfg, stderr)
	tuneGC(getenv)

	// Key material first: a missing or bad key must stop start-up before
	// anything touches the database.
	ring, err := loadKeyring(cfg, logger)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer st.Close()
	// The metrics registry first: the optimizers, the webhook worker and
	// the decision loop register on it as they are made.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if p, ok := st.(interface{ Pools() map[string]*sql.DB }); ok {
		// go_sql_* series (open, in use, idle, waits, wait time) labelled
		// db_name="read"/"write" (SQLite) or "pool" (PostgreSQL).
		for name, db := range p.Pools() {
			reg.MustRegister(collectors.NewDBStatsCollector(db, name))
		}
	}
	writers := 1 // SQLite has one writer: group commits go through one queue
	if cfg.IsPostgres() {
		writers = max(2, cfg.PGMaxConns/4)
	}
	db := embedded
	if cfg.IsPostgres() {
		db = postgresElsewhere
		if backend.PostgresOnThisMachine(cfg.DatabaseURL) {
			db = postgresHere
		}
	}
	if from, to := tuneProcs(db, getenv); to != from {
		logger.Info("GOMAXPROCS set for the database", "database", db.String(), "from", from, "to", to)
	}
	// The optimizers of every kind. Closed after the HTTP server has
	// drained: what was acknowledged is committed already, and nothing
	// queued is dropped.
	optimizers := optimize.NewServices(st, optimize.Deps{Keyring: ring, Now: time.Now, Logger: logger}, optimize.Options{Writers: writers, PinWriters: !cfg.IsPostgres(), Registerer: reg})
	defer optimizers.Close()

	plain, created, err := apikey.Bootstrap(ctx, st, cfg.BootstrapKey, time.Now())
	if err != nil {
		return err
	}
	if created && cfg.BootstrapKey == "" {
		// The contract: printed once, on a line of its own.
		fmt.Fprintf(stderr, "admin key: %s\n", plain)
	} else if created {
		logger.Info("bootstrap key stored", "workspace", apikey.DefaultWorkspace)
	}

	// The webhook worker delivers what the outbox holds, including what a
	// previous run committed and never sent. It stops after the HTTP server
	// has drained (deferred before, so run after), giving back the leases
	// of attempts it cuts short.
	hooks := webhook.NewWorker(st, ring, webhook.Options{AllowPrivate: cfg.WebhookAllowPrivate, Logger: logger, Registerer: reg})
	hctx, stopHooks := context.WithCancel(context.WithoutCancel(ctx))
	hooksDone := make(chan struct{})
	go func() { defer close(hooksDone); hooks.Run(hctx) }()
	defer func() { stopHooks(); <-hooksDone }()

	// The decision loop records winners, alerts and trips whether or not
	// anyone reads results, sharing the work with the other replicas
	// through leases. It stops before the webhook worker and the
	// optimizers (deferred after them, so run before), and wakes the worker
	// after a round that evaluated anything, so what it recorded goes out
	// at once.
	if cfg.DecideEvery > 0 {
		loop := decide.New(st, decide.Optimizers{Services: optimizers}, decide.Options{Every: cfg.DecideEvery, Logger: logger, Evaluated: hooks.Kick, Registerer: reg})
		dctx, stopDecide := context.WithCancel(context.WithoutCancel(ctx))
		decideDone := make(chan struct{})
		go func() { defer close(decideDone); loop.Run(dctx) }()
		defer func() { stopDecide(); <-decideDone }()
		logger.Info("decision loop started", "every", cfg.DecideEvery.String(), "owner", loop.Owner())
	}

	// Retention deletes expired and old rows once per period among all
	// replicas (a lease like the decision loop's), so that the database
	// levels off under a steady load. It stops with the decision loop.
	if cfg.RetentionEvery > 0 {
		ret := retention.New(st, retention.Options{
			Every: cfg.RetentionEvery, IdempotencyTTL: api.DefaultIdempotencyTTL,
			EventKeys: cfg.RetainEventKeys, Webhooks: cfg.RetainWebhooks,
			Logger: logger, Registerer: reg,
		})
		rctx, stopRetention := context.WithCancel(context.WithoutCancel(ctx))
		retentionDone := make(chan struct{})
		go func() { defer close(retentionDone); ret.Run(rctx) }()
		defer func() { stopRetention(); <-retentionDone }()
	}

	handler := api.NewServer(api.Deps{
		Store:      st,
		Optimizers: optimizers,
		Webhooks:   webhook.NewService(st, ring, time.Now, cfg.WebhookAllowPrivate, nil),
		Logger:     logger,
		Now:        time.Now,
		Registry:   reg,
	}, api.Options{
		MaxBodyBytes:  cfg.MaxBodyBytes,
		RateLimit:     cfg.RateLimit,
		RateBurst:     cfg.RateBurst,
		AuthFailLimit: cfg.AuthFailLimit,
		NoMetrics:     cfg.MetricsAddr != "",
	})

	// The dashboard at /, the API's paths (/v1/..., /healthz, /readyz,
	// /metrics, /openapi.json) to the API. The dashboard reads through the
	// same store and optimizers, and makes its lifecycle changes through
	// the optimizers, as the API does.
	dash := dashboard.New(dashboard.Deps{
		Store:      st,
		Optimizers: optimizers,
		API:        handler,
		Logger:     logger,
		Now:        time.Now,
	}, dashboard.Options{SessionsPerKey: cfg.SessionsPerKey, AuthFailLimit: cfg.AuthFailLimit})
	handler = dashboard.Combine(handler, dash)

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	// At most maxConns client connections: the longest-idle one is closed
	// to make room, so idle keep-alives cannot exhaust the descriptors.
	maxConns := connectionCap(cfg.MaxConnections, logger)
	ln = connlimit.New(maxConns).Install(srv, ln)

	errc := make(chan error, 2)
	if cfg.MetricsAddr != "" {
		// /metrics on its own listener, so that it need not be public: the
		// public one answers it with 404. Bound before the listening line
		// below, so that whoever waits for that line finds both.
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("listen on %s (metrics): %w", cfg.MetricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", api.MetricsHandler(reg))
		if cfg.Pprof {
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
			mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		}
		msrv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: cfg.ReadTimeout,
			WriteTimeout: cfg.WriteTimeout, IdleTimeout: cfg.IdleTimeout, ErrorLog: srv.ErrorLog}
		defer msrv.Close()
		go func() { errc <- msrv.Serve(mln) }()
		logger.Info("metrics listening", "addr", mln.Addr().String())
	}
	// A person who just started the server is told where to look, on a
	// line of its own like the admin key.
	fmt.Fprintf(stderr, "dashboard: %s\n", dashboardURL(ln.Addr()))
	logger.Info("samplit listening", "addr", ln.Addr().String(), "db", cfg.Redacted(), "version", version, "max_connections", maxConns)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		logger.Warn("requests still in flight at the shutdown timeout", "err", err)
	}
	logger.Info("stopped")
	return nil
}

// connectionCap returns the connection cap: the setting, lowered when the
// process may not open that many descriptors (the soft RLIMIT_NOFILE, which
// Go raises to the hard limit at start), keeping 64 for the database, the
// log and files.
func connectionCap(want int, logger *slog.Logger) int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > uint64(want)+64 {
		return want
	}
	limit := max(1, int(rl.Cur)-64)
	if limit < want {
		logger.Warn("max-connections lowered to fit the open-file limit", "max_connections", want, "open_files", rl.Cur, "now", limit)
		return limit
	}
	return want
}

// dashboardURL is the address a browser on this machine opens: a wildcard
// listener (0.0.0.0, ::) is reached through the loopback address.
func dashboardURL(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return "http://" + a.String() + "/"
	}
	host := tcp.IP
	if host.IsUnspecified() {
		// Go listens dual-stack on a wildcard, so IPv4 loopback answers.
		host = net.IPv4(127, 0, 0, 1)
	}
	return "http://" + net.JoinHostPort(host.String(), strconv.Itoa(tcp.Port)) + "/"
}

// openStore opens the configured database, applying migrations when asked.
func openStore(ctx context.Context, cfg config.Config, migrate bool) (store.Store, error) {
	st, err := backend.Open(ctx, cfg.DatabaseURL, backendOptions(cfg, migrate))
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", cfg.Redacted(), err)
	}
	return st, nil
}

func backendOptions(cfg config.Config, migrate bool) backend.Options {
	return backend.Options{
		AutoMigrate:    migrate,
		SimpleProtocol: cfg.PGSimpleProtocol,
		MaxConns:       cfg.PGMaxConns,
	}
}

// newLogger makes the process logger: JSON in production, text on a terminal.
func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	format := cfg.LogFormat
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
