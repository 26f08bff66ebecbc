package httpadapter

import (
	"log/slog"
	"time"

	"github.com/relaystation/relay/adapters/httpx"
	"github.com/relaystation/relay/domain"

	"github.com/labstack/echo/v4"
)

// Observer receives management-API events for metrics. Labels are bounded:
// op is an OpenAPI operationId, kind one of the AuthKind* constants or
// AuthKindKey of a refused key's reason.
type Observer interface {
	// AdminRequest counts a finished management request.
	AdminRequest(op string, status int)
	// AuthFailure counts a refused credential or client address.
	AuthFailure(kind string)
	// LoginFailure counts a failed or throttled admin login.
	LoginFailure()
}

// The kinds of Observer.AuthFailure.
const (
	AuthKindLogin             = "login"               // wrong or missing admin credentials
	AuthKindAdminIP           = "admin_ip"            // a client outside admin.allowed_ips
	AuthKindAdminTokenMissing = "admin_token_missing" // no admin token
	AuthKindAdminTokenInvalid = "admin_token_invalid" // an invalid or expired admin token
)

// AuthKindKey is the kind of a proxy key refused on /api/* for reason r
// (a domain.ReasonKey* value): "key_" and the reason.
func AuthKindKey(r domain.Reason) string { return "key_" + string(r) }

// NopObserver discards every event.
type NopObserver struct{}

func (NopObserver) AdminRequest(string, int) {}
func (NopObserver) AuthFailure(string)       {}
func (NopObserver) LoginFailure()            {}

var _ Observer = NopObserver{}

func (s *Server) observeMiddleware(op string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			status := c.Response().Status
			if err != nil {
				status = errorStatus(err)
			}
			s.obs.AdminRequest(op, status)
			// One line per management request: the operation, never the
			// path's values or a credential.
			r := c.Request()
			level := slog.LevelInfo
			if op == "health" || op == "ready" {
				level = slog.LevelDebug // probes every few seconds
			}
			s.log.LogAttrs(r.Context(), level, "api request",
				slog.String("request_id", httpx.RequestIDFrom(r.Context())),
				slog.String("op", op),
				slog.String("method", r.Method),
				slog.Int("status", status),
				slog.Duration("latency", time.Since(start)))
			return err
		}
	}
}
