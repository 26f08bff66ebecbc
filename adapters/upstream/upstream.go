// Package upstream is the relay's driven side towards Anthropic: an
// http.RoundTripper that swaps in the upstream key, retries retryable
// failures with backoff, fails over across an ordered list of upstreams and
// cools down upstreams that are overloaded or unreachable.
//
// All retrying happens inside RoundTrip, before a response is handed back,
// so no retry can ever follow a byte that reached the client.
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
	// body: streams are long). Default 10 minutes, as Anthropic's own SDKs.
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
	// BaseDelay starts the exponential backoff (default 500ms); the delay
	// before retry n is uniform in [0, min(MaxDelay, BaseDelay*2^n)).
	BaseDelay time.Duration
	// MaxDelay caps one backoff (default 8s).
	MaxDelay time.Duration
	// Deadline bounds the whole retry loop: no attempt or backoff starts
	// after it (default 2 minutes). A retry-after beyond it is not waited
	// for; the upstream's answer goes back instead.
	Deadline time.Duration
	// Cooldown is how long an upstream that answered 429/529 or could not be
	// reached is passed over, when it sent no retry-after (default 30s).
	Cooldown time.Duration
	// MaxBodyBytes caps the buffered request body (default 32 MB).
	MaxBodyBytes int64
	// Transport, when set, replaces the tuned per-upstream transports
	// (tests). Config.Timeout is then not enforced.
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
	OutcomeConnectError Outcome = "connect_error" // no response
	OutcomeTimeout      Outcome = "timeout"       // no response headers in time
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
	coolUntil  atomic.Int64 // unix nanos
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

// DefaultMaxBodyBytes is the default request-body limit.
const DefaultMaxBodyBytes = 32 << 20

// New builds a Transport. An invalid URL is an error; a Transport with no
// usable upstream is valid, answers every request with ErrNotConfigured, and
// reports Configured() == false.
func New(opts Options) (*Transport, error) {
	t := &Transport{
		base: opts.BaseDelay, maxDelay: opts.MaxDelay, deadline: opts.Deadline,
		cooldown: opts.Cooldown, maxBody: opts.MaxBodyBytes, obs: opts.Observer, log: opts.Log, now: opts.Now,
	}
	if t.base <= 0 {
		t.base = 500 * time.Millisecond
	}
	if t.maxDelay <= 0 {
		t.maxDelay = 8 * time.Second
	}
	if t.deadline <= 0 {
		t.deadline = 2 * time.Minute
	}
	if t.cooldown <= 0 {
		t.cooldown = 30 * time.Second
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
		tg := &target{name: name, scheme: u.Scheme, host: u.Host, basePath: NormalizeBasePath(u.Path),
			key: c.APIKey, maxRetries: max(c.MaxRetries, 0), rt: opts.Transport}
		if tg.rt == nil {
			timeout := c.Timeout
			if timeout <= 0 {
				timeout = 10 * time.Minute
			}
			tg.rt = NewHTTPTransport(timeout)
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

// ErrNotConfigured is returned for every request when no upstream has a key.
var ErrNotConfigured = &domain.Error{Kind: domain.KindUpstream, Reason: "not_configured",
	Message: "upstream is not configured: set an API key for the primary upstream"}

// RoundTrip sends req to the first available upstream, retrying and failing
// over as configured. The client's x-api-key and Authorization are replaced
// by the upstream's key. It returns the first non-retryable response, or the
// last response when every attempt failed, or an error of kind KindUpstream
// (502), KindTimeout (504) or KindTooLarge (413).
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
	var lastErr error
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
		// The wait for response headers may not outlast the overall
		// deadline. The timer is stopped once headers arrive, so it never
		// cuts a body (a stream) short.
		actx, acancel := context.WithCancel(ctx)
		var timedOut atomic.Bool
		timer := time.AfterFunc(max(deadline.Sub(t.now()), time.Millisecond), func() {
			timedOut.Store(true)
			acancel()
		})
		resp, err := tg.rt.RoundTrip(out.WithContext(actx))
		timer.Stop()
		if err != nil {
			acancel()
		}
		outcome, retryable := classify(resp, err, ctx)
		if err != nil && timedOut.Load() && ctx.Err() == nil {
			// Out of time: answer now rather than try another upstream.
			outcome, retryable = OutcomeTimeout, false
			t.obs.Attempt(tg.name, outcome)
			info.Outcome = outcome
			return t.finish(info, lastResp, err, outcome)
		}
		t.obs.Attempt(tg.name, outcome)
		info.Outcome = outcome
		if !retryable {
			if err == nil {
				return resp, nil
			}
			if outcome == OutcomeCanceled {
				return nil, err
			}
			return t.finish(info, lastResp, err, outcome)
		}
		if err == nil {
			// Kept, in memory, as the answer should every later attempt fail.
			lastResp = buffered(resp)
		}
		lastErr, lastOutcome = err, outcome
		now := t.now()
		ra, hasRA := retryAfter(resp)
		if outcome == OutcomeRateLimited || outcome == OutcomeOverloaded || outcome == OutcomeConnectError {
			cd := t.cooldown
			if hasRA {
				cd = ra
			}
			tg.coolUntil.Store(now.Add(cd).UnixNano())
		}
		if resp != nil && strings.EqualFold(resp.Header.Get("x-should-retry"), "false") {
			return t.finish(info, lastResp, lastErr, lastOutcome)
		}
		// The next upstream: another one that still has attempts left and
		// is not cooling down, else this one again if it has retries left.
		next := t.pickNext(cur, &tried, now)
		if next < 0 {
			return t.finish(info, lastResp, lastErr, lastOutcome)
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
			return t.finish(info, lastResp, lastErr, lastOutcome)
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

// finish ends a request whose last attempt failed: the last upstream
// response, if any attempt got one, else an error saying what happened.
func (t *Transport) finish(info *Info, resp *http.Response, err error, outcome Outcome) (*http.Response, error) {
	if resp != nil {
		return resp, nil
	}
	switch outcome {
	case OutcomeTimeout:
		return nil, &domain.Error{Kind: domain.KindTimeout, Reason: string(outcome), Err: err,
			Message: fmt.Sprintf("upstream %q did not answer in time (%d attempts)", info.Upstream, info.Attempts)}
	default:
		return nil, &domain.Error{Kind: domain.KindUpstream, Reason: string(outcome), Err: err,
			Message: fmt.Sprintf("could not reach upstream %q: %s (%d attempts)", info.Upstream, describe(err), info.Attempts)}
	}
}

// describe names a connection failure without addresses or URLs.
func describe(err error) string {
	var ne *net.OpError
	switch {
	case err == nil:
		return "no response"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed before a response"
	case errors.As(err, &ne) && ne.Op == "dial":
		return "connection failed"
	case strings.Contains(err.Error(), "connection reset"):
		return "connection reset"
	case strings.Contains(err.Error(), "tls"):
		return "TLS failure"
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
	return &domain.Error{Kind: domain.KindTooLarge, Reason: "body",
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

// classify labels an attempt and says whether it may be retried.
func classify(resp *http.Response, err error, ctx context.Context) (Outcome, bool) {
	if err != nil {
		if ctx.Err() != nil {
			return OutcomeCanceled, false
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
			return OutcomeTimeout, true
		}
		return OutcomeConnectError, true
	}
	switch s := resp.StatusCode; {
	case s < 400:
		return OutcomeOK, false
	case s == http.StatusTooManyRequests:
		return OutcomeRateLimited, true
	case s == 529:
		return OutcomeOverloaded, true
	case s < 500:
		return OutcomeClientError, false
	case s == 500, s == 502, s == 503, s == 504:
		return OutcomeServerError, true
	default:
		return OutcomeServerError, false
	}
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
