package httpadapter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/admin"
)

// JWTOptions configures admin tokens.
type JWTOptions struct {
	Secret   []byte        // HS256 key (SECRET_KEY); at least 16 bytes
	Issuer   string        // default "relay-station"
	Audience string        // default "relay-station-admin"
	TTL      time.Duration // default admin.DefaultTokenTTL
	// Subject is the admin username tokens are issued to; defaults to
	// Options.AdminUsername.
	Subject string
}

const minJWTSecret = 16

type jwtIssuer struct {
	opts JWTOptions
	now  func() time.Time
}

func newJWTIssuer(o JWTOptions, now func() time.Time) (*jwtIssuer, error) {
	if len(o.Secret) < minJWTSecret {
		return nil, fmt.Errorf("httpadapter: the JWT secret must be at least %d bytes", minJWTSecret)
	}
	if o.Subject == "" {
		return nil, errors.New("httpadapter: the admin username is empty")
	}
	if o.Issuer == "" {
		o.Issuer = "relay-station"
	}
	if o.Audience == "" {
		o.Audience = "relay-station-admin"
	}
	if o.TTL <= 0 {
		o.TTL = admin.DefaultTokenTTL
	}
	o.Secret = append([]byte(nil), o.Secret...)
	return &jwtIssuer{opts: o, now: now}, nil
}

// issue signs a token for sub.
func (j *jwtIssuer) issue(sub string) (string, error) {
	now := j.now()
	var jti [12]byte
	_, _ = rand.Read(jti[:])
	claims := jwt.RegisteredClaims{
		Subject:   sub,
		Issuer:    j.opts.Issuer,
		Audience:  jwt.ClaimStrings{j.opts.Audience},
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(j.opts.TTL)),
		ID:        hex.EncodeToString(jti[:]),
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(j.opts.Secret)
}

// verify parses strictly: HS256 only, and exp, iat, iss, aud and the admin
// subject all required and valid.
func (j *jwtIssuer) verify(tok string) (string, error) {
	var claims jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(tok, &claims,
		func(*jwt.Token) (any, error) { return j.opts.Secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(j.opts.Issuer),
		jwt.WithAudience(j.opts.Audience),
		jwt.WithSubject(j.opts.Subject),
		jwt.WithTimeFunc(j.now),
		jwt.WithLeeway(5*time.Second),
	)
	if err != nil {
		return "", err
	}
	if claims.IssuedAt == nil {
		return "", errors.New("token has no iat claim")
	}
	return claims.Subject, nil
}

type adminSubjectKey struct{}

// adminJWTMiddleware admits only a valid admin token. A proxy key is not
// one, and gets the same 401 as a missing or broken token.
func (s *Server) adminJWTMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		a := r.Header.Get("Authorization")
		if len(a) < 8 || !strings.EqualFold(a[:7], "bearer ") {
			s.obs.AuthFailure(AuthKindAdminTokenMissing)
			return &domain.Error{Kind: domain.KindUnauthenticated, Reason: domain.ReasonAdminToken,
				Message: "admin endpoints need Authorization: Bearer <token from POST /admin/login>"}
		}
		sub, err := s.jwt.verify(strings.TrimSpace(a[7:]))
		if err != nil {
			s.obs.AuthFailure(AuthKindAdminTokenInvalid)
			msg := "invalid admin token"
			if errors.Is(err, jwt.ErrTokenExpired) {
				msg = "admin token has expired; log in again"
			}
			return &domain.Error{Kind: domain.KindUnauthenticated, Reason: domain.ReasonAdminToken, Message: msg, Err: err}
		}
		c.SetRequest(r.WithContext(context.WithValue(r.Context(), adminSubjectKey{}, sub)))
		return next(c)
	}
}

// adminFrom is the admin a request was authenticated as (the token's
// subject), for what the use cases record as its actor.
func adminFrom(ctx context.Context) string {
	sub, _ := ctx.Value(adminSubjectKey{}).(string)
	return sub
}

// adminIPMiddleware refuses /admin/* to clients outside AdminAllowedIPs.
func (s *Server) adminIPMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if len(s.adminIPs) == 0 {
			return next(c)
		}
		ip, err := s.clientIP.Resolve(c.Request())
		if err != nil {
			return err
		}
		for _, p := range s.adminIPs {
			if ip.IsValid() && p.Contains(ip) {
				return next(c)
			}
		}
		s.obs.AuthFailure(AuthKindAdminIP)
		return &domain.Error{Kind: domain.KindForbidden, Reason: domain.ReasonAdminIP,
			Message: "admin endpoints may not be used from your IP address"}
	}
}
