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
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/relaystation/relay/adapters/httpx"
	"github.com/relaystation/relay/adapters/keycache"
	"github.com/relaystation/relay/adapters/metrics"
	"github.com/relaystation/relay/adapters/usagewriter"
	"github.com/relaystation/relay/config"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/billing"
	"github.com/relaystation/relay/domain/relay"
	"github.com/relaystation/relay/ports"
)

// serve wires the relay explicitly, starts it, and on SIGTERM/SIGINT shuts
// it down in order: stop accepting, drain streams (up to the grace period),
// flush every pending usage record, close the stores.
func serve(ctx context.Context, args []string, e env) error {
	if len(args) > 0 {
		return usageError{"serve takes no arguments; configure it with config.yaml or the environment"}
	}
	cfg, file, err := loadConfig(e)
	if err != nil {
		return err
	}
	sink := newLogSink(e.stderr, 100*time.Millisecond)
	defer sink.Close()
	log, access := newLogger(cfg.Log, sink)
	app, err := build(ctx, cfg, e, log, access)
	if err != nil {
		return err
	}
	defer app.close()

	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("listen_addr %s: %w", cfg.ListenAddr, err)
	}
	log.Info("relay started", "version", version, "addr", ln.Addr().String(),
		"config_file", file, "database", app.storeKind, "redis", cfg.RedisURL != "",
		"upstream_configured", app.upstreamConfigured)
	return app.run(ctx, ln)
}

// app is the running relay: everything serve builds and must close.
type app struct {
	cfg                config.Config
	log                *slog.Logger
	accessLog          io.Writer
	clock              ports.Clock
	store              ports.Store
	storeKind          string
	rdb                *goredis.Client
	writer             *usagewriter.Writer
	metrics            *metrics.Metrics
	handler            http.Handler
	metricsHandler     http.Handler // for metrics.listen_addr; nil: served on the public listener
	inflight           sync.WaitGroup
	upstreamConfigured bool
	budgets            *billing.Budgets // for relay_budget_usage_ratio
	closers            []func()
}

// build wires the relay from cfg; the constructors it calls are in
// wiring.go. On an error, whatever it had opened is closed again.
// access, when set, takes the proxy's per-request JSON lines (see
// proxy.Options.AccessLog), each in one Write.
func build(ctx context.Context, cfg config.Config, e env, log *slog.Logger, access io.Writer) (_ *app, err error) {
	a := &app{cfg: cfg, log: log, accessLog: access, clock: ports.SystemClock{}}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	sec, err := bootstrapSecrets(cfg, e.stderr)
	if err != nil {
		return nil, err
	}
	if err := a.openStore(ctx); err != nil {
		return nil, err
	}
	a.metrics = metrics.New(metrics.Options{MaxQuotaKeys: cfg.Metrics.MaxKeys, QuotaKeyNames: cfg.Metrics.KeyNames, Version: version})
	lim, err := a.newLimiters(ctx)
	if err != nil {
		return nil, err
	}
	a.writer = usagewriter.New(a.store, usagewriter.Config{
		Capacity: cfg.Usage.QueueSize, BatchSize: cfg.Usage.BatchSize, FlushInterval: cfg.Usage.FlushInterval,
		Logger: log, Observer: a.metrics.UsageWriter(),
	})

	hasher := domain.NewKeyHasher(sec.keyHashSecret)
	cache := keycache.New(a.store, cfg.Server.KeyCacheTTL, a.clock)
	m, err := a.newMoney(ctx, lim)
	if err != nil {
		return nil, err
	}
	adminSvc, err := a.newAdmin(ctx, lim, m, cache, hasher, sec.adminHash)
	if err != nil {
		return nil, err
	}
	// Hand the start-up garbage (migrations, the price table, the
	// dashboard's index) back to the OS at once. The tokenizer is not
	// loaded here: it loads on the first request that needs an exact count
	// (adapters/anthropic/estimate.go).
	debug.FreeOSMemory()
	transport, ups, err := a.newTransport(ctx, sec)
	if err != nil {
		return nil, err
	}
	auth := relay.NewAuthenticator(hasher, cache, a.clock)
	relaySvc, err := a.newRelay(auth, lim, m, transport)
	if err != nil {
		return nil, err
	}
	clientIP := httpx.NewClientIPResolver(cfg.Server.TrustedProxies)
	dataPlane, err := a.newDataPlane(relaySvc, transport, clientIP)
	if err != nil {
		return nil, err
	}
	srv, err := a.newServer(adminSvc, ups, auth, clientIP, dataPlane, sec.jwtKey)
	if err != nil {
		return nil, err
	}
	a.handler = a.track(srv)
	a.startReconciler(ctx, relaySvc)
	return a, nil
}

// track counts in-flight handlers, so shutdown can wait for the last
// stream's usage to be settled before flushing the writer.
func (a *app) track(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.inflight.Add(1)
		defer a.inflight.Done()
		next.ServeHTTP(w, r)
	})
}

// ready checks the database and Redis within a short timeout.
func (a *app) ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	// The reasons are fixed phrases: /ready is unauthenticated, and driver
	// errors can name hosts and users. The details go to the log.
	var err error
	if perr := a.store.Ping(ctx); perr != nil {
		a.log.Warn("readiness: database ping failed", "error", perr)
		err = errors.New("database unreachable")
	} else if a.rdb != nil {
		if rerr := a.rdb.Ping(ctx).Err(); rerr != nil {
			a.log.Warn("readiness: redis ping failed", "error", rerr)
			err = errors.New("redis unreachable")
		}
	}
	if err == nil && a.writer.Saturated() {
		err = errors.New("usage writer queue is full")
	}
	a.metrics.SetReady(err == nil)
	return err
}

func (a *app) run(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: a.cfg.Server.ReadHeaderTimeout,
		IdleTimeout:       a.cfg.Server.IdleTimeout,
		// No WriteTimeout: streams are long. The proxy enforces an idle
		// timeout between upstream bytes instead.
		ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
	}
	ln = httpx.LimitListener(ln, a.connLimits())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	if a.metricsHandler != nil {
		ms, err := a.serveMetrics()
		if err != nil {
			_ = hs.Close()
			return err
		}
		defer ms.Close()
	}
	if addr := a.cfg.Server.PprofAddr; addr != "" {
		// Profiling on its own listener, never on the public one.
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		ps := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := ps.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("pprof server", "error", err)
			}
		}()
		defer ps.Close()
		a.log.Info("pprof enabled", "addr", addr)
	}

	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http server: %w", err)
		}
	case <-ctx.Done():
	}

	grace := a.cfg.Server.ShutdownGrace
	a.log.Info("shutting down: draining open requests", "grace", grace.String())
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	err := hs.Shutdown(sctx)
	cancel()
	if err != nil {
		a.log.Warn("grace period over: closing the remaining connections", "error", err)
		_ = hs.Close()
	}
	// Closed connections end their handlers promptly; each settles its usage
	// on the way out.
	done := make(chan struct{})
	go func() { a.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		a.log.Error("handlers still running after shutdown; flushing what has been recorded")
	}
	fctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.writer.Shutdown(fctx); err != nil {
		a.log.Error("flushing usage records", "error", err)
		return fmt.Errorf("flushing usage: %w", err)
	}
	a.log.Info("shutdown complete: usage flushed")
	return nil
}

// connLimits are the public listener's connection limits. Trusted proxies
// carry many clients' connections, so they count only globally.
func (a *app) connLimits() httpx.ConnLimits {
	var nofile syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile)
	return httpx.ConnLimits{
		Max:      a.cfg.Server.Connections(nofile.Cur),
		PerAddr:  a.cfg.Server.MaxConnectionsPerAddr,
		Exempt:   a.cfg.Server.TrustedProxies,
		OnRefuse: a.metrics.ConnectionRefused,
		OnOpen:   a.metrics.SetOpenConnections,
	}
}

// serveMetrics serves /metrics on metrics.listen_addr, apart from the
// public listener (so a firewall, not only METRICS_TOKEN, can guard it).
func (a *app) serveMetrics() (*http.Server, error) {
	ln, err := net.Listen("tcp", a.cfg.Metrics.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen_addr %s: %w", a.cfg.Metrics.ListenAddr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.metricsHandler)
	ms := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute,
		ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelDebug)}
	go func() {
		if err := ms.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("metrics server", "error", err)
		}
	}()
	a.log.Info("metrics served on their own address", "addr", ln.Addr().String())
	return ms, nil
}

func (a *app) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
}
