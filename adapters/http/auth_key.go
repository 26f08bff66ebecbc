package httpadapter

import (
	"context"
	"net/netip"

	"github.com/labstack/echo/v4"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/relay"
)

type apiKeyCtxKey struct{}

// keyAuthMiddleware authenticates /api/* with the caller's proxy key, the
// same way the proxy does (the key's IP allow-list applies). Handlers take
// the key id from the context only, so no request can name another key.
func (s *Server) keyAuthMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		raw, err := relay.KeyFromHeaders(r.Header)
		var k domain.APIKey
		if err == nil {
			var ip netip.Addr
			if ip, err = s.clientIP.Resolve(r); err == nil {
				k, err = s.auth.Authenticate(r.Context(), raw, ip)
			}
		}
		if err != nil {
			if r := domain.ReasonOf(err); r != domain.ReasonNone {
				s.obs.AuthFailure(AuthKindKey(r))
			}
			return err
		}
		c.SetRequest(r.WithContext(context.WithValue(r.Context(), apiKeyCtxKey{}, k)))
		return next(c)
	}
}

// keyFrom returns the key keyAuthMiddleware authenticated.
func keyFrom(ctx context.Context) (domain.APIKey, error) {
	k, ok := ctx.Value(apiKeyCtxKey{}).(domain.APIKey)
	if !ok {
		return domain.APIKey{}, &domain.Error{Kind: domain.KindUnauthenticated, Message: "missing API key"}
	}
	return k, nil
}
