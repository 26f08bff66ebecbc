// Package upstream is the relay's driven side towards Anthropic: an
// http.RoundTripper that sends each request to the upstream the pool
// (domain/pool) picks, swaps in that upstream's key, retries retryable
// failures with backoff and fails over to the next upstream the pool picks.
// The pool decides; this package does the I/O: it reads and renews session
// pins (ports.SessionPins), takes an upstream's in-flight slot, sends, and
// reports every outcome back to the pool (Observe), whose changes of state
// it logs and hands to the Observer. RunProbes sends the probes the pool
// asks for.
//
// All retrying happens inside RoundTrip, before a response is handed back,
// so no retry can ever follow a byte that reached the client. As Caddy's
// reverse proxy does, a request is sent again (to the same upstream or
// another) only when that is safe: it was never written (the dial, the TLS
// handshake or the write of the request failed, as net/http/httptrace
// reports); or the upstream answered with a status saying it did no work
// (429 with a retry-after and no spend limit named, 529, 500, 502, 503,
// 504) and not x-should-retry: false; or its method is idempotent (GET,
// HEAD, OPTIONS). A POST that was written and then timed out or lost its
// connection is never sent again, to any upstream: the upstream may be
// doing, and billing, the work. Info.Written tells the caller so.
//
// After a retryable failure the next attempt goes to another upstream the
// pool picks (the ones already tried excluded), else to the same upstream
// again while it has retries left (Config.MaxRetries), else to any upstream
// already tried that has some left. Retrying an upstream already tried
// waits a backoff, or its retry-after.
//
// Within one attempt net/http may itself resend a request whose reused
// keep-alive connection failed: when nothing was written, or after a write
// when the method is idempotent or the client sent an Idempotency-Key
// header, declaring the request safe to repeat.
package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/pool"
	"github.com/relaystation/relay/domain/relay"
	"github.com/relaystation/relay/ports"
)

// Config is one upstream of Options.Upstreams.
type Config struct {
	// ID names the upstream in the pool, pins and records; default Name.
	ID string
	// Name labels the upstream in metrics and logs, e.g. "primary".
	Name string
	// URL is the base URL, e.g. https://api.anthropic.com. A trailing /v1
	// is dropped, since client paths already start with /v1.
	URL string
	// APIKey is sent as x-api-key. It never appears in errors or logs.
	APIKey string
	// Timeout bounds the wait for response headers of one attempt (not the
	// body: streams are long). Default DefaultTimeout.
	// A written request that reaches it is not retried.
	Timeout time.Duration
	// MaxRetries is how many times this upstream may be retried within one
	// request after a retryable failure. Negative means 0; default 3 is the
	// config loader's job.
	MaxRetries int
}

// Options configures a Transport.
type Options struct {
	// Pool decides which upstream serves each request. It is shared with
	// whoever manages the upstreams (their SetUpstreams and Enable), and
	// its ids must match the endpoints given to Apply. When nil, New
	// builds a pool of Upstreams: ids from Config.ID (default Name), each
	// upstream its own priority tier in list order (the primary first, then
	// the fallbacks), weight 1, cooling by default for Cooldown.
	Pool *pool.Pool
	// Upstreams are endpoints to start with (Apply replaces them). Entries
	// without a URL or an API key are ignored.
	Upstreams []Config
	// Pins keeps session pins; nil pins nothing (every request is balanced).
	Pins ports.SessionPins
	// PinTimeout bounds each pin read and write (default DefaultPinTimeout);
	// a read that fails or times out counts as no pin.
	PinTimeout time.Duration
	// Timeout and MaxRetries are Config.Timeout and Config.MaxRetries for
	// the endpoints given to Apply (default DefaultTimeout; MaxRetries as
	// given, negative meaning 0).
	Timeout    time.Duration
	MaxRetries int
	// BaseDelay starts the exponential backoff (default DefaultBaseDelay); the delay
	// before retry n is uniform in [0, min(MaxDelay, BaseDelay*2^n)).
	BaseDelay time.Duration
	// MaxDelay caps one backoff (default DefaultMaxDelay).
	MaxDelay time.Duration
	// Deadline bounds the whole retry loop: no attempt or backoff starts
	// after it (default DefaultDeadline). It never cuts an attempt already
	// started, which runs until its upstream's Timeout. A retry-after
	// beyond it is not waited for; the upstream's answer goes back instead.
	Deadline time.Duration
	// Cooldown is the pool's default cooling (pool.Config.DefaultCooldown)
	// when New builds the pool; with Options.Pool it is not used.
	Cooldown time.Duration
	// MaxBodyBytes caps the buffered request body (default DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// Transport, when set, replaces the tuned per-upstream transports
	// (tests). Config.Timeout is then enforced on the attempt's context
	// until response headers arrive.
	Transport http.RoundTripper
	Observer  Observer
	// OnDisable is called, on a goroutine of its own, when an upstream
	// refuses its key (401 or 403) and the pool disables it, with the
	// upstream's id and the reason (the status and the upstream's message),
	// so that the disable can be persisted.
	OnDisable func(id, reason string)
	Log       *slog.Logger
	// Now is the clock (default time.Now). With Options.Pool it must tell
	// the time the pool's Config.Clock does: retry-after becomes a time.
	Now func() time.Time
}

// Outcome labels one attempt. The set is closed, so metric labels stay bounded.
type Outcome string

const (
	OutcomeOK           Outcome = "ok"            // 2xx/3xx
	OutcomeClientError  Outcome = "client_error"  // 4xx other than 429: not retried
	OutcomeRateLimited  Outcome = "rate_limited"  // 429
	OutcomeOverloaded   Outcome = "overloaded"    // 529
	OutcomeServerError  Outcome = "server_error"  // 5xx
	OutcomeConnectError Outcome = "connect_error" // no response: not reached, or the connection was lost
	OutcomeTimeout      Outcome = "timeout"       // no connection or response headers in time
	OutcomeCanceled     Outcome = "canceled"      // the client went away
)

// Observer is told about every attempt, retry and failover, every pick and
// skip, and every change of an upstream's state. Metrics are wired to it;
// the default does nothing. Upstreams are named by their names (labels),
// events carry ids too. Attempt, Retry, Failover, Picked and Skipped run
// on every request and must be cheap.
type Observer interface {
	Attempt(upstream string, outcome Outcome)
	Retry(upstream string)
	Failover(from, to string)
	// Picked: an attempt goes to upstream, chosen as why says (not called
	// for a retry of an upstream already tried).
	Picked(upstream string, why pool.Why)
	// Skipped: upstream was passed over by a pick, for reason.
	Skipped(upstream string, reason pool.SkipReason)
	// StateChanged reports one change of state, already logged.
	StateChanged(upstream string, ev pool.Event)
	// States reports every upstream's state after any change, and after
	// Apply; an upstream missing from it was removed.
	States(states []UpstreamState)
}

// UpstreamState is one upstream as Observer.States reports it.
type UpstreamState struct {
	ID, Name string
	// State is the upstream's own state; Enabled the operator's switch.
	State   pool.State
	Enabled bool
	// ModelsUnhealthy counts the models cooling or probing on it.
	ModelsUnhealthy int
}

// NopObserver ignores everything.
type NopObserver struct{}

func (NopObserver) Attempt(string, Outcome)         {}
func (NopObserver) Retry(string)                    {}
func (NopObserver) Failover(string, string)         {}
func (NopObserver) Picked(string, pool.Why)         {}
func (NopObserver) Skipped(string, pool.SkipReason) {}
func (NopObserver) StateChanged(string, pool.Event) {}
func (NopObserver) States([]UpstreamState)          {}

// Info reports how a request was served. The caller puts an *Info in the
// request context with WithInfo; RoundTrip fills it in.
type Info struct {
	// UpstreamID and Upstream are the id and name of the upstream whose
	// answer was returned (or the last one tried).
	UpstreamID string
	Upstream   string
	// Why says how the pool chose that upstream, and Skips which upstreams
	// its pick passed over and why (at most maxInfoSkips); see SkipSummary.
	Why   pool.Why
	Skips []pool.Skip
	// Attempts made; Retries = Attempts-1 when at least one was made.
	Attempts  int
	Retries   int
	Failovers int
	// Tried are the ids of the upstreams failed over from, in order: each
	// upstream whose attempts came before UpstreamID's (a retry on the
	// same upstream adds none). Usually empty.
	Tried []string
	// Outcome of the last attempt.
	Outcome Outcome
	// Written reports that some attempt's request reached an upstream: it
	// was written in full, or answered. When RoundTrip returns an error and
	// Written is true, the upstream may have done, and billed, the work, so
	// usage must be settled as estimated rather than as nothing.
	Written bool
}

// maxInfoSkips bounds Info.Skips, and maxSkipSummary SkipSummary's length.
const (
	maxInfoSkips   = 16
	maxSkipSummary = 1024
)

// SkipSummary is Info.Skips in words, "; "-separated, at most about a
// kilobyte: for the request's log line.
func (i *Info) SkipSummary() string {
	if len(i.Skips) == 0 {
		return ""
	}
	var b strings.Builder
	for n, s := range i.Skips {
		if n > 0 {
			b.WriteString("; ")
		}
		b.WriteString(s.String())
		if b.Len() > maxSkipSummary {
			out, cut := b.String(), maxSkipSummary
			for cut > 0 && !utf8.RuneStart(out[cut]) {
				cut--
			}
			return out[:cut] + "…"
		}
	}
	return b.String()
}

type infoKey struct{}

// WithInfo returns ctx carrying info for RoundTrip to fill in.
func WithInfo(ctx context.Context, info *Info) context.Context {
	return context.WithValue(ctx, infoKey{}, info)
}

// InfoFrom returns the *Info in ctx, or nil.
func InfoFrom(ctx context.Context) *Info {
	i, _ := ctx.Value(infoKey{}).(*Info)
	return i
}

// Route is what a request asks of its upstream, as the proxy knows it:
// the pool's PickInput without what the transport adds (the pin, the
// upstreams tried).
type Route struct {
	// Model is the request's model; "" when it names none.
	Model string
	// Session is the key its session is pinned under (pool.SessionKey);
	// "" pins nothing.
	Session string
	// Group is the proxy key's upstream group; "" the default group.
	Group string
	// Require is the id of the upstream that created the object the
	// request names (a batch, a file); "" when it names none. Without it,
	// a requirement put in the context by relay.WithRequiredUpstream
	// applies.
	Require string
	// OwnHeader says the request's header map was made for this call
	// alone and nothing reads it after RoundTrip (the proxy's outbound
	// header): the first attempt is sent with it, its key set in place,
	// instead of with a copy. Later attempts are sent with copies.
	OwnHeader bool
}

type routeKey struct{}

// WithRoute returns ctx carrying r for RoundTrip, which reads it and
// never changes it. A request without a route is balanced in the default
// group, with no model and no session.
func WithRoute(ctx context.Context, r *Route) context.Context {
	return context.WithValue(ctx, routeKey{}, r)
}

// RouteFrom is the route in ctx, or nil.
func RouteFrom(ctx context.Context) *Route {
	r, _ := ctx.Value(routeKey{}).(*Route)
	return r
}

type target struct {
	id         string
	name       string
	rawURL     string
	scheme     string
	host       string
	basePath   string
	key        string
	maxRetries int
	rt         http.RoundTripper
	// owned: rt was built here (NewHTTPTransport), and its idle
	// connections are closed when no target uses it any more.
	owned bool
	// headerTimeout, when not 0, is enforced here on the attempt's context,
	// because rt is not a transport built with NewHTTPTransport.
	headerTimeout time.Duration
}

// Transport is the retrying, failing-over RoundTripper over a pool of
// upstreams. It implements ports.UpstreamRuntime.
type Transport struct {
	pool *pool.Pool
	// targets maps upstream ids to how they are reached; replaced whole
	// by Apply, never changed in place.
	targets    atomic.Pointer[map[string]*target]
	applyMu    sync.Mutex
	pins       ports.SessionPins
	pinWait    time.Duration
	pinsLocal  bool // pins answer without I/O: no deadline per call
	timeout    time.Duration
	maxRetries int
	inject     http.RoundTripper
	base       time.Duration
	maxDelay   time.Duration
	deadline   time.Duration
	maxBody    int64
	obs        Observer
	onDisable  func(id, reason string)
	log        *slog.Logger
	now        func() time.Time
}

var (
	_ http.RoundTripper     = (*Transport)(nil)
	_ ports.UpstreamRuntime = (*Transport)(nil)
)

// Defaults of the Options and Config fields.
const (
	// DefaultMaxBodyBytes is the request-body limit.
	DefaultMaxBodyBytes = 32 << 20
	// DefaultTimeout is the wait for one attempt's response headers:
	// Anthropic's SDKs wait as long.
	DefaultTimeout = 10 * time.Minute
	// DefaultBaseDelay is the first backoff step, DefaultMaxDelay the last.
	DefaultBaseDelay = 500 * time.Millisecond
	DefaultMaxDelay  = 8 * time.Second
	// DefaultDeadline bounds the attempts and backoffs of one request.
	DefaultDeadline = 2 * time.Minute
	// DefaultCooldown is how long a failure cools an upstream that stated
	// no time, in a pool New builds (pool.DefaultCooldown).
	DefaultCooldown = pool.DefaultCooldown
	// DefaultPinTimeout bounds a pin read or write: a pin is a hint, and a
	// request never waits long for one.
	DefaultPinTimeout = 100 * time.Millisecond
)

type clockFunc func() time.Time

func (f clockFunc) Now() time.Time { return f() }

// New builds a Transport. An invalid URL is an error; a Transport with no
// usable upstream is valid, answers every request with ErrNotConfigured, and
// reports Configured() == false until Apply gives it one.
func New(opts Options) (*Transport, error) {
	t := &Transport{
		pool: opts.Pool, pins: opts.Pins, pinWait: opts.PinTimeout, timeout: opts.Timeout, maxRetries: max(opts.MaxRetries, 0),
		inject: opts.Transport, base: opts.BaseDelay, maxDelay: opts.MaxDelay, deadline: opts.Deadline,
		maxBody: opts.MaxBodyBytes, obs: opts.Observer, onDisable: opts.OnDisable, log: opts.Log, now: opts.Now,
	}
	if t.pinWait <= 0 {
		t.pinWait = DefaultPinTimeout
	}
	if l, ok := t.pins.(interface{ InProcess() bool }); ok {
		t.pinsLocal = l.InProcess()
	}
	if t.timeout <= 0 {
		t.timeout = DefaultTimeout
	}
	if t.base <= 0 {
		t.base = DefaultBaseDelay
	}
	if t.maxDelay <= 0 {
		t.maxDelay = DefaultMaxDelay
	}
	if t.deadline <= 0 {
		t.deadline = DefaultDeadline
	}
	if t.maxBody <= 0 {
		t.maxBody = DefaultMaxBodyBytes
	}
	if t.obs == nil {
		t.obs = NopObserver{}
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	if t.now == nil {
		t.now = time.Now
	}
	targets := make(map[string]*target, len(opts.Upstreams))
	var ups []pool.Upstream
	for i, c := range opts.Upstreams {
		if c.URL == "" || c.APIKey == "" {
			continue
		}
		name := c.Name
		if name == "" {
			name = "upstream" + strconv.Itoa(i)
		}
		id := c.ID
		if id == "" {
			id = name
		}
		if targets[id] != nil {
			// Names were never required to be unique; ids must be.
			id += "-" + strconv.Itoa(i)
		}
		timeout := c.Timeout
		if timeout <= 0 {
			timeout = DefaultTimeout
		}
		tg, err := t.newTarget(id, name, c.URL, c.APIKey, timeout, c.MaxRetries, nil)
		if err != nil {
			return nil, err
		}
		targets[id] = tg
		ups = append(ups, pool.Upstream{ID: id, Name: name, Priority: len(ups), Weight: 1, Enabled: true})
	}
	if t.pool == nil {
		cfg := pool.Config{DefaultCooldown: opts.Cooldown, Clock: clockFunc(t.now)}
		if opts.Cooldown > pool.DefaultMaxCooldown {
			cfg.MaxCooldown = opts.Cooldown
		}
		p, err := pool.New(cfg, ups)
		if err != nil {
			return nil, fmt.Errorf("upstream pool: %w", err)
		}
		t.pool = p
	}
	t.targets.Store(&targets)
	t.obs.States(t.states())
	return t, nil
}

// newTarget is how to reach one upstream. reuse, when its URL is rawURL,
// lends its RoundTripper, so that its connections are kept.
func (t *Transport) newTarget(id, name, rawURL, key string, timeout time.Duration, maxRetries int, reuse *target) (*target, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The URL may hold credentials; do not echo it.
		return nil, fmt.Errorf("upstream %q: url must be an absolute http(s) URL", name)
	}
	tg := &target{id: id, name: name, rawURL: rawURL, scheme: u.Scheme, host: u.Host, basePath: NormalizeBasePath(u.Path),
		key: key, maxRetries: max(maxRetries, 0)}
	switch {
	case reuse != nil && reuse.rawURL == rawURL:
		tg.rt, tg.owned, tg.headerTimeout = reuse.rt, reuse.owned, reuse.headerTimeout
	case t.inject != nil:
		tg.rt, tg.headerTimeout = t.inject, timeout
	default:
		tg.rt, tg.owned = NewHTTPTransport(timeout), true
	}
	return tg, nil
}

// Apply replaces the endpoints the transport reaches, at once for every
// request that starts after it; requests under way finish where they are.
// An endpoint whose URL did not change keeps its connections. Endpoints
// reach the pool's upstreams of the same id; the pool's SetUpstreams is the
// caller's; Apply reports every upstream's state to the Observer (and
// RunProbes does every second). A pool upstream without an endpoint, or
// whose endpoint has no API key, is passed over. An endpoint without an id
// or with an invalid URL is an error, and nothing changes.
func (t *Transport) Apply(endpoints []ports.UpstreamEndpoint) error {
	t.applyMu.Lock()
	defer t.applyMu.Unlock()
	old := *t.targets.Load()
	next := make(map[string]*target, len(endpoints))
	seen := make(map[string]bool, len(endpoints))
	for _, e := range endpoints {
		name := e.Name
		if name == "" {
			name = e.ID
		}
		switch {
		case e.ID == "":
			return fmt.Errorf("upstream %q: an endpoint needs an id", name)
		case seen[e.ID]:
			return fmt.Errorf("upstream id %q appears twice", e.ID)
		}
		seen[e.ID] = true
		tg, err := t.newTarget(e.ID, name, e.URL, e.APIKey, t.timeout, t.maxRetries, old[e.ID])
		if err != nil {
			return err
		}
		if e.APIKey == "" {
			// Its key could not be opened: it cannot be reached, and the
			// pool passes it over as it would one without an endpoint.
			continue
		}
		next[e.ID] = tg
	}
	t.targets.Store(&next)
	for id, o := range old {
		if n := next[id]; o.owned && (n == nil || n.rt != o.rt) {
			if tr, ok := o.rt.(*http.Transport); ok {
				// Requests under way keep their connections; only idle ones go.
				tr.CloseIdleConnections()
			}
		}
	}
	t.obs.States(t.states())
	return nil
}

// NormalizeBasePath strips trailing slashes and one trailing /v1 from a
// base URL's path, so a base of https://host/v1 does not produce /v1/v1/...
func NormalizeBasePath(p string) string {
	p = strings.TrimRight(p, "/")
	p = strings.TrimSuffix(p, "/v1")
	return strings.TrimRight(p, "/")
}

// NewHTTPTransport is the tuned transport for one upstream: a large idle
// pool (every request goes to one host), HTTP/2 when offered, and a wait
// for response headers bounded by timeout. There is no overall timeout.
func NewHTTPTransport(timeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: timeout,
		// The relay passes bodies through byte for byte; it must not ask
		// for gzip and transparently decode it.
		DisableCompression: true,
	}
}

// Configured reports whether at least one upstream has a URL and a key.
func (t *Transport) Configured() bool { return len(*t.targets.Load()) > 0 }

// Pool is the pool the transport selects with.
func (t *Transport) Pool() *pool.Pool { return t.pool }

// Enable makes a disabled upstream healthy again (an operator's word) and
// reports the change as every other one is.
func (t *Transport) Enable(id string) error {
	evs, err := t.pool.Enable(id)
	if err != nil {
		return err
	}
	t.emit(evs)
	return nil
}

// ErrNotConfigured is returned for every request when no upstream has a
// key; the proxy answers it before trying (503 api_error).
var ErrNotConfigured = &domain.Error{Kind: domain.KindUnavailable, Reason: domain.ReasonUpstreamNotConfigured,
	Message: "upstream is not configured: the relay has no Anthropic API key; set UPSTREAM_API_KEY (upstream.primary.api_key)"}

// RoundTrip sends req to the upstream the pool picks, retrying and failing
// over as the package doc says. The client's x-api-key and Authorization
// are replaced by the upstream's key. It returns the first response that is
// not retried, or the last response when every attempt failed, or an error
// of kind KindUpstream (502, ReasonUpstreamConnection), KindTimeout (504,
// ReasonUpstreamTimeout), KindTooLarge (413), or, when no upstream may
// take the request, KindRateLimited or KindOverloaded with a retry-after
// (every upstream that could is cooling) or KindUnavailable.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	info := InfoFrom(ctx)
	if info == nil {
		info = &Info{}
	}
	targets := *t.targets.Load()
	if len(targets) == 0 {
		closeBody(req)
		return nil, ErrNotConfigured
	}
	getBody, err := t.replayable(req)
	if err != nil {
		return nil, err
	}
	r := call{t: t, req: req, info: info, targets: targets, getBody: getBody}
	r.in.Exclude = r.exclude[:0]
	r.tried = r.triedBuf[:0]
	if rt := RouteFrom(ctx); rt != nil {
		r.in.Model, r.in.Session, r.in.Group, r.in.Require = rt.Model, rt.Session, rt.Group, rt.Require
		r.ownHeader = rt.OwnHeader
	}
	if r.in.Require == "" {
		r.in.Require = relay.RequiredUpstream(ctx)
	}
	if r.in.Session != "" {
		r.in.Pinned = t.readPin(ctx, r.in.Session)
	}
	resp, err := r.run(ctx)
	if r.pinTo != "" {
		t.writePin(ctx, r.in.Session, r.pinTo, r.pinTTL)
	}
	return resp, err
}

// call is one request's way through the pool.
type call struct {
	t       *Transport
	req     *http.Request
	info    *Info
	targets map[string]*target
	getBody func() (io.ReadCloser, error)
	// ownHeader: the request's header may be sent as it is (Route).
	ownHeader bool
	in        pool.PickInput
	// tried are the upstreams chosen for this request, with the attempts
	// made on each.
	tried    []tried
	triedBuf [4]tried
	exclude  [4]string
	// pinTo is the upstream the last pick said to pin the session to.
	pinTo  string
	pinTTL time.Duration
}

type tried struct {
	tg       *target
	attempts int
}

func (r *call) run(ctx context.Context) (*http.Response, error) {
	t, info := r.t, r.info
	start := t.now()
	deadline := start.Add(t.deadline)
	cur, release, err := r.pickNew()
	if err != nil {
		closeBody(r.req)
		return nil, err
	}
	var lastResp *http.Response
	var last attempt
	var lastOutcome Outcome
	var wait time.Duration
	for {
		tg := r.tried[cur].tg
		if wait > 0 && !sleepCtx(ctx, wait) {
			if release != nil {
				release()
			}
			info.Outcome = OutcomeCanceled
			return nil, ctx.Err()
		}
		if release == nil {
			// A retry of an upstream already tried takes its slot again.
			rel, ok := t.pool.Acquire(tg.id)
			if !ok {
				return t.finish(info, lastResp, last, lastOutcome)
			}
			release = rel
		}
		actx, tr := traced(ctx)
		out, err := t.prepare(actx, r.req, tg, r.getBody, r.ownHeader)
		r.ownHeader = false // the header is now the first attempt's
		if err != nil {
			release()
			return nil, err
		}
		info.Attempts++
		if info.UpstreamID != "" && info.UpstreamID != tg.id {
			info.Tried = append(info.Tried, info.UpstreamID)
		}
		info.Upstream, info.UpstreamID = tg.name, tg.id
		r.tried[cur].attempts++
		// The overall deadline does not bound the attempt: once written,
		// cutting it short would not undo the work upstream, only lose
		// its answer.
		a := tg.send(out, tr)
		info.Written = info.Written || a.written
		outcome := a.outcome(ctx)
		t.obs.Attempt(tg.name, outcome)
		info.Outcome = outcome
		if outcome == OutcomeCanceled {
			// Says nothing about the upstream: not observed.
			release()
			return nil, a.err
		}
		now := t.now()
		var ra time.Duration
		var hasRA bool
		if a.resp != nil && a.resp.StatusCode >= 400 {
			// Only an error answer's retry-after matters; a success skips
			// the header lookups.
			ra, hasRA = retryAfter(a.resp, now)
		}
		t.observe(tg, r.in.Model, &a, now, ra, hasRA, false)
		if !a.retryable(r.req.Method, hasRA) {
			if a.err == nil {
				// The slot is held until the answer is read to its end.
				a.resp.Body = &releaseOnClose{ReadCloser: a.resp.Body, release: release}
				return a.resp, nil
			}
			release()
			// Written, then lost. An earlier attempt's answer (a 529, say)
			// is not this request's outcome: the upstream may be doing
			// the work.
			return nil, t.fail(info, a, outcome)
		}
		if a.resp != nil {
			// Kept, in memory, as the answer should every later attempt fail.
			lastResp = buffered(a.resp)
		}
		release()
		release = nil
		last, lastOutcome = a, outcome
		next, rel := r.next(cur)
		if next < 0 {
			return t.finish(info, lastResp, last, lastOutcome)
		}
		release = rel
		wait = 0
		if r.tried[next].attempts > 0 {
			// Retrying an upstream already tried in this request: back off.
			n := info.Attempts - 1
			ceil := t.base << min(n, 20)
			if ceil > t.maxDelay || ceil <= 0 {
				ceil = t.maxDelay
			}
			wait = time.Duration(rand.Int64N(int64(ceil) + 1))
			if hasRA && next == cur && ra > wait {
				wait = ra
			}
		}
		if now.Add(wait).After(deadline) {
			if release != nil {
				release()
			}
			return t.finish(info, lastResp, last, lastOutcome)
		}
		if next != cur {
			info.Failovers++
			t.obs.Failover(tg.name, r.tried[next].tg.name)
		}
		info.Retries++
		t.obs.Retry(r.tried[next].tg.name)
		cur = next
	}
}

// pickNew asks the pool for an upstream not tried yet and takes its slot.
// An upstream the transport has no endpoint for, or that is full after
// all (another request took its last slot since the pick), is excluded
// and the pool asked again. On success it returns the upstream's index in
// r.tried and the slot's release; otherwise, for the first pick, the
// error saying why no upstream may take the request.
func (r *call) pickNew() (int, func(), error) {
	t := r.t
	for {
		c, skips := t.pool.Pick(r.in)
		if c.Upstream == "" {
			if len(r.tried) == 0 {
				r.info.Why, r.info.Skips = "", capSkips(skips)
			}
			return -1, nil, r.unavailable(c, skips)
		}
		r.in.Exclude = append(r.in.Exclude, c.Upstream)
		tg := r.targets[c.Upstream]
		if tg == nil {
			t.log.LogAttrs(context.Background(), slog.LevelDebug, "the pool picked an upstream without an endpoint",
				slog.String("upstream", c.Upstream))
			continue
		}
		release, ok := t.pool.Acquire(c.Upstream)
		if !ok {
			continue
		}
		r.tried = append(r.tried, tried{tg: tg})
		r.info.Why, r.info.Skips = c.Why, capSkips(skips)
		if c.Pin {
			r.pinTo, r.pinTTL = c.Upstream, c.PinTTL
		}
		t.obs.Picked(tg.name, c.Why)
		for _, s := range skips {
			t.obs.Skipped(r.nameOf(s.Upstream), s.Reason)
		}
		return len(r.tried) - 1, release, nil
	}
}

// next chooses the upstream for the attempt after cur failed: another one
// the pool picks (with its slot taken); otherwise cur itself if it has
// retries left; otherwise any upstream already tried with retries left;
// -1 if none. Retries of an upstream already tried take their slot after
// their backoff (release nil).
func (r *call) next(cur int) (int, func()) {
	if i, rel, _ := r.pickNew(); i >= 0 {
		return i, rel
	}
	left := func(i int) bool { return r.tried[i].attempts <= r.tried[i].tg.maxRetries }
	if left(cur) {
		return cur, nil
	}
	for i := range r.tried {
		if i != cur && left(i) {
			return i, nil
		}
	}
	return -1, nil
}

func (r *call) nameOf(id string) string {
	if tg := r.targets[id]; tg != nil {
		return tg.name
	}
	return id
}

func capSkips(s []pool.Skip) []pool.Skip { return s[:min(len(s), maxInfoSkips)] }

// unavailable is the error for a request no upstream may take. When an
// upstream that could is only cooling, probing or full, the client is told
// when to come back: a 429 when every such upstream is rate limited, else
// a 503 overloaded_error. Otherwise (disabled, turned off, outside the
// key's group, not serving the model, gone) it is a 503 api_error. The
// skips, which say which upstream is in what state, are for the operator
// (Info.Skips), not the client.
func (r *call) unavailable(c pool.Choice, skips []pool.Skip) error {
	waiting, limited := false, true
	for _, s := range skips {
		switch s.Reason {
		case pool.SkipCooling, pool.SkipProbing:
			waiting = true
			limited = limited && s.Cause == pool.CauseRateLimited
		case pool.SkipBusy:
			waiting, limited = true, false
		}
	}
	subject := "no upstream may take this request"
	if r.in.Require != "" {
		subject = "the upstream that holds the object this request names cannot take it"
	}
	if !waiting {
		return &domain.Error{Kind: domain.KindUnavailable, Message: subject + " now; the relay's operator can see why in its logs"}
	}
	wait := time.Second
	if !c.RetryAt.IsZero() {
		wait = max(c.RetryAt.Sub(r.t.now()).Round(time.Second), time.Second)
	}
	if limited {
		return &domain.Error{Kind: domain.KindRateLimited, RetryAfter: wait,
			Message: subject + ": the upstream rate limit is reached; retry after " + wait.String()}
	}
	return &domain.Error{Kind: domain.KindOverloaded, RetryAfter: wait,
		Message: subject + ": the upstreams are overloaded or busy; retry after " + wait.String()}
}

// releaseOnClose frees an upstream's in-flight slot once its answer has
// been read (or abandoned).
type releaseOnClose struct {
	io.ReadCloser
	release func()
}

func (b *releaseOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.release()
	return err
}

// attempt is what one round trip to one upstream came to.
type attempt struct {
	resp *http.Response
	err  error
	// conn: a connection was obtained, dial and TLS handshake done.
	conn bool
	// written: the request was written in full, or answered, so the
	// upstream may have acted on it.
	written bool
	// timedOut: the target's headerTimeout expired.
	timedOut bool
}

// errHeaderTimeout ends an attempt of an injected transport that got no
// response headers within Config.Timeout.
var errHeaderTimeout = errors.New("timeout awaiting response headers")

// tracer records what an attempt got to: a connection, a written request.
type tracer struct {
	conn, wrote atomic.Bool
	trace       httptrace.ClientTrace
}

// traced returns ctx tracing one attempt, for the request it is sent with.
func traced(ctx context.Context) (context.Context, *tracer) {
	tr := &tracer{}
	tr.trace.GotConn = func(httptrace.GotConnInfo) { tr.conn.Store(true) }
	// Called after each write. A write that failed reached no handler with
	// a whole request; the transport may then write again, on a fresh
	// connection.
	tr.trace.WroteRequest = func(w httptrace.WroteRequestInfo) {
		if w.Err == nil {
			tr.wrote.Store(true)
		}
	}
	return httptrace.WithClientTrace(ctx, &tr.trace), tr
}

// send makes one attempt with out, whose context tr traces (traced).
func (tg *target) send(out *http.Request, tr *tracer) attempt {
	var a attempt
	if tg.headerTimeout <= 0 {
		// NewHTTPTransport's ResponseHeaderTimeout bounds the wait.
		a.resp, a.err = tg.rt.RoundTrip(out)
	} else {
		a.roundTripWithin(tg.rt, out, tg.headerTimeout)
	}
	// After an error, the transport is done writing: the flags are final.
	a.conn = tr.conn.Load()
	a.written = a.written || a.err == nil || tr.wrote.Load()
	return a
}

// roundTripWithin is rt.RoundTrip with d to get response headers, as
// http.Transport's ResponseHeaderTimeout, for a RoundTripper that may have
// none. The timer stops when headers arrive, so it never cuts a stream.
func (a *attempt) roundTripWithin(rt http.RoundTripper, req *http.Request, d time.Duration) {
	ctx, cancel := context.WithCancelCause(req.Context())
	var state atomic.Int32 // 0 waiting, 1 expired, 2 answered
	timer := time.AfterFunc(d, func() {
		if state.CompareAndSwap(0, 1) {
			cancel(errHeaderTimeout)
		}
	})
	resp, err := rt.RoundTrip(req.WithContext(ctx))
	timer.Stop()
	if !state.CompareAndSwap(0, 2) {
		// Expired, perhaps just as headers arrived: the body would be cut.
		if resp != nil {
			_ = resp.Body.Close()
			a.written = true
		}
		cancel(nil)
		a.err, a.timedOut = fmt.Errorf("upstream: %w", errHeaderTimeout), true
		return
	}
	if err != nil {
		cancel(nil)
		a.err = err
		return
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: func() { cancel(nil) }}
	a.resp = resp
}

// cancelOnClose releases a response's context once its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel func()
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// outcome labels the attempt; ctx is the caller's.
func (a attempt) outcome(ctx context.Context) Outcome {
	if a.err != nil {
		if ctx.Err() != nil {
			return OutcomeCanceled
		}
		var ne net.Error
		if a.timedOut || errors.As(a.err, &ne) && ne.Timeout() || errors.Is(a.err, context.DeadlineExceeded) {
			return OutcomeTimeout
		}
		return OutcomeConnectError
	}
	switch s := a.resp.StatusCode; {
	case s < 400:
		return OutcomeOK
	case s == http.StatusTooManyRequests:
		return OutcomeRateLimited
	case s == 529:
		return OutcomeOverloaded
	case s < 500:
		return OutcomeClientError
	default:
		return OutcomeServerError
	}
}

// retryable applies Caddy's tryAgain rules: a failure is retried when the
// request never reached the upstream, or its method is idempotent; an
// answer, when its status says the upstream did no work and may do it soon.
// hasRA: the answer carries a retry-after.
func (a attempt) retryable(method string, hasRA bool) bool {
	if a.err != nil {
		return !a.written || idempotent(method)
	}
	// x-should-retry: true does not make any other status retryable.
	if strings.EqualFold(a.resp.Header.Get("x-should-retry"), "false") {
		return false
	}
	switch a.resp.StatusCode {
	case http.StatusTooManyRequests:
		// Without retry-after, nothing says when the limit lifts; a spend
		// limit lifts only when someone raises it.
		return hasRA && !spendLimit(a.resp)
	case 529, http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// idempotent reports whether sending a request with method twice is safe.
func idempotent(method string) bool {
	switch method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	return false
}

// spendLimit reports whether a 429 names a spend limit in its headers or
// the first maxErrorBody bytes of its body, which are put back.
func spendLimit(resp *http.Response) bool {
	for k, vs := range resp.Header {
		if namesSpendLimit([]byte(k)) {
			return true
		}
		for _, v := range vs {
			if namesSpendLimit([]byte(v)) {
				return true
			}
		}
	}
	// A read error is met again by whoever reads on.
	prefix, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	resp.Body = &prefixedBody{Reader: io.MultiReader(bytes.NewReader(prefix), resp.Body), Closer: resp.Body}
	return namesSpendLimit(prefix)
}

func namesSpendLimit(b []byte) bool {
	b = bytes.ToLower(b)
	return bytes.Contains(b, []byte("spend limit")) || bytes.Contains(b, []byte("spend_limit")) || bytes.Contains(b, []byte("spend-limit"))
}

// prefixedBody is a body whose start was read ahead and put back.
type prefixedBody struct {
	io.Reader
	io.Closer
}

// finish ends a request whose last attempt failed and could have been
// retried: the last upstream response, if any attempt got one, else an error
// saying what happened.
func (t *Transport) finish(info *Info, resp *http.Response, last attempt, outcome Outcome) (*http.Response, error) {
	if resp != nil {
		return resp, nil
	}
	return nil, t.fail(info, last, outcome)
}

// fail is the error for a request whose last attempt a got no response.
func (t *Transport) fail(info *Info, a attempt, outcome Outcome) error {
	if outcome == OutcomeTimeout {
		return &domain.Error{Kind: domain.KindTimeout, Reason: domain.ReasonUpstreamTimeout, Err: a.err,
			Message: fmt.Sprintf("upstream %q did not answer in time (%d attempts)", info.Upstream, info.Attempts)}
	}
	msg := fmt.Sprintf("could not reach upstream %q: %s (%d attempts)", info.Upstream, describe(a), info.Attempts)
	if a.written {
		msg = fmt.Sprintf("upstream %q was sent the request but did not answer: %s (%d attempts)", info.Upstream, describe(a), info.Attempts)
	}
	return &domain.Error{Kind: domain.KindUpstream, Reason: domain.ReasonUpstreamConnection, Err: a.err, Message: msg}
}

// describe names a connection failure without addresses or URLs.
func describe(a attempt) string {
	err := a.err
	var ne *net.OpError
	switch {
	case err == nil:
		return "no response"
	case errors.As(err, &ne) && ne.Op == "dial":
		return "connection failed"
	case strings.Contains(err.Error(), "tls"):
		return "TLS failure"
	case !a.conn:
		return "connection failed"
	case strings.Contains(err.Error(), "connection reset"):
		return "connection reset"
	case !a.written:
		return "connection lost while sending the request"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed before a response"
	}
	return "connection error"
}

// replayable makes sure the request body can be sent more than once: the
// caller's GetBody when it set one (the proxy buffers before admission),
// else the body buffered here, up to the limit.
func (t *Transport) replayable(req *http.Request) (func() (io.ReadCloser, error), error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	if req.GetBody != nil {
		if req.ContentLength > t.maxBody {
			closeBody(req)
			return nil, TooLarge(t.maxBody)
		}
		return req.GetBody, nil
	}
	if req.ContentLength > t.maxBody {
		closeBody(req)
		return nil, TooLarge(t.maxBody)
	}
	body, err := ReadBody(req.Body, req.ContentLength, t.maxBody)
	_ = req.Body.Close()
	if err != nil {
		return nil, err
	}
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }, nil
}

// TooLarge is the error for a body over limit bytes.
func TooLarge(limit int64) error {
	return &domain.Error{Kind: domain.KindTooLarge, Reason: domain.ReasonBody,
		Message: fmt.Sprintf("request body is larger than the relay's limit of %d bytes", limit)}
}

// ReadBody reads r, of announced length n (-1 if unknown), failing with a
// KindTooLarge error past limit. It allocates once when n is known.
func ReadBody(r io.Reader, n, limit int64) ([]byte, error) {
	if n > limit {
		return nil, TooLarge(limit)
	}
	if n >= 0 {
		// Read straight into one slice of the announced size when it is
		// small, else one that doubles with the bytes that actually arrive:
		// a client announcing 32 MB and sending nothing must not cost
		// 32 MB. (bytes.Buffer would reallocate even a 100-byte body, to
		// keep 512 bytes free for its next read.)
		buf := make([]byte, 0, min(n, 64<<10))
		for int64(len(buf)) < n {
			if len(buf) == cap(buf) {
				buf = slices.Grow(buf, int(min(n-int64(len(buf)), int64(cap(buf)))))
			}
			m, err := r.Read(buf[len(buf):int(min(int64(cap(buf)), n))])
			buf = buf[:len(buf)+m]
			if err == io.EOF && int64(len(buf)) == n {
				break
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			if err != nil {
				return nil, fmt.Errorf("read request body: %w", err)
			}
		}
		// A body longer than announced is the server's business; net/http
		// already enforces Content-Length.
		return buf, nil
	}
	buf, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	if int64(len(buf)) > limit {
		return nil, TooLarge(limit)
	}
	return buf, nil
}

// prepare makes the outgoing request for one attempt at tg.
func (t *Transport) prepare(ctx context.Context, req *http.Request, tg *target, getBody func() (io.ReadCloser, error), inPlace bool) (*http.Request, error) {
	out := req.WithContext(ctx)
	u := *req.URL
	u.Scheme, u.Host = tg.scheme, tg.host
	if tg.basePath != "" {
		u.Path = tg.basePath + u.Path
		if u.RawPath != "" {
			u.RawPath = tg.basePath + u.RawPath
		}
	}
	out.URL = &u
	out.Host = ""
	if !inPlace || req.Header == nil {
		// A copy: the caller's header is not ours to change, and an
		// attempt that failed may still be reading the one it was sent
		// with.
		out.Header = req.Header.Clone()
		if out.Header == nil {
			out.Header = make(http.Header, 1)
		}
	}
	out.Header.Del("Authorization")
	out.Header["X-Api-Key"] = []string{tg.key}
	if getBody != nil {
		b, err := getBody()
		if err != nil {
			return nil, fmt.Errorf("replay request body: %w", err)
		}
		out.Body = b
		out.GetBody = getBody
	}
	return out, nil
}

// retryAfter reads retry-after-ms or retry-after (seconds or an HTTP date,
// measured from now).
func retryAfter(resp *http.Response, now time.Time) (time.Duration, bool) {
	if resp == nil {
		return 0, false
	}
	if v := resp.Header.Get("retry-after-ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms >= 0 && ms < 1e9 {
			return time.Duration(ms * float64(time.Millisecond)), true
		}
	}
	v := resp.Header.Get("retry-after")
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 && s < 1e6 {
		return time.Duration(s * float64(time.Second)), true
	}
	if at, err := http.ParseTime(v); err == nil {
		if d := at.Sub(now); d > 0 {
			return d, true
		}
		return 0, true
	}
	return 0, false
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// maxErrorBody bounds the retryable error body kept in memory.
const maxErrorBody = 64 << 10

// buffered reads a retryable response's (small, error) body into memory and
// closes it, so its connection is freed during the backoff, and returns the
// response with a replayable body. A body over maxErrorBody is cut there.
func buffered(resp *http.Response) *http.Response {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	resp.Header.Del("Content-Length")
	resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
	resp.TransferEncoding = nil
	return resp
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}
