package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/relaystation/relay/adapters/anthropic"
	"github.com/relaystation/relay/adapters/keycache"
	"github.com/relaystation/relay/adapters/memory"
	"github.com/relaystation/relay/adapters/metrics"
	redisadapter "github.com/relaystation/relay/adapters/redis"
	"github.com/relaystation/relay/adapters/storage"
	"github.com/relaystation/relay/adapters/upstream"
	"github.com/relaystation/relay/adapters/usagewriter"
	"github.com/relaystation/relay/config"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/admin"
	"github.com/relaystation/relay/domain/relay"
	"github.com/relaystation/relay/ports"

	httpadapter "github.com/relaystation/relay/adapters/http"
	"github.com/relaystation/relay/adapters/httpx"
	"github.com/relaystation/relay/adapters/proxy"
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
	log := newLogger(cfg.Log, sink)
	app, err := build(ctx, cfg, e, log)
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
	store              ports.Store
	storeKind          string
	rdb                *goredis.Client
	writer             *usagewriter.Writer
	metrics            *metrics.Metrics
	handler            http.Handler
	metricsHandler     http.Handler // for metrics.listen_addr; nil: served on the public listener
	inflight           sync.WaitGroup
	upstreamConfigured bool
	closers            []func()
}

func build(ctx context.Context, cfg config.Config, e env, log *slog.Logger) (*app, error) {
	a := &app{cfg: cfg, log: log}
	sec, err := bootstrapSecrets(cfg, e.stderr)
	if err != nil {
		return nil, err
	}
	store, err := storage.Open(ctx, cfg.DatabaseURL, cfg.DataDir, log)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	a.store = store
	a.storeKind = "sqlite"
	if cfg.DatabaseURL != "" {
		a.storeKind = "postgres"
	}
	a.closers = append(a.closers, func() {
		if err := store.Close(); err != nil {
			log.Error("closing the database", "error", err)
		}
	})

	m := metrics.New(metrics.Options{MaxQuotaKeys: cfg.Metrics.MaxKeys, QuotaKeyNames: cfg.Metrics.KeyNames, Version: version})
	a.metrics = m
	clock := ports.SystemClock{}

	var (
		ledger  ports.QuotaLedger
		limiter ports.RateLimiter
		conc    ports.ConcurrencyLimiter
		// The login throttle's memory store serves alone without Redis, and
		// as the fallback while Redis is unreachable.
		logins, loginsFallback ports.LoginThrottle
	)
	memLogins, err := memory.NewLoginThrottle(cfg.Admin.LoginThrottle.MaxEntries, memory.WithClock(clock))
	if err != nil {
		return nil, err
	}
	if cfg.RedisURL != "" {
		goredis.SetLogger(redisLogger{log})
		opts, err := goredis.ParseURL(cfg.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("redis_url: %w", err)
		}
		// Admission waits on Redis: keep its worst case short, so that when
		// Redis is away the failure policy applies within about a second
		// instead of after go-redis's default timeouts and retries.
		opts.DialTimeout = time.Second
		opts.ReadTimeout = 500 * time.Millisecond
		opts.WriteTimeout = 500 * time.Millisecond
		opts.PoolTimeout = time.Second
		opts.MaxRetries = 1
		opts.DialerRetries = 1
		a.rdb = goredis.NewClient(opts)
		// After a connection failure, fail Redis calls at once for a second.
		a.rdb.AddHook(redisadapter.NewBreaker(time.Second))
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		if err := a.rdb.Ping(pctx).Err(); err != nil {
			// Not fatal: the fail_open/fail_closed policies decide what
			// happens while Redis is away, and it may come back.
			log.Warn("redis is not reachable at start; the failure policies apply until it is", "error", err)
		}
		cancel()
		ropts := []redisadapter.Option{redisadapter.WithPrefix("relay:"), redisadapter.WithLogger(log)}
		ledger = redisadapter.NewLedger(a.rdb, ropts...)
		limiter = redisadapter.NewRateLimiter(a.rdb, ropts...)
		conc = redisadapter.NewConcurrencyLimiter(a.rdb, ropts...)
		logins, loginsFallback = redisadapter.NewLoginThrottle(a.rdb, ropts...), memLogins
		a.closers = append(a.closers, func() { _ = a.rdb.Close() })
	} else {
		ml := memory.NewLedger(memory.WithClock(clock), memory.WithSweepInterval(time.Minute))
		mr := memory.NewRateLimiter(memory.WithClock(clock), memory.WithSweepInterval(time.Minute))
		mc := memory.NewConcurrencyLimiter(memory.WithClock(clock), memory.WithSweepInterval(time.Minute))
		ledger, limiter, conc, logins = ml, mr, mc, memLogins
		a.closers = append(a.closers, func() { _ = ml.Close(); mr.Close(); _ = mc.Close() })
	}

	a.writer = usagewriter.New(store, usagewriter.Config{
		Capacity:      cfg.Usage.QueueSize,
		BatchSize:     cfg.Usage.BatchSize,
		FlushInterval: cfg.Usage.FlushInterval,
		Logger:        log,
		Observer:      m.UsageWriter(),
	})

	hasher := domain.NewKeyHasher(sec.keyHashSecret)
	cache := keycache.New(store, cfg.Server.KeyCacheTTL, clock)
	adminSvc, err := admin.NewService(admin.Deps{
		Keys: store, Tiers: store, Usage: store, Cache: cache,
		Ledger: ledger, Limiter: limiter, Concurrency: conc,
		Clock: clock, Hasher: hasher, Log: log,
		LoginThrottle: logins, LoginThrottleFallback: loginsFallback,
	}, admin.Config{AdminUsername: cfg.Admin.Username, AdminPasswordHash: sec.adminHash, DefaultTier: cfg.RateLimit.DefaultTier,
		MaxPasswordChecks: cfg.Admin.PasswordChecks(), LoginThrottle: admin.LoginThrottlePolicy{
			PerAddress: cfg.Admin.LoginThrottle.PerAddress, MaxBackoff: cfg.Admin.LoginThrottle.MaxBackoff,
			PerUsername: cfg.Admin.LoginThrottle.PerUsername, Global: cfg.Admin.LoginThrottle.Global,
			Window: cfg.Admin.LoginThrottle.Window, KnownAddressTTL: cfg.Admin.LoginThrottle.KnownAddressTTL,
		}})
	if err != nil {
		return nil, err
	}
	if err := adminSvc.SeedTiers(ctx, cfg.Tiers()); err != nil {
		return nil, fmt.Errorf("seeding rate-limit tiers: %w", err)
	}

	// Load the tokenizer now rather than on the first limited request, and
	// hand the garbage of loading its vocabulary back to the OS at once.
	anthropic.Warm()
	debug.FreeOSMemory()
	ups := make([]upstream.Config, 0, 1+len(cfg.Upstream.Fallbacks))
	for _, u := range cfg.Upstreams() {
		ups = append(ups, upstream.Config{Name: u.Name, URL: u.URL, APIKey: u.APIKey, Timeout: u.Timeout, MaxRetries: u.MaxRetries})
		if u.APIKey != "" {
			a.upstreamConfigured = true
		}
	}
	transport, err := upstream.New(upstream.Options{
		Upstreams:    ups,
		BaseDelay:    cfg.Upstream.RetryBase,
		Deadline:     cfg.Upstream.Deadline,
		Cooldown:     cfg.Upstream.Cooldown,
		MaxBodyBytes: cfg.Upstream.MaxBodyBytes,
		Observer:     upstreamObserver{m: m},
		Log:          log,
	})
	if err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	if !a.upstreamConfigured {
		log.Warn("UPSTREAM_API_KEY is not set: the management API works, proxied calls answer 503 until it is")
	}

	auth := relay.NewAuthenticator(hasher, cache, clock)
	estimator, err := anthropic.NewEstimator(anthropic.EstimatorConfig{
		Margin: cfg.Quota.EstimateMargin, UnsizedTokens: cfg.Quota.UnsizedTokens,
		MaxConcurrent: cfg.Quota.MaxConcurrentEstimates,
	})
	if err != nil {
		return nil, fmt.Errorf("quota estimator: %w", err)
	}
	relaySvc, err := relay.NewService(relay.ServiceConfig{
		Auth:             auth,
		Tiers:            relay.NewTierResolver(store, 2*time.Second, clock),
		Ledger:           ledger,
		Rate:             limiter,
		Concurrency:      conc,
		Usage:            a.writer,
		Clock:            clock,
		Log:              log,
		Observer:         relayObserver{m: m, log: log},
		QuotaPolicy:      policy(cfg.Quota.FailPolicy),
		RatePolicy:       policy(cfg.RateLimit.FailPolicy),
		DefaultMaxTokens: cfg.Quota.DefaultMaxTokens,
		ReservationLease: cfg.Quota.Lease,
		ConcurrencyLease: cfg.Quota.Lease,
		Parser:           anthropic.Parser{},
		Estimator:        estimator,
		Objects:          store,
		Store:            store,
		Batches:          anthropic.NewBatchClient(transport),
		BatchPoll:        cfg.Quota.BatchPoll,
		BatchLease:       cfg.Quota.BatchLease,
	})
	if err != nil {
		return nil, err
	}
	router, err := relay.NewRouter(cfg.Proxy.Passthrough)
	if err != nil {
		return nil, err
	}
	// The reconciler settles Message Batches in the background until the
	// relay closes; its state is in the store, so a restart resumes it.
	rctx, rcancel := context.WithCancel(context.WithoutCancel(ctx))
	rdone := make(chan struct{})
	go func() { defer close(rdone); relaySvc.RunBatchReconciler(rctx) }()
	a.closers = append(a.closers, func() { rcancel(); <-rdone })

	trusted, err := domain.ParsePrefixes(cfg.Server.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("server.trusted_proxies: %w", err)
	}
	adminIPs, err := domain.ParsePrefixes(cfg.Admin.AllowedIPs)
	if err != nil {
		return nil, fmt.Errorf("admin.allowed_ips (ADMIN_ALLOWED_IPS): %w", err)
	}
	clientIP := httpx.NewClientIPResolver(trusted)
	dataPlane := proxy.New(proxy.Options{
		Service:          relaySvc,
		Transport:        transport,
		ClientIP:         clientIP,
		Log:              log,
		MaxBodyBytes:     cfg.Upstream.MaxBodyBytes,
		MaxBufferedBytes: cfg.Upstream.MaxBufferedBytes,
		IdleTimeout:      cfg.Upstream.IdleTimeout,
		WriteTimeout:     cfg.Server.WriteProgressTimeout,
		BodyReadTimeout:  cfg.Server.BodyReadTimeout,
		BodyMinRate:      bodyMinRate(cfg.Server.BodyMinRate),
		Observer:         proxyObserver{m: m},
		Router:           router,

		CORSAllowedOrigins: cfg.CORS.AllowedOrigins,
	})

	m.SetQuotaSource(quotaSource(store, cfg.Metrics.MaxKeys))
	// With a metrics address of its own, /metrics is served there alone.
	publicMetrics := m.Handler(cfg.Metrics.Token)
	if cfg.Metrics.ListenAddr != "" {
		a.metricsHandler, publicMetrics = publicMetrics, nil
	}
	srv, err := httpadapter.New(httpadapter.Options{
		Log:             log,
		Admin:           adminSvc,
		Auth:            auth,
		ClientIP:        clientIP,
		Proxy:           dataPlane,
		MetricsHandler:  publicMetrics,
		Ready:           a.ready,
		JWT:             httpadapter.JWTOptions{Secret: sec.jwtKey, TTL: cfg.Admin.TokenTTL},
		BodyReadTimeout: cfg.Server.BodyReadTimeout,
		AdminUsername:   cfg.Admin.Username,
		AdminAllowedIPs: adminIPs,
		Observer:        serverObserver{m: m},
	})
	if err != nil {
		return nil, err
	}
	a.handler = a.track(srv)
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
	trusted, _ := domain.ParsePrefixes(a.cfg.Server.TrustedProxies) // validated by build
	return httpx.ConnLimits{
		Max:      a.cfg.Server.Connections(nofile.Cur),
		PerAddr:  a.cfg.Server.MaxConnectionsPerAddr,
		Exempt:   trusted,
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

// bodyMinRate maps the setting (0: off) to the proxy's option (0: default).
func bodyMinRate(v int64) int64 {
	if v == 0 {
		return -1
	}
	return v
}

func (a *app) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
}

func policy(s string) relay.FailurePolicy {
	if s == "fail_open" {
		return relay.FailOpen
	}
	return relay.FailClosed
}

// redisLogger sends go-redis's own messages (dial retries, pool notes) to
// the structured log at debug level instead of stderr.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.Log(ctx, slog.LevelDebug, "redis: "+fmt.Sprintf(format, v...))
}
