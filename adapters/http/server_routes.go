package httpadapter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/labstack/echo/v4"

	"github.com/relaystation/relay/domain"
)

// mgmtRouter receives the generated routes and puts the management
// middleware in front of each: the observer, admin IP allow-list and
// authentication by path, then the body limit and OpenAPI request
// validation. Being route-level, none of it ever runs for the proxy.
type mgmtRouter struct {
	s   *Server
	e   *echo.Echo
	doc *openapi3.T
	err error
}

func (m *mgmtRouter) add(method, path string, h echo.HandlerFunc) *echo.Route {
	oapiPath := echoToOpenAPIPath(path)
	item := m.doc.Paths.Find(oapiPath)
	var op *openapi3.Operation
	if item != nil {
		op = item.GetOperation(method)
	}
	if op == nil {
		m.err = errors.Join(m.err, fmt.Errorf("httpadapter: %s %s is not in the OpenAPI spec", method, oapiPath))
		return m.e.Add(method, path, h)
	}
	route := &routers.Route{Spec: m.doc, Server: nil, Path: oapiPath, PathItem: item, Method: method, Operation: op}
	mw := []echo.MiddlewareFunc{m.s.observeMiddleware(op.OperationID), m.s.clientIPMiddleware}
	switch {
	case path == "/admin/login":
		mw = append(mw, m.s.adminIPMiddleware, m.s.loginCredsMiddleware)
	case strings.HasPrefix(path, "/admin/"):
		mw = append(mw, m.s.adminIPMiddleware, m.s.adminJWTMiddleware)
	case strings.HasPrefix(path, "/api/"):
		mw = append(mw, m.s.keyAuthMiddleware)
	}
	mw = append(mw, m.s.validateMiddleware(route))
	return m.e.Add(method, path, h, mw...)
}

func echoToOpenAPIPath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if strings.HasPrefix(s, ":") {
			parts[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(parts, "/")
}

func (m *mgmtRouter) CONNECT(p string, h echo.HandlerFunc, _ ...echo.MiddlewareFunc) *echo.Route {
	return m.add(http.MethodConnect, p, h)
}
func (m *mgmtRouter) DELETE(p string, h echo.HandlerFunc, _ ...echo.MiddlewareFunc) *echo.Route {
	return m.add(http.MethodDelete, p, h)
}
func (m *mgmtRouter) GET(p string, h echo.HandlerFunc, _ ...echo.MiddlewareFunc) *echo.Route {
	return m.add(http.MethodGet, p, h)
}
func (m *mgmtRouter) HEAD(p string, h echo.HandlerFunc, _ ...echo.MiddlewareFunc) *echo.Route {
	return m.add(http.MethodHead, p, h)
}
func (m *mgmtRouter) OPTIONS(p string, h echo.HandlerFunc, _ ...echo.MiddlewareFunc) *echo.Route {
	return m.add(http.MethodOptions, p, h)
}
func (m *mgmtRouter) PATCH(p string, h echo.HandlerFunc, _ ...echo.MiddlewareFunc) *echo.Route {
	return m.add(http.MethodPatch, p, h)
}
func (m *mgmtRouter) POST(p string, h echo.HandlerFunc, _ ...echo.MiddlewareFunc) *echo.Route {
	return m.add(http.MethodPost, p, h)
}
func (m *mgmtRouter) PUT(p string, h echo.HandlerFunc, _ ...echo.MiddlewareFunc) *echo.Route {
	return m.add(http.MethodPut, p, h)
}
func (m *mgmtRouter) TRACE(p string, h echo.HandlerFunc, _ ...echo.MiddlewareFunc) *echo.Route {
	return m.add(http.MethodTrace, p, h)
}

// validateMiddleware enforces the body limit and validates the request
// against the operation in the spec: unknown fields, types, ranges and
// lengths are refused with 400 before any handler runs. Authentication is
// done by the middleware before it, so the spec's security is not rechecked.
func (s *Server) validateMiddleware(route *routers.Route) echo.MiddlewareFunc {
	opts := &openapi3filter.Options{
		AuthenticationFunc:      openapi3filter.NoopAuthenticationFunc,
		SchemaValidationOptions: []openapi3.SchemaValidationOption{openapi3.DisableSchemaErrorDetails()},
	}
	opts.WithCustomSchemaErrorFunc(func(err *openapi3.SchemaError) string {
		ptr := strings.Join(err.JSONPointer(), "/")
		if ptr == "" {
			return err.Reason
		}
		return "/" + ptr + ": " + err.Reason
	})
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if r.ContentLength > s.limit {
				return s.tooLarge()
			}
			if r.Body != nil && r.Body != http.NoBody {
				// Management bodies are small; reading them whole lets both
				// the validator and the handler decode them.
				body, err := io.ReadAll(io.LimitReader(r.Body, s.limit+1))
				_ = r.Body.Close()
				if err != nil {
					return &domain.Error{Kind: domain.KindInvalid, Message: "could not read the request body", Err: err}
				}
				if int64(len(body)) > s.limit {
					return s.tooLarge()
				}
				r.Body = io.NopCloser(bytes.NewReader(body))
				r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
			}
			params := make(map[string]string, len(c.ParamNames()))
			for i, n := range c.ParamNames() {
				params[n] = c.ParamValues()[i]
			}
			in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route, Options: opts}
			if err := openapi3filter.ValidateRequest(context.WithoutCancel(r.Context()), in); err != nil {
				return &domain.Error{Kind: domain.KindInvalid, Message: validationMessage(err), Err: err}
			}
			if r.GetBody != nil {
				b, _ := r.GetBody()
				r.Body = b
			}
			return next(c)
		}
	}
}

func (s *Server) tooLarge() error {
	return domain.Errorf(domain.KindTooLarge, "request body is larger than %d bytes", s.limit)
}

func validationMessage(err error) string {
	var re *openapi3filter.RequestError
	if errors.As(err, &re) {
		var pe *openapi3filter.ParseError
		if re.RequestBody != nil && errors.As(re.Err, &pe) {
			return "request body is not valid JSON: " + pe.Error()
		}
		return re.Error()
	}
	return "invalid request"
}

type clientIPKey struct{}

// clientIPMiddleware resolves the client address once per management request.
func (s *Server) clientIPMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		ip, err := s.clientIP.Resolve(r)
		if err != nil {
			return err
		}
		c.SetRequest(r.WithContext(context.WithValue(r.Context(), clientIPKey{}, ip)))
		return next(c)
	}
}

func ctxClientIP(ctx context.Context) netip.Addr {
	a, _ := ctx.Value(clientIPKey{}).(netip.Addr)
	return a
}
