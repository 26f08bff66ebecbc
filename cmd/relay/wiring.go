package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/relaystation/relay/adapters/anthropic"
	"github.com/relaystation/relay/adapters/httpx"
	"github.com/relaystation/relay/adapters/memory"
	"github.com/relaystation/relay/adapters/proxy"
	redisadapter "github.com/relaystation/relay/adapters/redis"
	"github.com/relaystation/relay/adapters/secretbox"
	"github.com/relaystation/relay/adapters/storage"
	"github.com/relaystation/relay/adapters/upstream"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/admin"
	"github.com/relaystation/relay/domain/billing"
	"github.com/relaystation/relay/domain/pool"
	"github.com/relaystation/relay/domain/pricing"
	"github.com/relaystation/relay/domain/relay"
	"github.com/relaystation/relay/domain/upstreams"
	"github.com/relaystation/relay/ports"

	httpadapter "github.com/relaystation/relay/adapters/http"
)

// The constructors build() wires together, one concern each. Each takes its
// settings from a.cfg and registers what must be closed in a.closers.

// openStore opens and migrates the database: SQLite, or PostgreSQL when
// database_url is set.
func (a *app) openStore(ctx context.Context) error {
	store, err := storage.Open(ctx, a.cfg.DatabaseURL, a.cfg.DataDir, a.log)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	a.store = store
	a.storeKind = "sqlite"
	if a.cfg.DatabaseURL != "" {
		a.storeKind = "postgres"
	}
	a.closers = append(a.closers, func() {
		if err := store.Close(); err != nil {
			a.log.Error("closing the database", "error", err)
		}
	})
	return nil
}

// limiters are the admission backends: in memory for one replica, or in
// Redis, shared by every replica, when redis_url is set.
type limiters struct {
	ledger      ports.QuotaLedger
	budgets     ports.BudgetLedger
	rate        ports.RateLimiter
	concurrency ports.ConcurrencyLimiter
	// logins keeps the login throttle's counters; loginsFallback takes
	// over while they cannot be reached.
	logins, loginsFallback ports.LoginThrottle
}

func (a *app) newLimiters(ctx context.Context) (limiters, error) {
	// The login throttle's memory store serves alone without Redis, and
	// as the fallback while Redis is unreachable.
	memLogins, err := memory.NewLoginThrottle(a.cfg.Admin.LoginThrottle.MaxEntries, memory.WithClock(a.clock))
	if err != nil {
		return limiters{}, err
	}
	if a.cfg.RedisURL == "" {
		clock, sweep := memory.WithClock(a.clock), memory.WithSweepInterval(time.Minute)
		ml, mr, mc := memory.NewLedger(clock, sweep), memory.NewRateLimiter(clock, sweep), memory.NewConcurrencyLimiter(clock, sweep)
		mb := memory.NewBudgetLedger(clock, sweep)
		a.closers = append(a.closers, func() { _ = ml.Close(); mr.Close(); _ = mc.Close(); _ = mb.Close() })
		return limiters{ledger: ml, budgets: mb, rate: mr, concurrency: mc, logins: memLogins}, nil
	}
	rdb, err := redisadapter.NewClient(ctx, a.cfg.RedisURL, a.log)
	if err != nil {
		return limiters{}, err
	}
	a.rdb = rdb
	a.closers = append(a.closers, func() { _ = rdb.Close() })
	logs := redisadapter.WithLogger(a.log)
	return limiters{
		ledger:      redisadapter.NewLedger(rdb, logs),
		budgets:     redisadapter.NewBudgetLedger(rdb, logs),
		rate:        redisadapter.NewRateLimiter(rdb, logs),
		concurrency: redisadapter.NewConcurrencyLimiter(rdb, logs),
		logins:      redisadapter.NewLoginThrottle(rdb, logs), loginsFallback: memLogins,
	}, nil
}

// money is the price table and the money-budget ledger.
type money struct {
	prices  *billing.Prices
	budgets *billing.Budgets
}

// newMoney loads the price table (storing the embedded seed on first
// start) and keeps it fresh, and wires the budget ledger to the store it
// seeds from.
func (a *app) newMoney(ctx context.Context, lim limiters) (money, error) {
	seed, err := pricing.Seed()
	if err != nil {
		return money{}, fmt.Errorf("embedded price table: %w", err)
	}
	prices, err := billing.NewPrices(ctx, a.store, seed, a.cfg.Pricing.Policy(), a.clock, a.log)
	if err != nil {
		return money{}, fmt.Errorf("price table: %w", err)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { defer close(done); prices.RefreshEvery(rctx, a.cfg.Pricing.Refresh) }()
	a.closers = append(a.closers, func() { cancel(); <-done })
	budgets, err := billing.NewBudgets(lim.budgets, a.store, a.clock, a.cfg.Budgets.DefaultTimeZone)
	if err != nil {
		return money{}, err
	}
	a.budgets = budgets
	return money{prices: prices, budgets: budgets}, nil
}

// newAdmin builds the management use cases and seeds the rate-limit tiers.
func (a *app) newAdmin(ctx context.Context, lim limiters, m money, cache ports.KeyLookup, hasher domain.KeyHasher, adminHash string) (*admin.Service, error) {
	cfg := a.cfg
	svc, err := admin.NewService(admin.Deps{
		Keys: a.store, Tiers: a.store, Usage: a.store, Cache: cache,
		Ledger: lim.ledger, Limiter: lim.rate, Concurrency: lim.concurrency,
		Clock: a.clock, Hasher: hasher, Log: a.log,
		LoginThrottle: lim.logins, LoginThrottleFallback: lim.loginsFallback,
		Prices: m.prices, Budgets: m.budgets, Repricer: a.store,
	}, admin.Config{
		AdminUsername: cfg.Admin.Username, AdminPasswordHash: adminHash, DefaultTier: cfg.RateLimit.DefaultTier,
		MaxPasswordChecks: cfg.Admin.PasswordChecks(), LoginThrottle: cfg.Admin.LoginThrottle.Policy(),
	})
	if err != nil {
		return nil, err
	}
	if err := svc.SeedTiers(ctx, cfg.Tiers()); err != nil {
		return nil, fmt.Errorf("seeding rate-limit tiers: %w", err)
	}
	return svc, nil
}

// newTransport builds the upstream pool: the pool's decisions
// (domain/pool), the session pins (memory, or Redis with REDIS_URL, so
// replicas pin alike), the retrying transport that asks the pool, the
// registry that keeps the pool and the transport in step with the stored
// upstreams (seeded from the configuration on first start), and the
// background probe and refresh loops.
func (a *app) newTransport(ctx context.Context, sec secrets) (*upstream.Transport, *upstreams.Registry, error) {
	u := a.cfg.Upstream
	box, err := u.KeyBox(string(sec.jwtKey))
	if err != nil {
		return nil, nil, fmt.Errorf("upstream key secret: %w", err)
	}
	p, err := pool.New(pool.Config{DefaultCooldown: u.Cooldown, Clock: a.clock}, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("upstream pool: %w", err)
	}
	var pins ports.SessionPins
	if a.rdb != nil {
		pins = redisadapter.NewSessionPins(a.rdb, redisadapter.WithLogger(a.log))
	} else if pins, err = memory.NewSessionPins(memory.DefaultSessionPins, memory.WithClock(a.clock)); err != nil {
		return nil, nil, err
	}
	var reg *upstreams.Registry // set below; OnDisable fires only once traffic flows
	t, err := upstream.New(upstream.Options{
		Pool: p, Pins: pins, Timeout: u.Primary.Timeout, MaxRetries: u.Primary.MaxRetries,
		BaseDelay: u.RetryBase, Deadline: u.Deadline, MaxBodyBytes: u.MaxBodyBytes,
		Observer: upstreamObserver{m: a.metrics}, Log: a.log, Now: a.clock.Now,
		OnDisable: func(id, reason string) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := reg.PersistDisable(ctx, id, reason); err != nil {
				a.log.Error("could not store an upstream's disable; other replicas keep using it until they see its 401/403",
					"upstream", id, "error", err.Error())
			}
		},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("upstream: %w", err)
	}
	reg, err = upstreams.New(upstreams.Deps{Store: a.store, Sealer: secretbox.Sealer{Box: box}, Pool: p, Runtime: t,
		Usage: a.store, Clock: a.clock, Log: a.log})
	if err != nil {
		return nil, nil, err
	}
	if err := reg.Seed(ctx, u.Seeds()); err != nil {
		return nil, nil, fmt.Errorf("seeding upstreams: %w", err)
	}
	if err := reg.Load(ctx); err != nil {
		return nil, nil, fmt.Errorf("loading upstreams: %w", err)
	}
	a.upstreamConfigured = t.Configured()
	if !a.upstreamConfigured {
		a.log.Warn("no upstream has an API key (UPSTREAM_API_KEY, or POST /admin/upstreams): the management API works, proxied calls answer 503 until one has")
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); t.RunProbes(rctx) }()
	go func() { defer wg.Done(); reg.RefreshEvery(rctx, u.Refresh) }()
	a.closers = append(a.closers, func() { cancel(); wg.Wait() })
	return t, reg, nil
}

// newRelay builds the ForwardRequest use case: admission and settlement.
func (a *app) newRelay(auth *relay.Authenticator, lim limiters, m money, transport http.RoundTripper) (*relay.Service, error) {
	q := a.cfg.Quota
	estimator, err := anthropic.NewEstimator(anthropic.EstimatorConfig{
		Margin: q.EstimateMargin, UnsizedTokens: q.UnsizedTokens, MaxConcurrent: q.MaxConcurrentEstimates,
	})
	if err != nil {
		return nil, fmt.Errorf("quota estimator: %w", err)
	}
	return relay.NewService(relay.ServiceConfig{
		Auth: auth, Tiers: relay.NewTierResolver(a.store, relay.DefaultTierTTL, a.clock),
		Ledger: lim.ledger, Rate: lim.rate, Concurrency: lim.concurrency, Usage: a.writer,
		Clock: a.clock, Log: a.log, Observer: relayObserver{m: a.metrics},
		QuotaPolicy: q.FailPolicy, RatePolicy: a.cfg.RateLimit.FailPolicy,
		DefaultMaxTokens: q.DefaultMaxTokens, ReservationLease: q.Lease, ConcurrencyLease: q.Lease,
		Parser: anthropic.Parser{}, Estimator: estimator, Objects: a.store,
		Store: a.store, Batches: anthropic.NewBatchClient(transport), BatchPoll: q.BatchPoll, BatchLease: q.BatchLease,
		Prices: m.prices, Budgets: m.budgets,
	})
}

// newDataPlane builds the proxy handler.
func (a *app) newDataPlane(svc *relay.Service, transport http.RoundTripper, clientIP *httpx.ClientIPResolver) (http.Handler, error) {
	router, err := relay.NewRouter(a.cfg.Proxy.Passthrough)
	if err != nil {
		return nil, err
	}
	s, u := a.cfg.Server, a.cfg.Upstream
	return proxy.New(proxy.Options{
		Service: svc, Transport: transport, ClientIP: clientIP, Log: a.log, AccessLog: a.accessLog, Router: router,
		MaxBodyBytes: u.MaxBodyBytes, MaxBufferedBytes: u.MaxBufferedBytes, IdleTimeout: u.IdleTimeout,
		WriteTimeout: s.WriteProgressTimeout, BodyReadTimeout: s.BodyReadTimeout, BodyMinRate: bodyMinRate(s.BodyMinRate),
		Observer: proxyObserver{m: a.metrics}, CORSAllowedOrigins: a.cfg.CORS.AllowedOrigins,
	}), nil
}

// bodyMinRate maps the setting (0: off) to the proxy's option (0: default).
func bodyMinRate(v int64) int64 {
	if v == 0 {
		return -1
	}
	return v
}

// newServer builds the HTTP front: the management API, the dashboard and
// metrics, with the proxy behind them.
func (a *app) newServer(adminSvc *admin.Service, ups *upstreams.Registry, auth *relay.Authenticator, clientIP *httpx.ClientIPResolver,
	dataPlane http.Handler, jwtKey []byte) (http.Handler, error) {
	a.metrics.SetQuotaSource(quotaSource(a.store, a.cfg.Metrics.MaxKeys))
	a.metrics.SetBudgetSource(budgetSource(a.store, a.budgets, a.clock, a.cfg.Metrics.MaxKeys))
	// With a metrics address of its own, /metrics is served there alone.
	publicMetrics := a.metrics.Handler(a.cfg.Metrics.Token)
	if a.cfg.Metrics.ListenAddr != "" {
		a.metricsHandler, publicMetrics = publicMetrics, nil
	}
	return httpadapter.New(httpadapter.Options{
		Log: a.log, Admin: adminSvc, Upstreams: ups, Auth: auth, ClientIP: clientIP, Proxy: dataPlane,
		MetricsHandler: publicMetrics, Ready: a.ready, Observer: serverObserver{m: a.metrics},
		JWT:           httpadapter.JWTOptions{Secret: jwtKey, TTL: a.cfg.Admin.TokenTTL},
		AdminUsername: a.cfg.Admin.Username, AdminAllowedIPs: a.cfg.Admin.AllowedIPs,
		BodyReadTimeout: a.cfg.Server.BodyReadTimeout,
	})
}

// startReconciler settles Message Batches in the background until the
// relay closes; its state is in the store, so a restart resumes it.
func (a *app) startReconciler(ctx context.Context, svc *relay.Service) {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { defer close(done); svc.RunBatchReconciler(rctx) }()
	a.closers = append(a.closers, func() { cancel(); <-done })
}
