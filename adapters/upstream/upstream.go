// Package upstream is the relay's driven side towards Anthropic: an
// http.RoundTripper that swaps in the upstream key, retries retryable
// failures with backoff, fails over across an ordered list of upstreams and
// cools down upstreams that are overloaded or unreachable.
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
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/relaystation/relay/domain"
)

// Config is one upstream.
type Config struct {
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
	// Upstreams in order of preference: primary first, then fallbacks.
	// Entries without a URL or an API key are ignored.
	Upstreams []Config
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
	// Cooldown is how long an upstream that answered 429/529 or could not be
	// reached is passed over, when it sent no retry-after (default
	// DefaultCooldown).
	Cooldown time.Duration
	// MaxBodyBytes caps the buffered request body (default DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// Transport, when set, replaces the tuned per-upstream transports
	// (tests). Config.Timeout is then enforced on the attempt's context
	// until response headers arrive.
	Transport http.RoundTripper
	Observer  Observer
	Log       *slog.Logger
	// Now is the clock (default time.Now).
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

// Observer is told about every attempt, retry and failover. Metrics are
// wired to it; the default does nothing.
type Observer interface {
	Attempt(upstream string, outcome Outcome)
	Retry(upstream string)
	Failover(from, to string)
}

// NopObserver ignores everything.
type NopObserver struct{}

func (NopObserver) Attempt(string, Outcome) {}
func (NopObserver) Retry(string)            {}
func (NopObserver) Failover(string, string) {}

// Info reports how a request was served. The caller puts an *Info in the
// request context with WithInfo; RoundTrip fills it in.
type Info struct {
	// Upstream is the name of the upstream whose answer was returned (or
	// the last one tried).
	Upstream string
	// Attempts made; Retries = Attempts-1 when at least one was made.
	Attempts  int
	Retries   int
	Failovers int
	// Outcome of the last attempt.
	Outcome Outcome
	// Written reports that some attempt's request reached an upstream: it
	// was written in full, or answered. When RoundTrip returns an error and
	// Written is true, the upstream may have done, and billed, the work, so
	// usage must be settled as estimated rather than as nothing.
	Written bool
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

type target struct {
	name       string
	scheme     string
	host       string
	basePath   string
	key        string
	maxRetries int
	rt         http.RoundTripper
	// headerTimeout, when not 0, is enforced here on the attempt's context,
	// because rt is not a transport built with NewHTTPTransport.
	headerTimeout time.Duration
	coolUntil     atomic.Int64 // unix nanos
}

// Transport is the retrying, failing-over RoundTripper.
type Transport struct {
	targets  []*target
	base     time.Duration
	maxDelay time.Duration
	deadline time.Duration
	cooldown time.Duration
	maxBody  int64
	obs      Observer
	log      *slog.Logger
	now      func() time.Time
}

var _ http.RoundTripper = (*Transport)(nil)

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
	// DefaultCooldown is how long an upstream that refused rests.
	DefaultCooldown = 30 * time.Second
)

// New builds a Transport. An invalid URL is an error; a Transport with no
// usable upstream is valid, answers every request with ErrNotConfigured, and
// reports Configured() == false.
func New(opts Options) (*Transport, error) {
	t := &Transport{
		base: opts.BaseDelay, maxDelay: opts.MaxDelay, deadline: opts.Deadline,
		cooldown: opts.Cooldown, maxBody: opts.MaxBodyBytes, obs: opts.Observer, log: opts.Log, now: opts.Now,
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
	if t.cooldown <= 0 {
		t.cooldown = DefaultCooldown
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
	for i, c := range opts.Upstreams {
		if c.URL == "" || c.APIKey == "" {
			continue
		}
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			// The URL may hold credentials; do not echo it.
			return nil, fmt.Errorf("upstream %q: url must be an absolute http(s) URL", c.Name)
		}
		name := c.Name
		if name == "" {
			name = "upstream" + strconv.Itoa(i)
		}
		timeout := c.Timeout
		if timeout <= 0 {
			timeout = DefaultTimeout
		}
		tg := &target{name: name, scheme: u.Scheme, host: u.Host, basePath: NormalizeBasePath(u.Path),
			key: c.APIKey, maxRetries: max(c.MaxRetries, 0), rt: opts.Transport}
		if tg.rt == nil {
			tg.rt = NewHTTPTransport(timeout)
		} else {
			tg.headerTimeout = timeout
		}
		t.targets = append(t.targets, tg)
	}
	return t, nil
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
func (t *Transport) Configured() bool { return len(t.targets) > 0 }

// ErrNotConfigured is returned for every request when no upstream has a
// key; the proxy answers it before trying (503 api_error).
var ErrNotConfigured = &domain.Error{Kind: domain.KindUnavailable, Reason: domain.ReasonUpstreamNotConfigured,
	Message: "upstream is not configured: the relay has no Anthropic API key; set UPSTREAM_API_KEY (upstream.primary.api_key)"}

// RoundTrip sends req to the first available upstream, retrying and failing
// over as configured. The client's x-api-key and Authorization are replaced
// by the upstream's key. It returns the first response that is not retried,
// or the last response when every attempt failed, or an error of kind
// KindUpstream (502, ReasonUpstreamConnection), KindTimeout (504,
// ReasonUpstreamTimeout) or KindTooLarge (413).
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	info := InfoFrom(req.Context())
	if info == nil {
		info = &Info{}
	}
	if len(t.targets) == 0 {
		closeBody(req)
		return nil, ErrNotConfigured
	}
	getBody, err := t.replayable(req)
	if err != nil {
		return nil, err
	}
	ctx := req.Context()
	start := t.now()
	deadline := start.Add(t.deadline)

	var tried [8]int // attempts per target; more targets than this share the last slot
	slot := func(i int) int { return min(i, len(tried)-1) }
	cur := t.pick(start)
	var lastResp *http.Response
	var last attempt
	var lastOutcome Outcome
	var wait time.Duration
	for {
		tg := t.targets[cur]
		if wait > 0 {
			if !sleepCtx(ctx, wait) {
				info.Outcome = OutcomeCanceled
				return nil, ctx.Err()
			}
		}
		out, err := t.prepare(req, tg, getBody)
		if err != nil {
			return nil, err
		}
		info.Attempts++
		info.Upstream = tg.name
		tried[slot(cur)]++
		// The overall deadline does not bound the attempt: once written,
		// cutting it short would not undo the work upstream, only lose
		// its answer.
		a := tg.send(ctx, out)
		info.Written = info.Written || a.written
		outcome := a.outcome(ctx)
		t.obs.Attempt(tg.name, outcome)
		info.Outcome = outcome
		if outcome == OutcomeCanceled {
			return nil, a.err
		}
		now := t.now()
		var ra time.Duration
		var hasRA bool
		if a.resp != nil && a.resp.StatusCode >= 400 {
			// Only an error answer's retry-after matters; a success skips
			// the header lookups.
			ra, hasRA = retryAfter(a.resp)
		}
		if outcome == OutcomeRateLimited || outcome == OutcomeOverloaded || outcome == OutcomeConnectError {
			cd := t.cooldown
			if hasRA {
				cd = ra
			}
			tg.coolUntil.Store(now.Add(cd).UnixNano())
		}
		if !a.retryable(req.Method, hasRA) {
			if a.err == nil {
				return a.resp, nil
			}
			// Written, then lost. An earlier attempt's answer (a 529, say)
			// is not this request's outcome: the upstream may be doing
			// the work.
			return nil, t.fail(info, a, outcome)
		}
		if a.resp != nil {
			// Kept, in memory, as the answer should every later attempt fail.
			lastResp = buffered(a.resp)
		}
		last, lastOutcome = a, outcome
		// The next upstream: another one that still has attempts left and
		// is not cooling down, else this one again if it has retries left.
		next := t.pickNext(cur, &tried, now)
		if next < 0 {
			return t.finish(info, lastResp, last, lastOutcome)
		}
		wait = 0
		if tried[slot(next)] > 0 {
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
			return t.finish(info, lastResp, last, lastOutcome)
		}
		if next != cur {
			info.Failovers++
			t.obs.Failover(tg.name, t.targets[next].name)
		}
		info.Retries++
		t.obs.Retry(t.targets[next].name)
		cur = next
	}
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

// send makes one attempt, tracing whether its request was written.
func (tg *target) send(ctx context.Context, out *http.Request) attempt {
	var conn, wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { conn.Store(true) },
		// Called after each write. A write that failed reached no handler
		// with a whole request; the transport may then write again, on a
		// fresh connection.
		WroteRequest: func(w httptrace.WroteRequestInfo) {
			if w.Err == nil {
				wrote.Store(true)
			}
		},
	})
	var a attempt
	if tg.headerTimeout <= 0 {
		// NewHTTPTransport's ResponseHeaderTimeout bounds the wait.
		a.resp, a.err = tg.rt.RoundTrip(out.WithContext(ctx))
	} else {
		a.roundTripWithin(tg.rt, out.WithContext(ctx), tg.headerTimeout)
	}
	// After an error, the transport is done writing: the flags are final.
	a.conn = conn.Load()
	a.written = a.written || a.err == nil || wrote.Load()
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

// pick returns the first target not cooling down, or the one whose
// cooldown ends first.
func (t *Transport) pick(now time.Time) int {
	best, bestUntil := 0, int64(1<<63-1)
	n := now.UnixNano()
	for i, tg := range t.targets {
		u := tg.coolUntil.Load()
		if u <= n {
			return i
		}
		if u < bestUntil {
			best, bestUntil = i, u
		}
	}
	return best
}

// pickNext chooses the target for the next attempt after cur failed:
// the next target in order with retries left and not cooling down;
// otherwise cur itself if it has retries left (waiting out its
// retry-after); otherwise any target with retries left; -1 if none.
func (t *Transport) pickNext(cur int, tried *[8]int, now time.Time) int {
	n := now.UnixNano()
	left := func(i int) bool { return tried[min(i, len(tried)-1)] <= t.targets[i].maxRetries }
	for k := 1; k < len(t.targets); k++ {
		i := (cur + k) % len(t.targets)
		if left(i) && t.targets[i].coolUntil.Load() <= n {
			return i
		}
	}
	if left(cur) {
		return cur
	}
	for k := 1; k < len(t.targets); k++ {
		if i := (cur + k) % len(t.targets); left(i) {
			return i
		}
	}
	return -1
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
		// Grow with the bytes that actually arrive: a client announcing
		// 32 MB and sending nothing must not cost 32 MB.
		buf := bytes.NewBuffer(make([]byte, 0, min(n, 64<<10)+1))
		if _, err := io.CopyN(buf, r, n); err != nil {
			return nil, fmt.Errorf("read request body: %w", err)
		}
		// A body longer than announced is the server's business; net/http
		// already enforces Content-Length.
		return buf.Bytes(), nil
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
func (t *Transport) prepare(req *http.Request, tg *target, getBody func() (io.ReadCloser, error)) (*http.Request, error) {
	out := new(http.Request)
	*out = *req
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
	out.Header = req.Header.Clone()
	if out.Header == nil {
		out.Header = make(http.Header, 1)
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

// retryAfter reads retry-after-ms or retry-after (seconds or an HTTP date).
func retryAfter(resp *http.Response) (time.Duration, bool) {
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
		if d := time.Until(at); d > 0 {
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
