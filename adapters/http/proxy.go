package httpadapter

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/relaystation/relay/adapters/anthropic"
	"github.com/relaystation/relay/adapters/upstream"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/relay"
)

// ProxyOptions wires the proxy. Service and Transport are required.
type ProxyOptions struct {
	// Service runs admission and settlement.
	Service *relay.Service
	// Transport sends requests upstream: an *upstream.Transport, which
	// swaps the key, retries and fails over. If it reports Configured() ==
	// false, every call is answered 503 "upstream is not configured".
	Transport http.RoundTripper
	// ClientIP resolves the client address; nil uses the peer address.
	ClientIP *ClientIPResolver
	// Log gets one Info line per proxied request (never a key or a body)
	// and errors; nil logs nothing.
	Log *slog.Logger
	// MaxBodyBytes caps request bodies (default 32 MB); larger ones get
	// 413 request_too_large.
	MaxBodyBytes int64
	// IdleTimeout ends a response when the upstream sends nothing for this
	// long (default 5 minutes). There is no overall timeout: streams are long.
	IdleTimeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Observer is told about every proxied request, for metrics; nil: no-op.
	Observer ProxyObserver
	// CORSAllowedOrigins are origins (scheme://host[:port]) that get CORS
	// headers on the responses of keys without allowed_domains, and the only
	// ones a preflight is answered for when non-empty.
	CORSAllowedOrigins []string
}

// ProxyObserver receives proxy events. Implementations must be cheap: they
// run on every request.
type ProxyObserver interface {
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

// NopProxyObserver ignores everything.
type NopProxyObserver struct{}

func (NopProxyObserver) RequestStarted()          {}
func (NopProxyObserver) RequestFinished()         {}
func (NopProxyObserver) StreamOpened()            {}
func (NopProxyObserver) StreamClosed()            {}
func (NopProxyObserver) Done(*domain.UsageRecord) {}

// Proxy relays every path the management API does not claim to the
// upstream, with admission before and usage settlement after.
type Proxy struct {
	rp         *httputil.ReverseProxy
	svc        *relay.Service
	configured bool
	clientIP   *ClientIPResolver
	log        *slog.Logger
	maxBody    int64
	idle       time.Duration
	now        func() time.Time
	obs        ProxyObserver
	cors       map[string]bool
}

// NewProxy builds the proxy handler.
func NewProxy(opts ProxyOptions) *Proxy {
	p := &Proxy{svc: opts.Service, clientIP: opts.ClientIP, log: opts.Log, maxBody: opts.MaxBodyBytes,
		idle: opts.IdleTimeout, now: opts.Now, obs: opts.Observer}
	if p.obs == nil {
		p.obs = NopProxyObserver{}
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
	if p.maxBody <= 0 {
		p.maxBody = upstream.DefaultMaxBodyBytes
	}
	if p.idle <= 0 {
		p.idle = 5 * time.Minute
	}
	if p.now == nil {
		p.now = time.Now
	}
	p.configured = opts.Transport != nil && opts.Service != nil
	if c, ok := opts.Transport.(interface{ Configured() bool }); ok && !c.Configured() {
		p.configured = false
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:   proxyRewrite,
		Transport: opts.Transport,
		// FlushInterval stays 0: ReverseProxy flushes every write of a
		// text/event-stream (or unknown-length) response at once anyway, and
		// flushing a sized JSON body per write would only cost syscalls.
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.handleError,
		ErrorLog:       slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
		BufferPool:     proxyBufferPool{},
	}
	return p
}

// proxyBufferPool recycles ReverseProxy's 32 KB copy buffers.
type proxyBufferPool struct{}

var proxyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (proxyBufferPool) Get() []byte  { return *proxyBufs.Get().(*[]byte) }
func (proxyBufferPool) Put(b []byte) { proxyBufs.Put(&b) }

// proxyCall is one proxied request's state, from admission to settlement.
type proxyCall struct {
	p         *Proxy
	adm       *relay.Admission
	info      upstream.Info
	start     time.Time
	ttfb      time.Duration
	requestID string
	path      string
	clientIP  string
	session   string
	aux       bool
	req       anthropic.Request
	body      []byte
	status    int
	upReqID   string
	stream    bool
	cancel    context.CancelCauseFunc
	causeCtx  context.Context
	errType   string
	once      sync.Once
	origin    string
	w         http.ResponseWriter
	tokenless bool // costs no tokens: usage is only what the upstream reports
	// allowedDomains of the authenticated key, for CORS on refusals.
	allowedDomains []string
	// streamOpen: StreamOpened was reported and StreamClosed is owed.
	streamOpen bool

	sse     anthropic.StreamParser
	capture *bytes.Buffer // pooled; nil for streams
	capOver bool          // the JSON body outgrew the capture limit
	eof     bool
	readErr error
}

type proxyCallKey struct{}

// errProxyIdle cancels an upstream response that went quiet.
var errProxyIdle = errors.New("upstream idle timeout")

// proxyCaptures recycles the copies of non-streaming bodies.
var proxyCaptures = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// proxyCaptureLimit bounds the copy of a non-streaming body kept to read its
// usage; past it, usage is estimated. Replies are rarely over 200 KB.
const proxyCaptureLimit = 4 << 20

// proxyBodyReadTimeout bounds how long a client may take to send its body.
const proxyBodyReadTimeout = 2 * time.Minute

// proxyCostsTokens reports whether a path bills tokens as it is answered.
// Others (message batches, files, ...) are relayed and counted against the
// request budget, but reserve and charge nothing and are never estimated.
func proxyCostsTokens(path string) bool {
	return path == "/v1/messages" || path == "/v1/complete"
}

func proxyIsAux(path string) bool {
	return path == "/v1/messages/count_tokens" || path == "/v1/models" || strings.HasPrefix(path, "/v1/models/")
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	reqID := RequestIDFrom(ctx)
	if reqID == "" {
		reqID = NewRequestID()
		ctx = WithRequestID(ctx, reqID)
		w.Header().Set(HeaderRequestID, reqID)
	}
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		p.preflight(w, r)
		return
	}
	p.obs.RequestStarted()
	defer p.obs.RequestFinished()
	if !p.configured {
		p.refused(w, r.WithContext(ctx), "", &domain.Error{Kind: domain.KindUpstream, Reason: "upstream_not_configured",
			Message: "upstream is not configured: the relay has no Anthropic API key; set UPSTREAM_API_KEY (upstream.primary.api_key)"}, http.StatusServiceUnavailable)
		return
	}
	c := &proxyCall{p: p, w: w, start: p.now(), requestID: reqID, path: r.URL.Path, aux: proxyIsAux(r.URL.Path)}
	c.tokenless = !c.aux && !proxyCostsTokens(c.path)
	raw := relay.KeyFromHeaders(r.Header)
	client := p.clientIP.Resolve(r)
	// The key (and its IP allow-list) is checked before the body is read, so
	// a client without a valid key cannot make the relay buffer anything.
	key, err := p.svc.Authenticate(ctx, raw, client)
	if err != nil {
		p.refused(w, r.WithContext(ctx), "", err, 0)
		return
	}
	c.allowedDomains = key.AllowedDomains
	if r.Body != nil && r.Body != http.NoBody {
		// A slow sender gets a bounded time to deliver a large body; there
		// is no server-wide ReadTimeout because streams are long. (Small
		// bodies need no timer: they hold at most 64 KB, and only a client
		// with a valid key gets this far.)
		var rc *http.ResponseController
		if r.ContentLength < 0 || r.ContentLength > 64<<10 {
			rc = http.NewResponseController(w)
			_ = rc.SetReadDeadline(time.Now().Add(proxyBodyReadTimeout))
		}
		body, err := upstream.ReadBody(r.Body, r.ContentLength, p.maxBody)
		if rc != nil {
			_ = rc.SetReadDeadline(time.Time{})
		}
		if err != nil {
			if domain.KindOf(err) != domain.KindTooLarge {
				err = &domain.Error{Kind: domain.KindInvalid, Message: "could not read the request body", Err: err}
			}
			p.refused(w, r.WithContext(ctx), "", err, 0)
			return
		}
		c.body = body
		if len(body) > 0 && body[0] == '{' || strings.Contains(r.Header.Get("content-type"), "json") {
			c.req = anthropic.Sniff(body)
		}
	}
	c.clientIP = client.String()
	c.session = r.Header.Get("X-Claude-Code-Session-Id")
	adm, err := p.svc.Admit(ctx, relay.AdmitInput{
		RawKey: raw, Authenticated: &key, ClientIP: client, Origin: r.Header.Get("Origin"), Referer: r.Header.Get("Referer"),
		RequestID: reqID, Aux: c.aux, Tokenless: c.tokenless, MaxTokens: c.req.MaxTokens,
		EstimateInput: func() int64 { return anthropic.EstimateInputTokens(c.body) },
	})
	if err != nil {
		p.refused(w, r.WithContext(ctx), c.req.Model, err, 0, c.allowedDomains...)
		return
	}
	c.adm = adm
	c.origin = r.Header.Get("Origin")
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

	ctx = context.WithValue(ctx, proxyCallKey{}, c)
	ctx = upstream.WithInfo(ctx, &c.info)
	ctx, c.cancel = context.WithCancelCause(ctx)
	c.causeCtx = ctx
	defer c.cancel(nil)
	out := r.WithContext(ctx)
	if c.body != nil {
		body := c.body
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.ContentLength = int64(len(body))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	p.rp.ServeHTTP(w, out)
}

// proxyCORSAllowHeaders are the request headers a browser may send.
const proxyCORSAllowHeaders = "x-api-key, authorization, anthropic-version, anthropic-beta, anthropic-dangerous-direct-browser-access, content-type"

// proxyCORSExposeHeaders are the response headers a page may read.
const proxyCORSExposeHeaders = "request-id, x-request-id, retry-after, x-should-retry, anthropic-ratelimit-requests-limit, anthropic-ratelimit-requests-remaining, anthropic-ratelimit-requests-reset, anthropic-ratelimit-tokens-limit, anthropic-ratelimit-tokens-remaining, anthropic-ratelimit-tokens-reset, x-ratelimit-limit-requests, x-ratelimit-remaining-requests, x-ratelimit-reset-requests"

// preflight answers a CORS preflight itself: it carries no key, so it never
// goes upstream. The key's allowed_domains are enforced on the real request.
func (p *Proxy) preflight(w http.ResponseWriter, r *http.Request) {
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
func (p *Proxy) corsHeaders(h http.Header, origin string, allowed []string) {
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

// refused answers a request that never went upstream and reports it.
// status overrides the error's mapped status when not zero.
func (p *Proxy) refused(w http.ResponseWriter, r *http.Request, model string, err error, status int, allowedDomains ...string) {
	// A browser page may read the refusal (a 429, say) on the same terms
	// as a success: the key's allowed_domains, else cors.allowed_origins.
	if origin := r.Header.Get("Origin"); origin != "" {
		p.corsHeaders(w.Header(), origin, allowedDomains)
	}
	if status == 0 {
		status, _ = StatusOf(err)
	}
	if status == http.StatusServiceUnavailable && domain.KindOf(err) == domain.KindUpstream {
		de := domain.AsError(err)
		WriteErrorBody(w, r, status, "api_error", de.Message)
	} else {
		WriteError(w, r, p.log, err)
	}
	p.obs.Done(&domain.UsageRecord{Status: status, Model: model})
}

// proxyRewrite applies the header rules to the outbound request: the
// client's credentials go (the transport sets the upstream key), as does
// Accept-Encoding so that the relay can read usage from an uncompressed
// body. Everything else passes through as an open list (anthropic-*,
// content-type, user-agent, X-Claude-Code-Session-Id, ...). ReverseProxy has
// already dropped hop-by-hop headers and X-Forwarded-*.
func proxyRewrite(pr *httputil.ProxyRequest) {
	h := pr.Out.Header
	h.Del("X-Api-Key")
	h.Del("Authorization")
	h.Del("Accept-Encoding")
	pr.Out.Host = ""
}

func proxyCallFrom(ctx context.Context) *proxyCall {
	c, _ := ctx.Value(proxyCallKey{}).(*proxyCall)
	return c
}

func (p *Proxy) modifyResponse(resp *http.Response) error {
	c := proxyCallFrom(resp.Request.Context())
	if c == nil {
		return nil
	}
	c.ttfb = p.now().Sub(c.start)
	c.status = resp.StatusCode
	c.upReqID = resp.Header.Get("request-id")
	c.stream = strings.HasPrefix(resp.Header.Get("content-type"), "text/event-stream")
	if c.stream {
		c.streamOpen = true
		p.obs.StreamOpened()
	}
	// The upstream's own CORS answer (Anthropic allows any origin for direct
	// browser access) must not override the key's allow-list.
	for k := range resp.Header {
		if strings.HasPrefix(k, "Access-Control-") {
			delete(resp.Header, k)
		}
	}
	if c.origin != "" {
		c.p.corsHeaders(resp.Header, c.origin, c.adm.Key.AllowedDomains)
	}
	if c.adm.RateChecked {
		d := c.adm.Rate
		h := resp.Header
		h["X-Ratelimit-Limit-Requests"] = []string{strconv.FormatInt(d.Limit, 10)}
		h["X-Ratelimit-Remaining-Requests"] = []string{strconv.FormatInt(d.Remaining, 10)}
		h["X-Ratelimit-Reset-Requests"] = []string{c.start.Add(d.ResetAfter).UTC().Format(time.RFC3339)}
	}
	if !c.stream && !c.tokenless {
		c.capture = proxyCaptures.Get().(*bytes.Buffer)
		c.capture.Reset()
		if resp.ContentLength > 0 && resp.ContentLength <= proxyCaptureLimit {
			c.capture.Grow(int(resp.ContentLength))
		}
	}
	resp.Body = &proxyBody{c: c, rc: resp.Body, timer: time.AfterFunc(p.idle, func() { c.cancel(errProxyIdle) })}
	return nil
}

// proxyBody passes the upstream body through untouched while feeding the
// usage parser, and settles the admission on Close: ReverseProxy closes it
// however the copy ends (done, client gone, upstream dropped).
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
		if c.stream {
			c.sse.Feed(p[:n])
		} else if c.capture != nil && !c.capOver {
			if c.capture.Len()+n > proxyCaptureLimit {
				c.capOver = true
			} else {
				c.capture.Write(p[:n])
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
		_ = http.NewResponseController(c.w).Flush()
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

// handleError answers a failure before any response byte was written:
// the upstream's own errors are never here (they pass through as
// responses); these are connection failures, timeouts, oversize bodies and
// the client going away.
func (p *Proxy) handleError(w http.ResponseWriter, r *http.Request, err error) {
	c := proxyCallFrom(r.Context())
	if r.Context().Err() != nil && !errors.Is(context.Cause(r.Context()), errProxyIdle) {
		// The client went away; nobody is listening for an answer.
		if c != nil {
			c.status, c.errType = 499, "client_closed"
			c.finish()
		}
		return
	}
	if domain.AsError(err) == nil {
		err = &domain.Error{Kind: domain.KindUpstream, Message: "upstream request failed", Err: err}
	}
	status, typ := StatusOf(err)
	if c != nil {
		c.status, c.errType = status, typ
		c.finish()
	}
	WriteError(w, r, p.log, err)
}

// finish settles the admission once: usage from the stream or JSON body,
// estimated where the upstream's count is missing, then the log line.
func (c *proxyCall) finish() {
	c.once.Do(func() {
		c.closeStream()
		rec := c.record()
		c.adm.Settle(context.Background(), relay.SettleInput{Record: rec})
		c.p.obs.Done(&rec)
		if c.capture != nil && c.capture.Cap() <= 256<<10 {
			proxyCaptures.Put(c.capture)
		}
		c.capture = nil
	})
}

func (c *proxyCall) record() domain.UsageRecord {
	end := c.p.now()
	rec := domain.UsageRecord{
		RequestID: c.requestID, Time: c.start, Model: c.req.Model, Path: c.path, Status: c.status,
		Stream: c.stream || c.req.Stream, Latency: end.Sub(c.start), TTFB: c.ttfb,
		UpstreamRequestID: c.upReqID, Upstream: c.info.Upstream, SessionID: c.session,
		ClientIP: c.clientIP, ErrorType: c.errType,
	}
	ok := c.status >= 200 && c.status < 300
	switch {
	case c.status == 0 || c.aux:
	case c.stream:
		res := c.sse.Result()
		rec.Usage = res.Usage
		rec.Estimated = res.OutputEstimated
		if res.Model != "" {
			rec.Model = res.Model
		}
		if !res.SawMessageStart && ok && !c.tokenless && (res.Usage.OutputTokens > 0 || c.readErr != nil || !c.eof) {
			rec.Usage.InputTokens = anthropic.EstimateInputTokens(c.body)
			rec.Estimated = true
		}
		if res.ErrorType != "" && rec.ErrorType == "" {
			rec.ErrorType = res.ErrorType
		}
	default:
		if c.eof && !c.capOver && c.capture != nil {
			jr := anthropic.UsageFromJSON(c.capture.Bytes())
			rec.Usage = jr.Usage
			if jr.Model != "" {
				rec.Model = jr.Model
			}
			if jr.ErrorType != "" && rec.ErrorType == "" {
				rec.ErrorType = jr.ErrorType
			}
			if jr.HasUsage || !ok {
				break
			}
		}
		if ok && !c.tokenless {
			// The reply did not arrive whole (or was too large to keep):
			// the upstream still bills it. Estimate input from the request
			// and output from what was relayed.
			rec.Usage.InputTokens = anthropic.EstimateInputTokens(c.body)
			if c.capture != nil {
				rec.Usage.OutputTokens = int64(c.capture.Len()+3) / 4
			}
			rec.Estimated = true
		}
	}
	if rec.ErrorType == "" && c.causeCtx != nil && (c.readErr != nil || (c.status != 0 && !c.eof && c.status < 300)) {
		switch cause := context.Cause(c.causeCtx); {
		case errors.Is(cause, errProxyIdle):
			rec.ErrorType = "idle_timeout"
		case cause != nil:
			rec.ErrorType = "client_closed"
		case c.readErr != nil:
			rec.ErrorType = "upstream_disconnected"
		}
	}
	c.logLine(&rec)
	return rec
}

func (c *proxyCall) logLine(rec *domain.UsageRecord) {
	log := c.p.log
	ctx := context.Background()
	if !log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	log.LogAttrs(ctx, slog.LevelInfo, "proxied",
		slog.String("request_id", rec.RequestID),
		slog.String("key_id", c.adm.Key.ID.String()),
		slog.String("model", rec.Model),
		slog.String("path", rec.Path),
		slog.Int("status", rec.Status),
		slog.Bool("stream", rec.Stream),
		slog.Int64("input_tokens", rec.Usage.InputTokens),
		slog.Int64("output_tokens", rec.Usage.OutputTokens),
		slog.Int64("cache_creation_tokens", rec.Usage.CacheCreationInputTokens),
		slog.Int64("cache_read_tokens", rec.Usage.CacheReadInputTokens),
		slog.Bool("estimated", rec.Estimated),
		slog.Duration("latency", rec.Latency),
		slog.Duration("ttfb", rec.TTFB),
		slog.Int("retries", c.info.Retries),
		slog.String("upstream", rec.Upstream),
		slog.String("error_type", rec.ErrorType),
	)
}
