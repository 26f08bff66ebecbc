package httpadapter

import (
	"context"
	"errors"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/relaystation/relay/api"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/admin"
)

type loginCredsKey struct{}

type loginCreds struct {
	user, pass string
	ok         bool
}

// AdminLogin exchanges HTTP Basic credentials for an admin JWT. The login
// use case throttles attempts (per address, per username, globally); this
// only translates.
func (h *strictHandlers) AdminLogin(ctx context.Context, _ api.AdminLoginRequestObject) (api.AdminLoginResponseObject, error) {
	s := h.s
	creds, _ := ctx.Value(loginCredsKey{}).(loginCreds)
	if !creds.ok {
		// Nothing to check, so nothing to throttle.
		s.obs.LoginFailure()
		s.obs.AuthFailure(AuthKindLogin)
		return nil, &domain.Error{Kind: domain.KindUnauthenticated, Reason: domain.ReasonLogin,
			Message: "send the admin credentials with HTTP Basic authentication"}
	}
	sub, err := s.admin.Login(ctx, admin.LoginInput{Username: creds.user, Password: creds.pass, ClientIP: ctxClientIP(ctx)})
	switch {
	case errors.Is(err, domain.ErrUnauthenticated):
		s.obs.LoginFailure()
		s.obs.AuthFailure(AuthKindLogin)
	case errors.Is(err, admin.ErrLoginThrottled):
		s.obs.LoginFailure()
	}
	if err != nil {
		return nil, err
	}
	tok, err := s.jwt.issue(sub)
	if err != nil {
		return nil, err
	}
	return api.AdminLogin200JSONResponse{
		AccessToken: tok, TokenType: "bearer", ExpiresIn: int(s.jwt.opts.TTL / time.Second),
	}, nil
}

// loginCredsMiddleware hands the Basic credentials to AdminLogin, which as
// a strict handler sees only the context.
func (s *Server) loginCredsMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		u, p, ok := r.BasicAuth()
		ctx := context.WithValue(r.Context(), loginCredsKey{}, loginCreds{user: u, pass: p, ok: ok})
		c.SetRequest(r.WithContext(ctx))
		return next(c)
	}
}
