package admin

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net/netip"
	"runtime"
	"time"

	"github.com/alexedwards/argon2id"

	"github.com/relaystation/relay/domain"
)

// LoginInput is the admin's presented credential.
type LoginInput struct {
	Username string
	Password string
	// ClientIP is the address the attempt comes from, for the throttle.
	ClientIP netip.Addr
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
var ErrPasswordChecksBusy = &domain.Error{Kind: domain.KindRateLimited, Reason: domain.ReasonLoginBusy, RetryAfter: time.Second,
	Message: "too many logins are being checked right now; retry shortly"}

// Login checks the admin credential and returns the admin's username (the
// JWT subject). Both the username and the password are always checked, so
// the time taken does not tell which one was wrong.
//
// The throttle is consulted before any hashing, and the attempt stays
// reserved until its check ends, so parallel guesses count while they are
// being checked.
func (s *Service) Login(ctx context.Context, in LoginInput) (string, error) {
	if err := in.Validate(); err != nil {
		return "", err
	}
	att, err := s.throttle.Reserve(ctx, in.ClientIP, in.Username)
	if err != nil {
		return "", err
	}
	// An error or a panic is neither a success nor a failure.
	defer att.Release(ctx)
	ok, err := s.checkPassword(in)
	if err != nil {
		return "", err
	}
	if !ok {
		att.Failed(ctx)
		return "", &domain.Error{Kind: domain.KindUnauthenticated, Reason: domain.ReasonLogin, Message: "invalid credentials"}
	}
	att.Succeeded(ctx)
	return s.adminUser, nil
}

// checkPassword runs the argon2id check in one of the bounded slots.
func (s *Service) checkPassword(in LoginInput) (bool, error) {
	select {
	case s.passwordChecks <- struct{}{}:
		defer func() { <-s.passwordChecks }()
	default:
		// Memory stays bounded whatever the number of attackers: no check
		// waits for a slot.
		return false, ErrPasswordChecksBusy
	}
	// Each check leaves its argon2id memory (~64 MB) as garbage. Collecting
	// it before the slot is free keeps what the checks can hold at
	// MaxPasswordChecks times that; left to the pacer (GOGC=100) it would
	// be twice as much, the garbage of the last round of checks still
	// waiting while the next one allocates. A cycle costs a fraction of the
	// check itself, and the throttle bounds how often checks run.
	defer runtime.GC()
	userOK := subtle.ConstantTimeCompare([]byte(in.Username), []byte(s.adminUser)) == 1
	passOK, err := argon2id.ComparePasswordAndHash(in.Password, s.adminHash)
	if err != nil {
		return false, fmt.Errorf("verify admin password: %w", err)
	}
	return userOK && passOK, nil
}
