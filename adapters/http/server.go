package httpadapter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/relaystation/relay/adapters/httpx"

	"github.com/labstack/echo/v4"

	"github.com/relaystation/relay/api"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/admin"
	"github.com/relaystation/relay/domain/relay"
	"github.com/relaystation/relay/domain/upstreams"
)

// DefaultManagementBodyLimit caps request bodies on management routes. The
// proxy routes have their own limit, set by the proxy.
const DefaultManagementBodyLimit = 1 << 20

// Options wires the HTTP server. Admin, Auth and JWT.Secret are required.
type Options struct {
	Log   *slog.Logger
	Admin *admin.Service
	Auth  *relay.Authenticator
	// Upstreams manages the upstream pool at /admin/upstreams; nil answers
	// those routes 503.
	Upstreams *upstreams.Registry
	ClientIP  *httpx.ClientIPResolver // nil: the connection's peer
	// Proxy serves every path the management API does not claim (/v1/...).
	// It is mounted with no body-limit, validation or compression middleware,
	// so streams pass through unbuffered. nil answers 404.
	Proxy          http.Handler
	MetricsHandler http.Handler // served at /metrics when set
	// Ready reports whether the relay can serve; /ready answers 503 with the
	// error's text while it fails. nil means always ready.
	Ready func(ctx context.Context) error

	JWT           JWTOptions
	AdminUsername string
	// AdminAllowedIPs restricts /admin/* (login included); empty allows any.
	AdminAllowedIPs []netip.Prefix
	// BodyLimit caps management request bodies; 0 = DefaultManagementBodyLimit.
	BodyLimit int64
	// BodyReadTimeout bounds how long a management request's body may take
	// to arrive (default httpx.DefaultBodyReadTimeout); a stalled sender's
	// connection is closed.
	BodyReadTimeout time.Duration
	Observer        Observer // nil: no-op
	// Now is the clock for tokens; nil = time.Now.
	Now func() time.Time
}

// Server is the relay's HTTP front: the management API and, behind it, the
// proxy.
type Server struct {
	e     *echo.Echo
	log   *slog.Logger
	admin *admin.Service
	auth  *relay.Authenticator
	// upstreams may be nil (see Options).
	upstreams *upstreams.Registry
	clientIP  *httpx.ClientIPResolver
	proxy     http.Handler
	// direct is the path prefix served by the proxy without echo, for the
	// methods in directMethods (see ServeHTTP).
	direct        string
	directMethods map[string]bool
	ready         func(context.Context) error
	jwt           *jwtIssuer
	obs           Observer
	adminIPs      []netip.Prefix
	limit         int64
	bodyWait      time.Duration
	allow         map[string][]string // management path -> its methods, for 405s
}

var fallbackMethods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace,
}

// New builds the server and its routes.
func New(opts Options) (*Server, error) {
	if opts.Admin == nil || opts.Auth == nil {
		return nil, errors.New("httpadapter: Admin and Auth are required")
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	if opts.JWT.Subject == "" {
		opts.JWT.Subject = opts.AdminUsername
	}
	jwtIss, err := newJWTIssuer(opts.JWT, now)
	if err != nil {
		return nil, err
	}
	s := &Server{
		log:       opts.Log,
		admin:     opts.Admin,
		auth:      opts.Auth,
		upstreams: opts.Upstreams,
		clientIP:  opts.ClientIP,
		proxy:     opts.Proxy,
		ready:     opts.Ready,
		jwt:       jwtIss,
		obs:       opts.Observer,
		adminIPs:  opts.AdminAllowedIPs,
		limit:     opts.BodyLimit,
		bodyWait:  opts.BodyReadTimeout,
	}
	if s.bodyWait <= 0 {
		s.bodyWait = httpx.DefaultBodyReadTimeout
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.obs == nil {
		s.obs = NopObserver{}
	}
	if s.limit <= 0 {
		s.limit = DefaultManagementBodyLimit
	}
	doc, err := api.Spec()
	if err != nil {
		return nil, err
	}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.Pre(echo.WrapMiddleware(func(h http.Handler) http.Handler {
		return httpx.RequestIDMiddleware(h)
	}))
	e.Use(s.recoverMiddleware)
	e.Use(s.noBodyMiddleware)
	e.Use(s.bodyDeadlineMiddleware)
	s.e = e

	r := &mgmtRouter{s: s, e: e, doc: doc}
	api.RegisterHandlers(r, api.NewStrictHandler(&strictHandlers{s: s}, nil))
	if r.err != nil {
		return nil, r.err
	}

	s.registerDocs(e)
	if opts.MetricsHandler != nil {
		e.GET("/metrics", echo.WrapHandler(opts.MetricsHandler))
	}
	// A management path asked with another method gets 405, instead of
	// falling through to the proxy's catch-all (echo prefers an any-route
	// over a 405, so the other methods are registered explicitly).
	s.allow = map[string][]string{}
	for _, rt := range e.Routes() {
		s.allow[rt.Path] = append(s.allow[rt.Path], rt.Method)
	}
	for path, methods := range s.allow {
		if strings.Contains(path, "*") {
			continue
		}
		for _, m := range fallbackMethods {
			if slices.Contains(methods, m) {
				continue
			}
			if strings.HasPrefix(path, "/admin") {
				e.Add(m, path, s.mgmtFallback, s.adminIPMiddleware)
			} else {
				e.Add(m, path, s.mgmtFallback)
			}
		}
	}
	// Unknown management paths stay management errors; they never reach the
	// proxy (nor, for /admin, anyone outside the admin allow-list).
	e.Any("/admin/*", s.mgmtFallback, s.adminIPMiddleware)
	e.Any("/admin", s.mgmtFallback, s.adminIPMiddleware)
	e.Any("/api/*", s.mgmtFallback)
	if err := s.mountUI(e); err != nil {
		return nil, err
	}
	e.Any("/*", s.serveProxy)
	s.direct, s.directMethods = directPrefix(e.Routes())
	return s, nil
}

// ServeHTTP makes the server an http.Handler. Proxied traffic under
// s.direct goes straight to the proxy, with what the echo chain would have
// given it (a request id, the no-body rule, a recovered panic answered as
// a 500): echo's router, context and middleware closures cost about 2 % of
// a proxied request's CPU and decide nothing there.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.direct != "" && s.proxy != nil && s.directMethods[r.Method] && strings.HasPrefix(routePath(r), s.direct) {
		s.serveDirect(w, r)
		return
	}
	s.e.ServeHTTP(w, r)
}

// routePath is the path echo routes by: the raw one when it has escapes.
func routePath(r *http.Request) string {
	if r.URL.RawPath != "" {
		return r.URL.RawPath
	}
	return r.URL.Path
}

// directPrefix is "/v1/" when no management route could match a path
// under it (every route but the proxy's catch-all starts with another
// static segment), so that echo would send every such path to the proxy;
// "" otherwise. methods are the methods the catch-all takes: any other
// goes through echo, which answers it 405 as before.
func directPrefix(routes []*echo.Route) (prefix string, methods map[string]bool) {
	methods = map[string]bool{}
	for _, rt := range routes {
		if rt.Path == "/*" {
			methods[rt.Method] = true
			continue
		}
		seg, _, _ := strings.Cut(strings.TrimPrefix(rt.Path, "/"), "/")
		if seg == "v1" || strings.HasPrefix(seg, ":") || strings.HasPrefix(seg, "*") {
			return "", nil
		}
	}
	return "/v1/", methods
}

// serveDirect is the echo chain's work for a proxied request, without echo.
func (s *Server) serveDirect(w http.ResponseWriter, r *http.Request) {
	id := httpx.NewRequestID()
	w.Header().Set(httpx.HeaderRequestID, id)
	r = r.WithContext(httpx.WithRequestID(r.Context(), id))
	dw := &directWriter{ResponseWriter: w}
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v == http.ErrAbortHandler {
			panic(v)
		}
		s.logPanic(r, v)
		if dw.committed {
			// Part of an answer went out: cut it, never append to it.
			panic(http.ErrAbortHandler)
		}
		httpx.WriteError(w, r, s.log, fmt.Errorf("panic: %v", v))
	}()
	if err := s.refuseBody(w, r); err != nil {
		httpx.WriteError(w, r, s.log, err)
		return
	}
	s.proxy.ServeHTTP(dw, r)
}

// directWriter notes whether the answer started, for the panic handler.
// Flush, deadlines and the rest go through Unwrap (ResponseController).
type directWriter struct {
	http.ResponseWriter
	committed bool
}

func (d *directWriter) WriteHeader(code int) {
	if code >= 200 {
		d.committed = true
	}
	d.ResponseWriter.WriteHeader(code)
}

func (d *directWriter) Write(b []byte) (int, error) {
	d.committed = true
	return d.ResponseWriter.Write(b)
}

func (d *directWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }

func (s *Server) serveProxy(c echo.Context) error {
	if s.proxy == nil {
		return &domain.Error{Kind: domain.KindNotFound, Reason: domain.ReasonPath, Message: http.StatusText(http.StatusNotFound)}
	}
	// echo's Response supports Flush and Unwrap, so streaming works through it.
	s.proxy.ServeHTTP(c.Response(), c.Request())
	return nil
}

// mgmtFallback answers an unknown management path: 405 with Allow when the
// path exists under other methods, 404 otherwise.
func (s *Server) mgmtFallback(c echo.Context) error {
	path := c.Request().URL.Path
	var allow []string
	if methods, ok := s.allow[path]; ok {
		// A static route wins over a parameter one, as in echo's router:
		// /admin/api-keys/bulk is not /admin/api-keys/{id}.
		allow = append(allow, methods...)
	} else {
		for pattern, methods := range s.allow {
			if !strings.Contains(pattern, "*") && routeMatches(pattern, path) {
				allow = append(allow, methods...)
			}
		}
	}
	slices.Sort(allow)
	if len(allow) > 0 {
		c.Response().Header().Set("Allow", strings.Join(allow, ", "))
		return &domain.Error{Kind: domain.KindMethodNotAllowed, Reason: domain.ReasonMethod,
			Message: fmt.Sprintf("method %s is not allowed on %s", c.Request().Method, path)}
	}
	return &domain.Error{Kind: domain.KindNotFound, Reason: domain.ReasonPath, Message: "no such endpoint: " + path}
}

// routeMatches matches an echo route path ("/a/:id/b") against a request path.
func routeMatches(pattern, path string) bool {
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return false
	}
	for i := range ps {
		if strings.HasPrefix(ps[i], ":") {
			if xs[i] == "" {
				return false
			}
			continue
		}
		if ps[i] != xs[i] {
			return false
		}
	}
	return true
}

// handleError renders every error echo sees (router 404/405, bind errors,
// validation, handler and domain errors) in Anthropic's shape.
func (s *Server) handleError(err error, c echo.Context) {
	r, w := c.Request(), c.Response()
	if w.Committed {
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "error after the response started",
			slog.String("request_id", httpx.RequestIDFrom(r.Context())), slog.String("error", err.Error()))
		return
	}
	if he, ok := errors.AsType[*echo.HTTPError](err); ok && he.Code == http.StatusMethodNotAllowed {
		if allow, ok := c.Get(echo.ContextKeyHeaderAllow).(string); ok && allow != "" {
			w.Header().Set("Allow", allow)
		}
	}
	httpx.WriteError(w, r, s.log, fromEcho(err))
}

// fromEcho makes the errors echo raises itself (its router's 404 and 405,
// the generated code's parameter binding) domain errors, so that they are
// answered through the one error table like every other. Any other error
// is returned as it is.
func fromEcho(err error) error {
	he, ok := errors.AsType[*echo.HTTPError](err)
	if !ok || domain.AsError(err) != nil {
		return err
	}
	msg := http.StatusText(he.Code)
	if m, ok := he.Message.(string); ok && m != "" {
		msg = m
	}
	var kind domain.Kind
	switch he.Code {
	case http.StatusBadRequest:
		kind = domain.KindInvalid
	case http.StatusUnauthorized:
		kind = domain.KindUnauthenticated
	case http.StatusForbidden:
		kind = domain.KindForbidden
	case http.StatusNotFound:
		kind = domain.KindNotFound
	case http.StatusMethodNotAllowed:
		kind = domain.KindMethodNotAllowed
	case http.StatusRequestEntityTooLarge:
		kind = domain.KindTooLarge
	case http.StatusUnsupportedMediaType:
		kind = domain.KindUnsupportedMedia
	case http.StatusTooManyRequests:
		kind = domain.KindRateLimited
	default:
		// Nothing of echo's that the relay uses raises anything else; a
		// server error is answered generically, its cause logged.
		return &domain.Error{Kind: domain.KindInternal, Err: err}
	}
	return &domain.Error{Kind: kind, Message: msg, Err: err}
}

// errorStatus is the status handleError will give err, for the observer.
func errorStatus(err error) int {
	st, _ := httpx.StatusOf(fromEcho(err))
	return st
}

// recoverMiddleware turns a panic into a logged 500. http.ErrAbortHandler is
// re-raised: it is how a handler (the proxy) aborts a response on purpose.
func (s *Server) recoverMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.logPanic(c.Request(), v)
			if c.Response().Committed {
				// Part of an answer went out: cut it, never end it as if
				// it were whole.
				panic(http.ErrAbortHandler)
			}
			err = fmt.Errorf("panic: %v", v)
		}()
		return next(c)
	}
}

func (s *Server) logPanic(r *http.Request, v any) {
	s.log.LogAttrs(r.Context(), slog.LevelError, "panic serving request",
		slog.String("request_id", httpx.RequestIDFrom(r.Context())),
		slog.String("path", r.URL.Path),
		slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
}

// strictHandlers implements the generated api.StrictServerInterface; its
// methods live in admin_*.go, api_*.go and here.
type strictHandlers struct{ s *Server }

var _ api.StrictServerInterface = (*strictHandlers)(nil)

func (h *strictHandlers) Health(context.Context, api.HealthRequestObject) (api.HealthResponseObject, error) {
	return api.Health200JSONResponse{Status: "ok"}, nil
}

func (h *strictHandlers) Ready(ctx context.Context, _ api.ReadyRequestObject) (api.ReadyResponseObject, error) {
	if h.s.ready != nil {
		if err := h.s.ready(ctx); err != nil {
			return nil, &domain.Error{Kind: domain.KindOverloaded, Message: "not ready: " + err.Error(), Err: err}
		}
	}
	return api.Ready200JSONResponse{Status: "ready"}, nil
}

// noBodyMiddleware refuses a body on methods whose routes take none (GET,
// HEAD, DELETE, OPTIONS — here and on the proxied endpoints alike): such a
// body is never read, so a client could only use it to hold a connection
// or smuggle bytes past what is classified.
func (s *Server) noBodyMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := s.refuseBody(c.Response().Writer, c.Request()); err != nil {
			return err
		}
		return next(c)
	}
}

// refuseBody is the no-body rule: an error for a body on a method that
// takes none.
func (s *Server) refuseBody(w http.ResponseWriter, r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodDelete, http.MethodOptions:
		if r.ContentLength > 0 || r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody {
			// net/http drains the unread body before answering: bound
			// that read too, or a sender that stalls holds the socket.
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.bodyWait))
			return &domain.Error{Kind: domain.KindInvalid, Reason: domain.ReasonBody,
				Message: "this route takes no request body"}
		}
	}
	return nil
}

// bodyDeadlineMiddleware gives a management request's body a deadline to
// arrive: a client that announces a body and sends nothing would otherwise
// hold its connection (and descriptor) for ever. The proxy route sets its
// own.
func (s *Server) bodyDeadlineMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if c.Path() == "/*" || r.Body == nil || r.Body == http.NoBody {
			return next(c)
		}
		// Not cleared afterwards: net/http drains an unread body after the
		// handler, and that read must stay bounded too. The next request on
		// the connection gets the server's own header and idle deadlines.
		_ = http.NewResponseController(c.Response().Writer).SetReadDeadline(time.Now().Add(s.bodyWait))
		return next(c)
	}
}
