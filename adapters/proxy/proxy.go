// Package proxy is the relay's data plane: a net/http handler, with its own
// proxy loop on the upstream transport (forward.go), that authenticates the
// proxy key, classifies the path against the endpoint catalogue, reads the
// body, and hands the call to the domain (relay.Service.Admit), then meters
// the answer as it passes through and hands the outcome back
// (Admission.Finish). Every rule about money is the domain's; this package
// moves bytes. It knows nothing of echo: the management API only mounts it.
package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/adapters/httpx"
	"github.com/relaystation/relay/adapters/upstream"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/pool"
	"github.com/relaystation/relay/domain/relay"
)

// Options wires the proxy. Service and Transport are required.
type Options struct {
	// Service runs admission and settlement.
	Service *relay.Service
	// Transport sends requests upstream: an *upstream.Transport, which
	// picks the upstream, swaps the key, retries and fails over; each call
	// carries an upstream.Route (model, session, group, the upstream its
	// objects live on). While it reports Configured() == false, every call
	// is answered with upstream.ErrNotConfigured (503).
	Transport http.RoundTripper
	// ClientIP resolves the client address; nil uses the peer address.
	ClientIP *httpx.ClientIPResolver
	// Log gets one Info line per proxied request (never a key or a body)
	// and errors; nil logs nothing.
	Log *slog.Logger
	// AccessLog, when set, receives the per-request Info line instead of
	// Log, as the JSON line Log's JSON handler would write, built without
	// slog (see accessLine); Log's level still decides whether it is
	// written. Share it with Log's handler through a *LockedWriter.
	AccessLog io.Writer
	// MaxBodyBytes caps request bodies (default
	// upstream.DefaultMaxBodyBytes); larger ones get 413 request_too_large.
	MaxBodyBytes int64
	// MaxBufferedBytes caps the request bytes all requests together may
	// hold in memory (default DefaultMaxBufferedBytes); a request that
	// would go past it gets 503 overloaded_error with retry-after, and
	// nothing goes upstream.
	MaxBufferedBytes int64
	// IdleTimeout ends a response when the upstream sends nothing for this
	// long (default DefaultIdleTimeout). There is no overall timeout:
	// streams are long.
	IdleTimeout time.Duration
	// WriteTimeout closes a response whose client has not taken a write
	// for this long (default DefaultWriteTimeout): a client that stops
	// reading would otherwise hold its concurrency slot and reservation for
	// as long as the upstream keeps talking.
	WriteTimeout time.Duration
	// BodyReadTimeout and BodyMinRate bound how long a request body may
	// take to arrive: BodyReadTimeout (default httpx.DefaultBodyReadTimeout)
	// plus one second per BodyMinRate bytes received (default
	// DefaultBodyMinRate; negative: no extension).
	// A sender that falls behind has its connection closed.
	BodyReadTimeout time.Duration
	BodyMinRate     int64
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Observer is told about every proxied request, for metrics; nil: no-op.
	Observer Observer
	// Router classifies paths against the endpoint catalogue; nil: the
	// catalogue alone, no passthrough prefixes.
	Router *relay.Router
	// CORSAllowedOrigins are origins (scheme://host[:port]) that get CORS
	// headers on the responses of keys without allowed_domains, and the only
	// ones a preflight is answered for when non-empty.
	CORSAllowedOrigins []string
}

// Observer receives proxy events. Implementations must be cheap: they
// run on every request.
type Observer interface {
	// RequestStarted and RequestFinished bracket every proxied request.
	RequestStarted()
	RequestFinished()
	// StreamOpened and StreamClosed bracket every SSE response.
	StreamOpened()
	StreamClosed()
	// Done reports a finished request: admitted ones with their usage
	// record, refused ones with only the status (and model when known).
	Done(rec *domain.UsageRecord)
}

// NopObserver ignores everything.
type NopObserver struct{}

func (NopObserver) RequestStarted()          {}
func (NopObserver) RequestFinished()         {}
func (NopObserver) StreamOpened()            {}
func (NopObserver) StreamClosed()            {}
func (NopObserver) Done(*domain.UsageRecord) {}

// Handler relays every path the management API does not claim to the
// upstream, with admission before and usage settlement after.
type Handler struct {
	// transport is the upstream adapter: pool, retries, the upstream key.
	transport http.RoundTripper
	svc       *relay.Service
	access    *accessLine // nil: the per-request line goes through log
	// ready: a service and a transport were given; conf, when set, says
	// whether the transport has an upstream now (upstreams come and go).
	ready     bool
	conf      interface{ Configured() bool }
	clientIP  *httpx.ClientIPResolver
	log       *slog.Logger
	maxBody   int64
	buffered  bodyBudget
	writeWait time.Duration
	bodyWait  time.Duration
	bodyRate  int64
	idle      time.Duration
	now       func() time.Time
	obs       Observer
	cors      map[string]bool
	router    *relay.Router
}

// New builds the proxy handler.
func New(opts Options) *Handler {
	p := &Handler{svc: opts.Service, clientIP: opts.ClientIP, log: opts.Log, maxBody: opts.MaxBodyBytes,
		idle: opts.IdleTimeout, now: opts.Now, obs: opts.Observer}
	if p.obs == nil {
		p.obs = NopObserver{}
	}
	if len(opts.CORSAllowedOrigins) > 0 {
		p.cors = make(map[string]bool, len(opts.CORSAllowedOrigins))
		for _, o := range opts.CORSAllowedOrigins {
			p.cors[strings.ToLower(strings.TrimRight(o, "/"))] = true
		}
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if opts.AccessLog != nil {
		p.access = &accessLine{w: opts.AccessLog}
	}
	p.router = opts.Router
	if p.router == nil {
		p.router, _ = relay.NewRouter(nil)
	}
	if p.maxBody <= 0 {
		p.maxBody = upstream.DefaultMaxBodyBytes
	}
	p.writeWait = opts.WriteTimeout
	if p.writeWait <= 0 {
		p.writeWait = DefaultWriteTimeout
	}
	p.bodyWait, p.bodyRate = opts.BodyReadTimeout, opts.BodyMinRate
	if p.bodyWait <= 0 {
		p.bodyWait = httpx.DefaultBodyReadTimeout
	}
	if p.bodyRate == 0 {
		p.bodyRate = DefaultBodyMinRate
	}
	p.buffered.limit = opts.MaxBufferedBytes
	if p.buffered.limit <= 0 {
		p.buffered.limit = DefaultMaxBufferedBytes
	}
	if p.idle <= 0 {
		p.idle = DefaultIdleTimeout
	}
	if p.now == nil {
		p.now = time.Now
	}
	p.ready = opts.Transport != nil && opts.Service != nil
	p.conf, _ = opts.Transport.(interface{ Configured() bool })
	p.transport = opts.Transport
	return p
}

// proxyBufs recycles the 32 KB buffers answers are copied through, and
// streamBufs the 4 KB ones of event streams. A stream holds its buffer for
// as long as it is open (minutes, for a long generation) while its events
// arrive a few hundred bytes at a time, and the upstream connection's own
// read buffer is 4 KB: a larger one would only be idle memory per open
// stream (28 KB of it, about half of what a bare proxy's stream costs).
var (
	proxyBufs  = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
	streamBufs = sync.Pool{New: func() any { b := make([]byte, 4<<10); return &b }}
)

// Defaults of the proxy's options.
const (
	// DefaultMaxBufferedBytes is the relay-wide cap on buffered request
	// bodies.
	DefaultMaxBufferedBytes = 1 << 30
	// DefaultIdleTimeout is the longest silence from the upstream mid-answer.
	DefaultIdleTimeout = 5 * time.Minute
	// DefaultWriteTimeout is the longest a client may take no write.
	DefaultWriteTimeout = 2 * time.Minute
)

// errBuffersFull refuses a body that would take the relay past its cap on
// buffered request bytes.
var errBuffersFull = &domain.Error{Kind: domain.KindOverloaded, Reason: domain.ReasonBuffers, RetryAfter: time.Second,
	Message: "the relay is holding as many request bytes as it may; retry shortly"}

// bodyBudget counts the request bytes all requests hold.
type bodyBudget struct {
	used  atomic.Int64
	limit int64
}

// bodyHold is one request's share of the budget.
type bodyHold struct {
	b    *bodyBudget
	held int64
}

func (h *bodyHold) take(n int64) bool {
	if n <= 0 {
		return true
	}
	if h.b.used.Add(n) > h.b.limit {
		h.b.used.Add(-n)
		return false
	}
	h.held += n
	return true
}

func (h *bodyHold) release() {
	if h.held > 0 {
		h.b.used.Add(-h.held)
		h.held = 0
	}
}

// budgetReader takes budget for each chunk of a body of unknown length.
type budgetReader struct {
	r io.Reader
	h *bodyHold
}

func (br *budgetReader) Read(p []byte) (int, error) {
	n, err := br.r.Read(p)
	if n > 0 && !br.h.take(int64(n)) {
		return 0, errBuffersFull
	}
	return n, err
}

// proxyCall is one proxied request's state, from admission to settlement.
// The rules (what is billed, what is estimated, what the record says) are
// the domain's (relay.Admission.Finish); this only gathers the outcome.
type proxyCall struct {
	p        *Handler
	adm      *relay.Admission
	info     upstream.Info
	upRoute  upstream.Route
	start    time.Time
	ttfb     time.Duration
	route    relay.Route
	status   int
	upStatus int
	answered bool
	upReqID  string
	stream   bool
	cancel   context.CancelCauseFunc
	causeCtx context.Context
	errType  string
	once     sync.Once
	origin   string
	w        http.ResponseWriter
	// streamOpen: StreamOpened was reported and StreamClosed is owed.
	streamOpen bool

	meter proxyMeter
	// meterStarted: the answer's headers arrived and the meter reads it.
	meterStarted bool
	eof          bool
	readErr      error
	// capture keeps a create call's small JSON answer, for the new id.
	capture []byte
	// pw is the client writer with write-progress deadlines.
	pw progressWriter
}

// errProxyIdle cancels an upstream response that went quiet.
var errProxyIdle = errors.New("upstream idle timeout")

// proxyCaptureLimit bounds the copy of a create call's answer kept for its id.
const proxyCaptureLimit = 64 << 10

// proxyListLimit bounds a batch or file listing the relay filters.
const proxyListLimit = 8 << 20

// requestPath is the path exactly as the client sent it (before any
// decoding), which is what gets classified and forwarded.
func requestPath(r *http.Request) string {
	if u := r.RequestURI; strings.HasPrefix(u, "/") {
		if i := strings.IndexByte(u, '?'); i >= 0 {
			u = u[:i]
		}
		return u
	}
	return r.URL.EscapedPath()
}

func (p *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	reqID := httpx.RequestIDFrom(ctx)
	if reqID == "" {
		reqID = httpx.NewRequestID()
		ctx = httpx.WithRequestID(ctx, reqID)
		w.Header().Set(httpx.HeaderRequestID, reqID)
		r = r.WithContext(ctx)
	}
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		p.preflight(w, r)
		return
	}
	p.obs.RequestStarted()
	defer p.obs.RequestFinished()
	// Admission (admit) answers every refusal itself; what is left here is
	// the admitted call's way upstream and back. The body's hold on the
	// relay-wide budget is released here however the request ends, a
	// panic in admission included.
	var held *bodyHold
	defer func() {
		if held != nil {
			held.release()
		}
	}()
	c, body, key, session := p.admit(w, r, reqID, &held)
	if c == nil {
		return
	}
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				c.status, c.errType = http.StatusInternalServerError, "panic"
			}
			c.finish()
			panic(v)
		}
		// Normally settled by the body's Close or the error handler; this
		// covers any path that reached neither.
		c.finish()
	}()

	c.upRoute = upstreamRoute(key, c.adm, c.route, session)
	ctx = upstream.WithInfo(ctx, &c.info)
	ctx = upstream.WithRoute(ctx, &c.upRoute)
	ctx, c.cancel = context.WithCancelCause(ctx)
	c.causeCtx = ctx
	defer c.cancel(nil)
	out := r.WithContext(ctx)
	// What is forwarded is exactly what was classified: the canonical path
	// (it holds no escapes), the query as sent less what does not parse.
	u := *r.URL
	u.Path, u.RawPath = c.route.Path, ""
	u.RawQuery = cleanQuery(u.RawQuery)
	out.URL = &u
	out.Host, out.Close = "", false
	// Request trailers would carry headers past every header rule (a
	// trailer named X-Api-Key would send the proxy key upstream). The body
	// is buffered and sent with a length, so none is ever needed.
	out.Trailer = nil
	// out.Header is the client's own header map: the upstream transport
	// sets the upstream key in it for the first attempt (Route.OwnHeader),
	// so from here on it holds a secret and is never logged or echoed.
	outboundHeader(out.Header)
	out.Body, out.ContentLength, out.GetBody = nil, 0, nil
	if len(body) > 0 {
		// An empty body goes as none (Content-Length: 0), never chunked.
		// A NopCloser over a bytes.Reader, which net/http knows to be in
		// memory: it writes the headers and the body in one write (any
		// other body type has its headers flushed first, on their own).
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.ContentLength = int64(len(body))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	p.forward(c, out)
	// The connection may serve more requests (keep-alive) that set no
	// deadline of their own: leave none behind.
	if !c.pw.noDeadline {
		_ = c.pw.rc.SetWriteDeadline(time.Time{})
	}
}

// admit takes a request as far as the relay's admission: the key, the
// route, the body and the domain's Admit. It returns the call to forward,
// with its body, its key and its session; or a nil call when the request
// was refused (answered here). *hold is set when the buffered body counts
// against the relay-wide budget; the caller releases it when the request
// ends. Nothing after Admit may fail or panic here: the caller's deferred
// finish settles the admission only once admit has returned.
func (p *Handler) admit(w http.ResponseWriter, r *http.Request, reqID string, hold **bodyHold) (*proxyCall, []byte, *domain.APIKey, string) {
	ctx := r.Context()
	start := p.now()
	// Every body has a deadline to arrive, set before anything else: even
	// one the relay refuses unread is drained by net/http after the handler,
	// and a sender that stalls must not hold its connection for ever.
	// One controller serves the body deadline, the write deadlines and the
	// final flush.
	rc := http.NewResponseController(w)
	var pace *bodyPace
	if r.Body != nil && r.Body != http.NoBody {
		pace = p.paceBody(rc, r)
	}
	ref := relay.Refusal{RequestID: reqID, Start: start, Path: requestPath(r), Session: r.Header.Get("X-Claude-Code-Session-Id")}
	if !p.ready || p.conf != nil && !p.conf.Configured() {
		p.refused(w, r, &ref, upstream.ErrNotConfigured)
		return nil, nil, nil, ""
	}
	client, err := p.clientIP.Resolve(r)
	if err != nil {
		p.refused(w, r, &ref, err)
		return nil, nil, nil, ""
	}
	ref.ClientIP = client
	// The key (and its IP allow-list) is checked before the body is read, so
	// a client without a valid key cannot make the relay buffer anything.
	raw, err := relay.KeyFromHeaders(r.Header)
	var key domain.APIKey
	if err == nil {
		key, err = p.svc.Authenticate(ctx, raw, ref.ClientIP)
	}
	if key.ID != uuid.Nil {
		ref.Key = &key
	}
	if err != nil {
		p.refused(w, r, &ref, err)
		return nil, nil, nil, ""
	}
	route, err := p.router.Classify(r.Method, ref.Path)
	if err != nil {
		if domain.KindOf(err) == domain.KindMethodNotAllowed {
			if allow := p.router.Allow(ref.Path); allow != "" {
				w.Header().Set("Allow", allow)
			}
		}
		p.refused(w, r, &ref, err)
		return nil, nil, nil, ""
	}
	ref.Route = route
	call := relay.Call{Route: route, RequestID: reqID, Start: start, ClientIP: ref.ClientIP,
		Origin: r.Header.Get("Origin"), Referer: r.Header.Get("Referer"),
		ContentType: headerValue(r.Header, "Content-Type"), ContentEncoding: headerValue(r.Header, "Content-Encoding"), Session: ref.Session}
	if pace != nil {
		// Every buffered byte counts against the relay-wide budget while
		// the request lives: announced bytes up front, others as they come.
		held := &bodyHold{b: &p.buffered}
		*hold = held
		var src io.Reader = pace
		if r.ContentLength >= 0 && r.ContentLength <= p.maxBody {
			if !held.take(r.ContentLength) {
				p.refused(w, r, &ref, errBuffersFull)
				return nil, nil, nil, ""
			}
		} else {
			src = &budgetReader{r: pace, h: held}
		}
		body, err := upstream.ReadBody(src, r.ContentLength, p.maxBody)
		if err == nil {
			// The answer may stream for an hour: no read deadline may
			// outlive the body (net/http's background read would cancel
			// the call). After an error it stays, bounding net/http's
			// drain of what is left of the body.
			pace.done()
		}
		if errors.Is(err, errBuffersFull) {
			p.refused(w, r, &ref, errBuffersFull)
			return nil, nil, nil, ""
		}
		if err != nil {
			var ne net.Error
			switch {
			case domain.KindOf(err) == domain.KindTooLarge:
			case errors.As(err, &ne) && ne.Timeout():
				err = &domain.Error{Kind: domain.KindInvalid, Reason: domain.ReasonBodyTimeout, Err: err,
					Message: "the request body did not arrive in time; the connection is closed"}
			default:
				err = &domain.Error{Kind: domain.KindInvalid, Message: "could not read the request body", Err: err}
			}
			p.refused(w, r, &ref, err)
			return nil, nil, nil, ""
		}
		call.Body = body
	}
	adm, err := p.svc.Admit(ctx, key, call)
	if err != nil {
		p.refused(w, r, &ref, err)
		return nil, nil, nil, ""
	}
	c := &proxyCall{p: p, w: w, start: start, route: route, adm: adm, origin: call.Origin,
		pw: progressWriter{ResponseWriter: w, rc: rc, wait: p.writeWait}}
	return c, call.Body, &key, ref.Session
}

// upstreamRoute is what the call asks of its upstream: the model, the key's
// group, the upstream its objects live on, and for metered calls (the ones
// a prompt cache serves) the session to pin, which is the Claude Code
// session, else the body's metadata.user_id, else the key itself.
func upstreamRoute(key *domain.APIKey, adm *relay.Admission, route relay.Route, claudeSession string) upstream.Route {
	// OwnHeader: the outbound header is the client's, edited for this
	// call in place (outboundHeader), and read by nothing after it.
	r := upstream.Route{Model: adm.Request.Model, Group: key.UpstreamGroup, Require: adm.ObjectUpstream(), OwnHeader: true}
	if route.Endpoint.Billing() == relay.BillingMetered {
		r.Session = pool.SessionKey(key.ID.String(), claudeSession, adm.Request.UserID)
	}
	return r
}

// headerValue is every value of a header, joined: a header sent twice is
// judged as a whole (two Content-Types are not JSON), never by its first
// value alone while the upstream reads another.
func headerValue(h http.Header, name string) string {
	vs := h.Values(name)
	switch len(vs) {
	case 0:
		return ""
	case 1:
		return vs[0]
	}
	return strings.Join(vs, ", ")
}

// refused answers a request that never went upstream, records it against
// the key when the key is known, and logs it.
func (p *Handler) refused(w http.ResponseWriter, r *http.Request, ref *relay.Refusal, err error) {
	// A browser page may read the refusal (a 429, say) on the same terms
	// as a success: the key's allowed_domains, else cors.allowed_origins.
	if origin := r.Header.Get("Origin"); origin != "" {
		var allowed []string
		if ref.Key != nil {
			allowed = ref.Key.AllowedDomains
		}
		p.corsHeaders(w.Header(), origin, allowed)
	}
	httpx.WriteError(w, r, p.log, err)
	ref.Status, ref.ErrorType = httpx.StatusOf(err)
	rec := p.svc.Refused(r.Context(), *ref)
	p.logLine(&rec, upstream.Info{})
	p.obs.Done(&rec)
}

// proxyDropHeaders never go upstream: credentials and cookies for the
// relay, headers that could make a gateway rewrite the path or method, and
// Origin/Referer (already used for allowed_domains; at Anthropic an Origin
// turns a call into a browser CORS call).
var proxyDropHeaders = []string{
	"X-Api-Key", "Authorization", "Cookie", "Proxy-Authorization",
	"X-Real-Ip", "X-Original-Url", "X-Rewrite-Url", "X-Http-Method-Override", "X-Http-Method", "X-Method-Override",
	"Forwarded", "Origin", "Referer",
	// net/http re-sends a written POST on a broken keep-alive connection
	// when it carries an idempotency key: never let a client ask for that.
	"Idempotency-Key", "X-Idempotency-Key",
}

// Relay rate-limit headers: named so that they never collide with the
// upstream's anthropic-ratelimit-* or the OpenAI endpoint's x-ratelimit-*.
const (
	headerRelayLimit     = "X-Relay-Ratelimit-Limit-Requests"
	headerRelayRemaining = "X-Relay-Ratelimit-Remaining-Requests"
	headerRelayReset     = "X-Relay-Ratelimit-Reset-Requests"
)

// answer takes in the upstream's answer before any of it is relayed: the
// call's status and stream flags, the header rules (no upstream CORS, no
// organization id, the relay's own rate-limit headers), the listing
// filters, and the meter on the body.
func (p *Handler) answer(c *proxyCall, resp *http.Response) error {
	c.ttfb = p.now().Sub(c.start)
	c.status, c.upStatus, c.answered = resp.StatusCode, resp.StatusCode, true
	c.upReqID = resp.Header.Get("request-id")
	c.stream = isEventStream(resp.Header.Get("Content-Type"))
	if c.stream {
		c.streamOpen = true
		p.obs.StreamOpened()
	}
	h := resp.Header
	// The upstream's own CORS answer (Anthropic allows any origin for direct
	// browser access) must not override the key's allow-list, and the
	// operator's organization id is nobody else's business.
	for k := range h {
		if strings.HasPrefix(k, "Access-Control-") {
			delete(h, k)
		}
	}
	delete(h, "Anthropic-Organization-Id")
	if c.origin != "" {
		c.p.corsHeaders(h, c.origin, c.adm.Key.AllowedDomains)
	}
	if c.adm.RateChecked {
		d := c.adm.Rate
		// One backing array for the three values.
		v := []string{strconv.FormatInt(d.Limit, 10), strconv.FormatInt(d.Remaining, 10),
			c.start.Add(d.ResetAfter).UTC().Format(time.RFC3339)}
		h[headerRelayLimit], h[headerRelayRemaining], h[headerRelayReset] = v[0:1:1], v[1:2:2], v[2:3:3]
	}
	ep := c.route.Endpoint
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	if ok && (ep == relay.EndpointBatchList || ep == relay.EndpointFileList ||
		ep == relay.EndpointModels && len(c.adm.Key.AllowedModels) > 0) {
		if err := p.filterListing(resp, c); err != nil {
			return err
		}
	}
	c.meter.start(ep, c.stream, resp.Header.Get("Content-Encoding"))
	c.meterStarted = true
	resp.Body = &proxyBody{c: c, rc: resp.Body, timer: time.AfterFunc(p.idle, func() { c.cancel(errProxyIdle) })}
	return nil
}

// filterListing replaces a batch or file listing with the entries the key
// owns, and a model listing with the models the key may use. A listing is small JSON (a page of at most 1,000 ids), so it is
// read whole; the page's has_more is kept, first_id/last_id follow the
// entries kept.
func (p *Handler) filterListing(resp *http.Response, c *proxyCall) error {
	body, err := io.ReadAll(io.LimitReader(resp.Body, proxyListLimit+1))
	_ = resp.Body.Close()
	if err != nil || len(body) > proxyListLimit {
		return &domain.Error{Kind: domain.KindUpstream, Reason: domain.ReasonUpstreamListing, Message: "could not read the upstream listing", Err: err}
	}
	keep := func(ctx context.Context, ids []string) ([]string, error) {
		kind, _ := c.route.Endpoint.Object()
		return p.svc.OwnedAmong(ctx, c.adm.Key, kind, ids)
	}
	if c.route.Endpoint == relay.EndpointModels {
		// A key with allowed_models sees only the models it may use.
		keep = func(_ context.Context, ids []string) ([]string, error) {
			out := ids[:0:0]
			for _, id := range ids {
				if relay.ModelAllowed(c.adm.Key.AllowedModels, id) {
					out = append(out, id)
				}
			}
			return out, nil
		}
	}
	out, err := filterListing(resp.Request.Context(), body, keep)
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(out))
	resp.ContentLength = int64(len(out))
	resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
	resp.Header.Del("Content-Encoding")
	return nil
}

// progressWriter gives every write to the client a deadline: a client that
// stops reading makes the write fail after wait, which ends the copy, and
// the call finishes with the usage seen so far (its slot and reservation
// are given back). It keeps Flush and Unwrap, so streaming is unchanged.
type progressWriter struct {
	http.ResponseWriter
	rc   *http.ResponseController
	wait time.Duration
	// noDeadline: the writer cannot take deadlines (not an http.Server's;
	// a handler test's recorder), so none is tried again.
	noDeadline bool
}

func (pw *progressWriter) Write(b []byte) (int, error) {
	if !pw.noDeadline {
		err := pw.rc.SetWriteDeadline(time.Now().Add(pw.wait))
		pw.noDeadline = errors.Is(err, http.ErrNotSupported)
	}
	return pw.ResponseWriter.Write(b)
}

func (pw *progressWriter) Flush() { _ = pw.rc.Flush() }

func (pw *progressWriter) Unwrap() http.ResponseWriter { return pw.ResponseWriter }

// proxyBody passes the upstream body through untouched while feeding the
// meter, and finishes the call on Close: forward closes it however the
// copy ends (done, client gone, upstream dropped).
type proxyBody struct {
	c     *proxyCall
	rc    io.ReadCloser
	timer *time.Timer
}

func (b *proxyBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	c := b.c
	if n > 0 {
		b.timer.Reset(c.p.idle)
		c.adm.KeepAlive(c.causeCtx)
		c.meter.feed(p[:n])
		if c.route.Endpoint == relay.EndpointBatchCreate || c.route.Endpoint == relay.EndpointFileUpload {
			if len(c.capture)+n <= proxyCaptureLimit {
				c.capture = append(c.capture, p[:n]...)
			}
		}
	}
	if err == io.EOF {
		c.eof = true
	} else if err != nil && c.readErr == nil {
		c.readErr = err
	}
	return n, err
}

func (b *proxyBody) Close() error {
	b.timer.Stop()
	err := b.rc.Close()
	c := b.c
	if c.eof && !c.stream && c.w != nil {
		// The whole body has been copied: send it now, so the client is not
		// kept waiting while usage is parsed, settled and logged.
		_ = c.pw.rc.Flush()
	}
	c.finish()
	return err
}

// closeStream reports the end of an SSE response exactly once.
func (c *proxyCall) closeStream() {
	if c.streamOpen {
		c.streamOpen = false
		c.p.obs.StreamClosed()
	}
}

// failed answers a failure before any response byte was written:
// the upstream's own errors are never here (they pass through as
// responses); these are connection failures, timeouts, oversize bodies and
// the client going away.
func (p *Handler) failed(c *proxyCall, w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil && !errors.Is(context.Cause(r.Context()), errProxyIdle) {
		// The client went away; nobody is listening for an answer.
		c.status, c.errType = 499, "client_closed"
		c.finish()
		return
	}
	if domain.AsError(err) == nil {
		err = &domain.Error{Kind: domain.KindUpstream, Message: "upstream request failed", Err: err}
	}
	c.status, c.errType = httpx.StatusOf(err)
	c.finish()
	httpx.WriteError(w, r, p.log, err)
}

// finish gathers the outcome and hands it to the domain once.
func (c *proxyCall) finish() {
	c.once.Do(func() {
		c.closeStream()
		out := relay.Outcome{
			Status: c.status, Answered: c.answered, UpstreamStatus: c.upStatus,
			Written: c.info.Written || c.answered, Stream: c.stream, ErrorType: c.errType,
			TTFB: c.ttfb, End: c.p.now(), Upstream: c.info.UpstreamID, UpstreamRequestID: c.upReqID,
			Attempts: c.info.Attempts, Tried: c.info.Tried,
		}
		if c.answered && c.meterStarted {
			out.Reply = c.meter.reply(c.eof && c.readErr == nil)
			if c.capture != nil && c.eof {
				out.Reply.ObjectID = objectID(c.capture)
			}
		}
		if out.ErrorType == "" && c.causeCtx != nil && (c.readErr != nil || (c.answered && !c.eof && c.status < 300)) {
			switch cause := context.Cause(c.causeCtx); {
			case errors.Is(cause, errProxyIdle):
				out.ErrorType = "idle_timeout"
			case cause != nil:
				out.ErrorType = "client_closed"
			case c.readErr != nil:
				out.ErrorType = "upstream_disconnected"
			}
		}
		c.meter.release()
		rec := c.adm.Finish(context.Background(), out)
		c.p.logLine(&rec, c.info)
		c.p.obs.Done(&rec)
	})
}

func (p *Handler) logLine(rec *domain.UsageRecord, info upstream.Info) {
	log := p.log
	ctx := context.Background()
	if !log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	if p.access != nil {
		p.access.write(time.Now(), rec, &info)
		return
	}
	log.LogAttrs(ctx, slog.LevelInfo, "proxied",
		slog.String("request_id", rec.RequestID),
		slog.String("key_id", rec.KeyID.String()),
		slog.String("model", rec.Model),
		slog.String("path", rec.Path),
		slog.String("endpoint", rec.Endpoint),
		slog.Int("status", rec.Status),
		slog.Bool("stream", rec.Stream),
		slog.Int64("input_tokens", rec.Usage.InputTokens),
		slog.Int64("output_tokens", rec.Usage.OutputTokens),
		slog.Int64("cache_creation_tokens", rec.Usage.CacheCreationInputTokens),
		slog.Int64("cache_read_tokens", rec.Usage.CacheReadInputTokens),
		slog.Bool("estimated", rec.Estimated),
		slog.Duration("latency", rec.Latency),
		slog.Duration("ttfb", rec.TTFB),
		slog.Int("retries", info.Retries),
		slog.String("upstream", rec.Upstream),
		slog.String("upstream_name", info.Upstream),
		slog.String("pick", string(info.Why)),
		slog.String("skipped", info.SkipSummary()),
		slog.String("error_type", rec.ErrorType),
	)
}

// proxyCORSAllowHeaders are the request headers a browser may send.
const proxyCORSAllowHeaders = "x-api-key, authorization, anthropic-version, anthropic-beta, anthropic-dangerous-direct-browser-access, content-type"

// proxyCORSExposeHeaders are the response headers a page may read.
const proxyCORSExposeHeaders = "request-id, x-request-id, retry-after, x-should-retry, anthropic-ratelimit-requests-limit, anthropic-ratelimit-requests-remaining, anthropic-ratelimit-requests-reset, anthropic-ratelimit-tokens-limit, anthropic-ratelimit-tokens-remaining, anthropic-ratelimit-tokens-reset, x-relay-ratelimit-limit-requests, x-relay-ratelimit-remaining-requests, x-relay-ratelimit-reset-requests"

// preflight answers a CORS preflight itself: it carries no key, so it never
// goes upstream. The key's allowed_domains are enforced on the real request.
func (p *Handler) preflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Add("Vary", "Origin")
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	origin := r.Header.Get("Origin")
	if origin != "" && (p.cors == nil || p.cors[strings.ToLower(origin)]) {
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Methods", "POST, GET")
		allow := proxyCORSAllowHeaders
		if req := r.Header.Get("Access-Control-Request-Headers"); req != "" && proxyHeaderList(req) {
			// The SDKs send more than the documented set (x-stainless-*,
			// x-claude-code-session-id, other anthropic-*): allow what the
			// page asks for; the key check happens on the real request.
			allow += ", " + req
		}
		h.Set("Access-Control-Allow-Headers", allow)
		h.Set("Access-Control-Max-Age", "600")
	}
	w.WriteHeader(http.StatusNoContent)
}

// proxyHeaderList reports whether s is a comma-separated list of header
// names (RFC 9110 tokens), safe to echo back.
func proxyHeaderList(s string) bool {
	if len(s) > 2048 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == ',' || c == ' ') {
			return false
		}
	}
	return true
}

// corsHeaders lets a browser page read the response when the key's
// allowed_domains match its origin, or, for a key without allowed_domains,
// when the origin is in cors.allowed_origins.
func (p *Handler) corsHeaders(h http.Header, origin string, allowed []string) {
	ok := false
	if len(allowed) > 0 {
		ok = relay.OriginAllowed(allowed, origin, "")
	} else {
		ok = p.cors[strings.ToLower(origin)]
	}
	h.Add("Vary", "Origin")
	if ok {
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Expose-Headers", proxyCORSExposeHeaders)
	}
}
