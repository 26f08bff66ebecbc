package admin

import (
	"context"
	"crypto/subtle"
	"fmt"
	"time"

	"github.com/alexedwards/argon2id"

	"github.com/relaystation/relay/domain"
)

// LoginInput is the admin's presented credential.
type LoginInput struct {
	Username string
	Password string
}

// Validate rejects credentials too large to be real, before any hashing.
func (in LoginInput) Validate() error {
	if len(in.Username) > 256 || len(in.Password) > 1024 {
		return &domain.Error{Kind: domain.KindUnauthenticated, Message: "invalid credentials"}
	}
	return nil
}

// ErrPasswordChecksBusy refuses a login while every password-check slot is
// taken.
var ErrPasswordChecksBusy = &domain.Error{Kind: domain.KindRateLimited, Reason: "login_busy", RetryAfter: time.Second,
	Message: "too many logins are being checked right now; retry shortly"}

// Login checks the admin credential and returns the admin's username (the
// JWT subject). Both the username and the password are always checked, so
// the time taken does not tell which one was wrong.
func (s *Service) Login(_ context.Context, in LoginInput) (string, error) {
	if err := in.Validate(); err != nil {
		return "", err
	}
	select {
	case s.passwordChecks <- struct{}{}:
		defer func() { <-s.passwordChecks }()
	default:
		// Memory stays bounded whatever the number of attackers: no check
		// waits for a slot.
		return "", ErrPasswordChecksBusy
	}
	userOK := subtle.ConstantTimeCompare([]byte(in.Username), []byte(s.adminUser)) == 1
	passOK, err := argon2id.ComparePasswordAndHash(in.Password, s.adminHash)
	if err != nil {
		return "", fmt.Errorf("verify admin password: %w", err)
	}
	if !userOK || !passOK {
		return "", &domain.Error{Kind: domain.KindUnauthenticated, Reason: "login", Message: "invalid credentials"}
	}
	return s.adminUser, nil
}
