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

// AdminLogin exchanges HTTP Basic credentials for an admin JWT. Failures
// are throttled per client IP.
func (h *strictHandlers) AdminLogin(ctx context.Context, _ api.AdminLoginRequestObject) (api.AdminLoginResponseObject, error) {
	s := h.s
	creds, _ := ctx.Value(loginCredsKey{}).(loginCreds)
	ip := ctxClientIP(ctx)
	// The attempt is reserved before the slow argon2id check, so parallel
	// guesses count against the limit while they are being checked.
	if wait, ok := s.throttle.reserve(ip); !ok {
		s.obs.LoginFailure()
		return nil, &domain.Error{Kind: domain.KindRateLimited, Reason: "login", RetryAfter: wait,
			Message: "too many failed logins; try again later"}
	}
	ended := false
	defer func() {
		if !ended {
			// An internal error (or a panic) is neither a success nor a
			// failure: just free the slot.
			s.throttle.release(ip)
		}
	}()
	fail := func(err error) (api.AdminLoginResponseObject, error) {
		ended = true
		s.throttle.fail(ip)
		s.obs.LoginFailure()
		s.obs.AuthFailure("login")
		return nil, err
	}
	if !creds.ok {
		return fail(&domain.Error{Kind: domain.KindUnauthenticated, Reason: "login",
			Message: "send the admin credentials with HTTP Basic authentication"})
	}
	sub, err := s.admin.Login(ctx, admin.LoginInput{Username: creds.user, Password: creds.pass})
	if errors.Is(err, domain.ErrUnauthenticated) {
		return fail(err)
	}
	if err != nil {
		return nil, err
	}
	ended = true
	s.throttle.succeed(ip)
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
