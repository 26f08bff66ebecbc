// Package metrics is the relay's Prometheus instrumentation. Every collector
// is registered once, in New, on a registry the package owns; the rest of the
// relay calls typed methods on *Metrics and never touches prometheus types,
// so every label stays bounded:
//
//   - route_class, status_class, stream, type, outcome, reason and kind are
//     closed sets; an unknown reason or kind is counted as "other";
//   - model goes through NormalizeModel;
//   - upstream names come from configuration and are capped
//     (Options.MaxUpstreams) in case they do not;
//   - token_quota_usage_ratio exports at most Options.MaxQuotaKeys keys, and
//     relay_budget_usage_ratio at most Options.MaxQuotaKeys key and window
//     series; window and cost class are closed sets.
//
// Hot-path methods resolve label children once and cache them, so a proxied
// request's observations cost no allocation (see BenchmarkObserveProxy).
//
// Every method is safe on a nil *Metrics, which records nothing: tests and
// tools can pass nil instead of building a registry.
package metrics

import (
	"runtime"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/relaystation/relay/domain"
)

// Histogram buckets, in seconds.
var (
	// DurationBuckets span a 5 ms count_tokens call to a 10-minute stream.
	DurationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600}
	// TTFBBuckets: the first byte comes after the upstream's queueing and
	// prompt processing, from milliseconds to about a minute for huge prompts.
	TTFBBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60}
	// FlushBuckets suit a batched INSERT: a millisecond to a slow 10 s.
	FlushBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
)

// Token types, the values of tokens_used_total's type label.
const (
	TokenInput         = "input"
	TokenOutput        = "output"
	TokenCacheCreation = "cache_creation"
	TokenCacheRead     = "cache_read"
)

// Upstream attempt outcomes (relay_upstream_attempts_total{outcome}).
const (
	OutcomeSuccess     = "success"      // a 2xx/3xx response
	OutcomeClientError = "client_error" // a 4xx other than 429, passed through
	OutcomeRateLimited = "rate_limited" // 429
	OutcomeOverloaded  = "overloaded"   // 529
	OutcomeServerError = "server_error" // other 5xx
	OutcomeTimeout     = "timeout"      // no answer within the deadline
	OutcomeNetwork     = "network"      // connect/reset/TLS failure
	OutcomeCanceled    = "canceled"     // the client went away first
)

// Retry reasons (relay_upstream_retries_total{reason}).
const (
	RetryRateLimited = "rate_limited"
	RetryOverloaded  = "overloaded"
	RetryServerError = "server_error"
	RetryTimeout     = "timeout"
	RetryNetwork     = "network"
)

// Rejection reasons (relay_rejections_total{reason}): requests the relay
// refused before or instead of going upstream.
const (
	RejectRateLimitRequests = "rate_limit_requests"
	RejectRateLimitTokens   = "rate_limit_tokens"
	RejectConcurrency       = "concurrency"
	RejectQuota             = "quota"
	RejectBudget            = "budget"     // one of the key's money budgets
	RejectModel             = "model"      // a model outside the key's allowed_models
	RejectUnpriced          = "unpriced"   // a model without a price, on a key with a budget
	RejectOverloaded        = "overloaded" // relay-wide: usage queue saturated, too many in flight
	RejectTooLarge          = "too_large"
	RejectInvalid           = "invalid"
	RejectUpstreamMissing   = "upstream_not_configured"
)

// Authentication failure kinds (relay_auth_failures_total{kind}).
const (
	AuthMissing    = "missing"     // no key on a proxied request
	AuthMalformed  = "malformed"   // not shaped like a relay key
	AuthUnknown    = "unknown"     // no such key
	AuthDisabled   = "disabled"    // key disabled
	AuthExpired    = "expired"     // key past expires_at
	AuthDeleted    = "deleted"     // key deleted
	AuthIP         = "ip"          // client IP outside the key's allow-list
	AuthOrigin     = "origin"      // Origin/Referer outside the key's allowed_domains
	AuthAdminLogin = "admin_login" // wrong admin username or password
	AuthAdminJWT   = "admin_jwt"   // missing, invalid or expired admin token
	AuthAdminIP    = "admin_ip"    // client outside admin.allowed_ips
)

var (
	outcomes     = []string{OutcomeSuccess, OutcomeClientError, OutcomeRateLimited, OutcomeOverloaded, OutcomeServerError, OutcomeTimeout, OutcomeNetwork, OutcomeCanceled}
	retryReasons = []string{RetryRateLimited, RetryOverloaded, RetryServerError, RetryTimeout, RetryNetwork}
	rejections   = []string{RejectRateLimitRequests, RejectRateLimitTokens, RejectConcurrency, RejectQuota, RejectBudget, RejectModel, RejectUnpriced, RejectOverloaded, RejectTooLarge, RejectInvalid, RejectUpstreamMissing}
	// backendConcerns are the admission checks whose backend can fail.
	backendConcerns = []string{"requests", "tokens", "concurrency", "quota", "budget", "usage"}
	authKinds       = []string{AuthMissing, AuthMalformed, AuthUnknown, AuthDisabled, AuthExpired, AuthDeleted, AuthIP, AuthOrigin, AuthAdminLogin, AuthAdminJWT, AuthAdminIP}
	connLimits      = []string{ConnLimitGlobal, ConnLimitPerAddress}
)

// refusal is where a domain.Reason is counted: a kind of
// relay_auth_failures_total when auth is set, else a reason of
// relay_rejections_total.
type refusal struct {
	label string
	auth  bool
}

// refusals maps the domain's closed set of reasons onto the closed label
// sets. A reason not listed (a malformed body, an object the key does not
// own, ...) is counted as a rejection of reason "other".
var refusals = map[domain.Reason]refusal{
	domain.ReasonKeyMissing:  {AuthMissing, true},
	domain.ReasonKeyUnknown:  {AuthUnknown, true},
	domain.ReasonKeyDisabled: {AuthDisabled, true},
	domain.ReasonKeyExpired:  {AuthExpired, true},
	domain.ReasonKeyDeleted:  {AuthDeleted, true},
	domain.ReasonKeyIP:       {AuthIP, true},
	domain.ReasonKeyOrigin:   {AuthOrigin, true},
	domain.ReasonLogin:       {AuthAdminLogin, true},
	domain.ReasonAdminToken:  {AuthAdminJWT, true},
	domain.ReasonAdminIP:     {AuthAdminIP, true},

	domain.ReasonRequests:              {RejectRateLimitRequests, false},
	domain.ReasonTokens:                {RejectRateLimitTokens, false},
	domain.ReasonConcurrency:           {RejectConcurrency, false},
	domain.ReasonQuota:                 {RejectQuota, false},
	domain.ReasonBudget:                {RejectBudget, false},
	domain.ReasonKeyModel:              {RejectModel, false},
	domain.ReasonUnpriced:              {RejectUnpriced, false},
	domain.ReasonBudgetBackend:         {RejectOverloaded, false},
	domain.ReasonUsageQueue:            {RejectOverloaded, false},
	domain.ReasonRequestsBackend:       {RejectOverloaded, false},
	domain.ReasonTokensBackend:         {RejectOverloaded, false},
	domain.ReasonConcurrencyBackend:    {RejectOverloaded, false},
	domain.ReasonQuotaBackend:          {RejectOverloaded, false},
	domain.ReasonEstimator:             {RejectOverloaded, false},
	domain.ReasonBuffers:               {RejectOverloaded, false},
	domain.ReasonUpstreamNotConfigured: {RejectUpstreamMissing, false},
}

// Options tune New. The zero value is ready to use.
type Options struct {
	// MaxQuotaKeys caps the keys token_quota_usage_ratio exports (default
	// DefaultMaxQuotaKeys). Each key is one series. It caps
	// relay_budget_usage_ratio separately, where each key and window is one
	// series.
	MaxQuotaKeys int
	// QuotaKeyNames adds the key_name label to token_quota_usage_ratio and
	// relay_budget_usage_ratio (off by default: names identify people).
	QuotaKeyNames bool
	// MaxUpstreams caps distinct upstream label values (default 32); later
	// names are counted as "other".
	MaxUpstreams int
	// Version is exported as relay_build_info{version}.
	Version string
	// NoRuntimeCollectors leaves out the Go runtime and process collectors
	// (for tests that compare whole expositions).
	NoRuntimeCollectors bool
}

// Metrics holds every collector the relay exports.
type Metrics struct {
	reg   *prometheus.Registry
	names []string // families this package defines

	requests    *prometheus.CounterVec
	requestRows *childCache[string, *counterRow[prometheus.Counter]] // by model; cell route*numStatusClasses+class

	durations [numStatusClasses][2]prometheus.Observer // [status class][stream]
	ttfb      prometheus.Histogram

	tokens    *prometheus.CounterVec
	tokenKids *childCache[string, *[4]prometheus.Counter] // by model label

	quota  *quotaCollector
	budget *budgetCollector

	costRows    *childCache[string, *costRow] // by model label
	costClasses [len(costClasses)]prometheus.Counter

	upstreams        *nameSet
	upstreamRows     *childCache[string, *upstreamRow] // by canonical upstream name
	upstreamFailover *childCache[pair, prometheus.Counter]
	pool             *upstreamPool

	rejections   map[string]prometheus.Counter
	authFailures map[string]prometheus.Counter
	// backendFailures[open] by concern: a limiter or ledger backend (Redis)
	// did not answer, and the request went on (open) or was refused.
	backendFailures [2]map[string]prometheus.Counter

	inflight    prometheus.Gauge
	openStreams prometheus.Gauge
	openConns   prometheus.Gauge
	connRefused map[string]prometheus.Counter
	ready       *prometheus.GaugeVec // no labels: exported only after the first SetReady

	usage *UsageWriterObserver
}

// upstreamRow holds one upstream's attempt counters (one cell per outcome,
// then "other"), retry counters (likewise per reason), and the pool's pick
// and skip counters (per why, per skip reason).
type upstreamRow struct {
	// tokens by input-side class (input, cache_creation, cache_read), for
	// each upstream's cache hit rate.
	tokens   [3]prometheus.Counter
	attempts *counterRow[prometheus.Counter]
	retries  *counterRow[prometheus.Counter]
	picks    *counterRow[prometheus.Counter]
	skips    *counterRow[prometheus.Counter]
}

type pair struct{ a, b string }

// New builds the relay's metrics on a fresh registry (see Registry).
func New(opts Options) *Metrics {
	if opts.MaxQuotaKeys <= 0 {
		opts.MaxQuotaKeys = DefaultMaxQuotaKeys
	}
	if opts.MaxUpstreams <= 0 {
		opts.MaxUpstreams = 32
	}
	m := &Metrics{reg: prometheus.NewRegistry()}

	m.requests = m.counterVec("relay_requests_total",
		"Requests answered, by route class, status class and normalised model.",
		"route_class", "status_class", "model")
	m.requestRows = newChildCache(func(model string) *counterRow[prometheus.Counter] {
		return newCounterRow(int(numRouteClasses)*numStatusClasses, func(i int) *prometheus.Counter {
			c := m.requests.WithLabelValues(routeClassNames[i/numStatusClasses], statusClassNames[i%numStatusClasses], model)
			return &c
		})
	})

	dur := m.histogramVec("proxy_duration_seconds",
		"Time from receiving a proxied request to the end of its response (a stream's last byte).",
		DurationBuckets, "status_class", "stream")
	for i, class := range statusClassNames {
		m.durations[i][0] = dur.WithLabelValues(class, "no")
		m.durations[i][1] = dur.WithLabelValues(class, "yes")
	}
	m.ttfb = m.histogram("proxy_time_to_first_byte_seconds",
		"Time from receiving a proxied request to writing the first response byte.", TTFBBuckets)

	m.tokens = m.counterVec("tokens_used_total",
		"Tokens the upstream reported, by type and normalised model.", "type", "model")
	m.tokenKids = newChildCache(func(model string) *[4]prometheus.Counter {
		return &[4]prometheus.Counter{
			m.tokens.WithLabelValues(TokenInput, model),
			m.tokens.WithLabelValues(TokenOutput, model),
			m.tokens.WithLabelValues(TokenCacheCreation, model),
			m.tokens.WithLabelValues(TokenCacheRead, model),
		}
	})

	m.quota = newQuotaCollector(opts.MaxQuotaKeys, opts.QuotaKeyNames,
		m.counter("relay_quota_keys_dropped_total",
			"Quota updates and source entries not exported because Options.MaxQuotaKeys keys already are."),
		m.counter("relay_quota_source_errors_total",
			"Scrapes whose QuotaSource failed; pushed values were exported instead."))
	m.register("token_quota_usage_ratio", m.quota)

	// The budget collector exports its own two counters, after the scrape
	// that changed them: registered apart, a scrape could collect them
	// before the collector has counted that scrape.
	m.budget = newBudgetCollector(opts.MaxQuotaKeys, opts.QuotaKeyNames,
		prometheus.NewCounter(prometheus.CounterOpts{Name: "relay_budget_keys_dropped_total",
			Help: "Budget series (key and window) not exported because Options.MaxQuotaKeys already are, counted on each scrape."}),
		prometheus.NewCounter(prometheus.CounterOpts{Name: "relay_budget_source_errors_total",
			Help: "Scrapes whose BudgetSource failed; the previous scrape's values were exported instead."}))
	m.register("relay_budget_usage_ratio", m.budget)
	m.names = append(m.names, "relay_budget_keys_dropped_total", "relay_budget_source_errors_total")

	cost := m.counterVec("relay_cost_usd_total",
		"What requests cost in USD at the price table's rates, by normalised model. Tokens without a price are not in it (see relay_unpriced_requests_total).",
		"model")
	unpriced := m.counterVec("relay_unpriced_requests_total",
		"Requests with tokens of a model the price table has no price for (their cost is missing from relay_cost_usd_total), by normalised model.",
		"model")
	m.costRows = newChildCache(func(model string) *costRow {
		return &costRow{usd: cost.WithLabelValues(model), unpriced: unpriced.WithLabelValues(model)}
	})
	byClass := m.counterVec("relay_cost_usd_by_class_total",
		"What requests cost in USD, by price class (input, output, cache writes of 5m and 1h, cache reads, web search, web fetch).",
		"class")
	for i, class := range costClasses {
		m.costClasses[i] = byClass.WithLabelValues(class)
	}

	m.upstreams = newNameSet(opts.MaxUpstreams)
	attempts := m.counterVec("relay_upstream_attempts_total",
		"Upstream attempts (the first try and every retry), by upstream and outcome.", "upstream", "outcome")
	retries := m.counterVec("relay_upstream_retries_total",
		"Retries of an upstream request, by the upstream retried and why.", "upstream", "reason")
	picks := m.counterVec("relay_upstream_picks_total",
		"Upstreams chosen by the pool, by why: affinity (the object's upstream), pinned (the session's pin kept), moved (the pin could not be kept), balanced (no pin).",
		"upstream", "why")
	skips := m.counterVec("relay_upstream_skips_total",
		"Upstreams a pick passed over, by reason (cooling, disabled, low_headroom, lower_priority, ...).", "upstream", "reason")
	upTokens := m.counterVec("relay_upstream_input_tokens_total",
		"Input-side tokens each upstream served, by type (input, cache_creation, cache_read): its cache hit rate is cache_read over all three.",
		"upstream", "type")
	m.upstreamRows = newChildCache(func(upstream string) *upstreamRow {
		return &upstreamRow{
			tokens: [3]prometheus.Counter{upTokens.WithLabelValues(upstream, "input"),
				upTokens.WithLabelValues(upstream, "cache_creation"), upTokens.WithLabelValues(upstream, "cache_read")},
			picks: newCounterRow(len(pickWhys)+1, func(i int) *prometheus.Counter {
				c := picks.WithLabelValues(upstream, closedAt(pickWhys, i))
				return &c
			}),
			skips: newCounterRow(len(skipReasons)+1, func(i int) *prometheus.Counter {
				c := skips.WithLabelValues(upstream, closedAt(skipReasons, i))
				return &c
			}),
			attempts: newCounterRow(len(outcomes)+1, func(i int) *prometheus.Counter {
				c := attempts.WithLabelValues(upstream, closedAt(outcomes, i))
				return &c
			}),
			retries: newCounterRow(len(retryReasons)+1, func(i int) *prometheus.Counter {
				c := retries.WithLabelValues(upstream, closedAt(retryReasons, i))
				return &c
			}),
		}
	})
	failovers := m.counterVec("relay_upstream_failovers_total",
		"Requests moved from one upstream to another.", "from", "to")
	m.upstreamFailover = newChildCache(func(p pair) prometheus.Counter { return failovers.WithLabelValues(p.a, p.b) })
	m.newUpstreamPool()

	m.rejections = m.closedCounters("relay_rejections_total",
		"Requests refused by the relay itself, by reason.", "reason", rejections)
	backendVec := m.counterVec("relay_backend_failures_total",
		"Limiter or ledger backend (Redis) failures during admission, by concern and the policy applied.", "concern", "policy")
	for i, policy := range []string{"fail_closed", "fail_open"} {
		m.backendFailures[i] = make(map[string]prometheus.Counter, len(backendConcerns)+1)
		for _, c := range append(slices.Clone(backendConcerns), classOther) {
			m.backendFailures[i][c] = backendVec.WithLabelValues(c, policy)
		}
	}
	m.authFailures = m.closedCounters("relay_auth_failures_total",
		"Authentication and authorisation failures, by kind.", "kind", authKinds)

	m.inflight = m.gauge("relay_inflight_requests", "Proxied requests being handled now.")
	m.openStreams = m.gauge("relay_open_streams", "Streaming responses being relayed now.")
	m.openConns = m.gauge("relay_open_connections", "Client connections open now on the public listener.")
	m.connRefused = m.closedCounters("relay_connections_refused_total",
		"Client connections refused at accept because a connection limit was full, by limit.", "limit", connLimits)
	m.ready = m.gaugeVec("relay_ready", "1 when the last readiness check passed, 0 otherwise; absent until the first check.")

	m.usage = &UsageWriterObserver{
		depth: m.gauge("relay_usage_queue_depth", "Usage records waiting to be written."),
		flush: m.histogram("relay_usage_flush_duration_seconds",
			"Time to write one batch of usage records, successful or not.", FlushBuckets),
		errors:  m.counter("relay_usage_write_errors_total", "Usage batches whose write failed."),
		written: m.counter("relay_usage_records_written_total", "Usage records written to storage."),
		dropped: m.counter("relay_usage_records_dropped_total",
			"Usage records lost: refused by a full queue or abandoned after the final retry."),
	}

	if opts.Version == "" {
		opts.Version = "unknown"
	}
	info := m.gaugeVec("relay_build_info", "Always 1; labels carry the build.", "version", "goversion")
	info.WithLabelValues(opts.Version, runtime.Version()).Set(1)

	if !opts.NoRuntimeCollectors {
		m.reg.MustRegister(
			collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		)
	}
	slices.Sort(m.names)
	return m
}

// Registry is the registry every collector is registered on, for the
// /metrics handler and for tests.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// MetricNames lists every metric family the relay defines, sorted, without
// the Go runtime and process families (go_*, process_*), which come from
// client_golang. Histograms are listed by their base name; their series are
// <name>_bucket, <name>_sum and <name>_count.
func (m *Metrics) MetricNames() []string { return slices.Clone(m.names) }

// ObserveRequest counts one answered request in relay_requests_total. model
// is the requested model as the client sent it ("" when there is none).
func (m *Metrics) ObserveRequest(route RouteClass, status int, model string) {
	if m == nil {
		return
	}
	if route >= numRouteClasses {
		route = RouteAPI
	}
	m.countRequest(route, statusClassIndex(status), NormalizeModel(model))
}

// ProxyResult is what the proxy knows once a response is finished.
type ProxyResult struct {
	// Upstream is the id of the upstream that served it, "" when none did.
	Upstream string
	Status   int
	Model    string // as requested; normalised here
	Stream   bool
	Duration time.Duration // receipt to last byte
	TTFB     time.Duration // receipt to first byte; zero when none was written
	Usage    domain.Usage
}

// ObserveProxy records a finished proxied request: relay_requests_total,
// proxy_duration_seconds, proxy_time_to_first_byte_seconds and
// tokens_used_total, normalising the model once.
func (m *Metrics) ObserveProxy(r ProxyResult) {
	if m == nil {
		return
	}
	model := NormalizeModel(r.Model)
	sc := statusClassIndex(r.Status)
	m.countRequest(RouteProxy, sc, model)
	stream := 0
	if r.Stream {
		stream = 1
	}
	m.durations[sc][stream].Observe(r.Duration.Seconds())
	if r.TTFB > 0 {
		m.ttfb.Observe(r.TTFB.Seconds())
	}
	m.addTokens(model, r.Usage)
	if u := r.Usage; r.Upstream != "" && (u.InputTokens != 0 || u.CacheCreationInputTokens != 0 || u.CacheReadInputTokens != 0) {
		row := m.upstreamRows.get(m.upstreams.canon(r.Upstream))
		row.tokens[0].Add(float64(u.InputTokens))
		row.tokens[1].Add(float64(u.CacheCreationInputTokens))
		row.tokens[2].Add(float64(u.CacheReadInputTokens))
	}
}

func (m *Metrics) countRequest(route RouteClass, statusClass int, model string) {
	(*m.requestRows.get(model).get(int(route)*numStatusClasses + statusClass)).Inc()
}

// ObserveTTFB records a time to first byte on its own, for callers that
// report it as soon as the byte is written rather than in ObserveProxy.
func (m *Metrics) ObserveTTFB(d time.Duration) {
	if m == nil {
		return
	}
	m.ttfb.Observe(d.Seconds())
}

// AddTokens adds a response's usage to tokens_used_total.
func (m *Metrics) AddTokens(model string, u domain.Usage) {
	if m == nil {
		return
	}
	m.addTokens(NormalizeModel(model), u)
}

func (m *Metrics) addTokens(model string, u domain.Usage) {
	if u == (domain.Usage{}) {
		return
	}
	c := m.tokenKids.get(model)
	for i, n := range [4]int64{u.InputTokens, u.OutputTokens, u.CacheCreationInputTokens, u.CacheReadInputTokens} {
		if n > 0 {
			c[i].Add(float64(n))
		}
	}
}

// SetKeyQuota records a limited key's quota use for token_quota_usage_ratio.
// A limit <= 0 (the key has no limit) removes the key instead.
func (m *Metrics) SetKeyQuota(id uuid.UUID, name string, used, limit int64) {
	if m == nil {
		return
	}
	m.quota.set(KeyQuota{ID: id, Name: name, Used: used, Limit: limit})
}

// DeleteKeyQuota stops exporting a key: call it when a key is deleted,
// disabled or loses its limit.
func (m *Metrics) DeleteKeyQuota(id uuid.UUID) {
	if m == nil {
		return
	}
	m.quota.delete(id)
}

// SetQuotaSource makes every scrape ask src for current quota use instead of
// exporting pushed values (nil goes back to pushed values). See quotaCollector.
func (m *Metrics) SetQuotaSource(src QuotaSource) {
	if m == nil {
		return
	}
	m.quota.setSource(src)
}

// SetBudgetSource makes every scrape ask src for current budget use, for
// relay_budget_usage_ratio (nil stops exporting it). See budgetCollector.
func (m *Metrics) SetBudgetSource(src BudgetSource) {
	if m == nil {
		return
	}
	m.budget.setSource(src)
}

// UpstreamAttempt counts one attempt against upstream (the first try or a
// retry) with its outcome, one of the Outcome* constants; anything else is
// counted as "other".
func (m *Metrics) UpstreamAttempt(upstream, outcome string) {
	if m == nil {
		return
	}
	(*m.upstreamRows.get(m.upstreams.canon(upstream)).attempts.get(closedIndex(outcomes, outcome))).Inc()
}

// UpstreamRetry counts a retry of upstream, for reason (a Retry* constant).
func (m *Metrics) UpstreamRetry(upstream, reason string) {
	if m == nil {
		return
	}
	(*m.upstreamRows.get(m.upstreams.canon(upstream)).retries.get(closedIndex(retryReasons, reason))).Inc()
}

// UpstreamFailover counts a request moved from one upstream to another.
func (m *Metrics) UpstreamFailover(from, to string) {
	if m == nil {
		return
	}
	m.upstreamFailover.get(pair{m.upstreams.canon(from), m.upstreams.canon(to)}).Inc()
}

// BackendFailure counts a limiter or ledger backend failure during
// admission; failOpen says whether the request went on without the check.
func (m *Metrics) BackendFailure(concern string, failOpen bool) {
	if m == nil {
		return
	}
	i := 0
	if failOpen {
		i = 1
	}
	lookupOther(m.backendFailures[i], concern).Inc()
}

// Rejected counts a request the relay refused, by reason: a Reject* constant,
// or a domain reason that maps onto a rejection (see Refused). Unknown
// reasons are counted as "other".
func (m *Metrics) Rejected(reason string) {
	if m == nil {
		return
	}
	if r, ok := refusals[domain.Reason(reason)]; ok && !r.auth {
		reason = r.label
	}
	lookupOther(m.rejections, reason).Inc()
}

// Refused counts a refusal by its domain reason, through the one mapping of
// reasons onto labels: a refused key or admin credential is an
// authentication failure, anything else a rejection ("other" when the
// reason has no label of its own).
func (m *Metrics) Refused(r domain.Reason) {
	if m == nil {
		return
	}
	to := refusals[r]
	if to.auth {
		lookupOther(m.authFailures, to.label).Inc()
		return
	}
	lookupOther(m.rejections, to.label).Inc()
}

// AuthFailed counts an authentication or authorisation failure of kind, an
// Auth* constant; unknown kinds are counted as "other".
func (m *Metrics) AuthFailed(kind string) {
	if m == nil {
		return
	}
	lookupOther(m.authFailures, kind).Inc()
}

// The connection limits a refused connection can name.
const (
	ConnLimitGlobal     = "global"
	ConnLimitPerAddress = "per_address"
)

// ConnectionRefused counts a connection refused at accept by limit, a
// ConnLimit* constant.
func (m *Metrics) ConnectionRefused(limit string) {
	if m != nil {
		lookupOther(m.connRefused, limit).Inc()
	}
}

// SetOpenConnections publishes the number of open client connections.
func (m *Metrics) SetOpenConnections(n int64) {
	if m != nil {
		m.openConns.Set(float64(n))
	}
}

// RequestStarted and RequestFinished bracket a proxied request for
// relay_inflight_requests.
func (m *Metrics) RequestStarted() {
	if m != nil {
		m.inflight.Inc()
	}
}

// RequestFinished: see RequestStarted.
func (m *Metrics) RequestFinished() {
	if m != nil {
		m.inflight.Dec()
	}
}

// StreamOpened and StreamClosed bracket a streamed response for
// relay_open_streams.
func (m *Metrics) StreamOpened() {
	if m != nil {
		m.openStreams.Inc()
	}
}

// StreamClosed: see StreamOpened.
func (m *Metrics) StreamClosed() {
	if m != nil {
		m.openStreams.Dec()
	}
}

// SetReady publishes the outcome of the latest readiness check as
// relay_ready. The /ready handler (or a periodic check) calls it; until the
// first call the gauge is absent rather than 0, so the RelayNotReady alert
// does not fire on a relay nobody has probed yet.
func (m *Metrics) SetReady(ok bool) {
	if m == nil {
		return
	}
	g := m.ready.WithLabelValues()
	if ok {
		g.Set(1)
	} else {
		g.Set(0)
	}
}

// UsageWriter returns the observer the async usage writer reports to.
func (m *Metrics) UsageWriter() *UsageWriterObserver {
	if m == nil {
		return nil
	}
	return m.usage
}

// closedIndex returns v's index in set, or len(set) (standing for "other").
// set is tiny, so a scan beats a map.
func closedIndex(set []string, v string) int {
	for i, s := range set {
		if s == v {
			return i
		}
	}
	return len(set)
}

// closedAt is the label value at index i of closedIndex's result.
func closedAt(set []string, i int) string {
	if i < len(set) {
		return set[i]
	}
	return classOther
}

func lookupOther(m map[string]prometheus.Counter, k string) prometheus.Counter {
	if c, ok := m[k]; ok {
		return c
	}
	return m[classOther]
}

// Registration helpers: each registers once and remembers the family name.

func (m *Metrics) register(name string, c prometheus.Collector) {
	m.reg.MustRegister(c)
	m.names = append(m.names, name)
}

func (m *Metrics) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	m.register(name, c)
	return c
}

func (m *Metrics) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	m.register(name, c)
	return c
}

func (m *Metrics) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	m.register(name, g)
	return g
}

func (m *Metrics) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	m.register(name, g)
	return g
}

func (m *Metrics) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
	m.register(name, h)
	return h
}

func (m *Metrics) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	m.register(name, h)
	return h
}

// closedCounters registers a counter vector over a closed label set plus
// "other", pre-creating every child so each series is exported from the
// start (rate() then sees the first increment) and lookups never allocate.
func (m *Metrics) closedCounters(name, help, label string, values []string) map[string]prometheus.Counter {
	vec := m.counterVec(name, help, label)
	out := make(map[string]prometheus.Counter, len(values)+1)
	for _, v := range append(slices.Clone(values), classOther) {
		out[v] = vec.WithLabelValues(v)
	}
	return out
}
