package domain

import (
	"errors"
	"fmt"
	"time"
)

// Kind is the closed set of error kinds the domain can produce. Exactly one
// table (adapters/httpx) maps each kind to an HTTP status and an Anthropic
// error type.
type Kind uint8

const (
	KindInternal         Kind = iota // a bug or an infrastructure failure; answered generically
	KindInvalid                      // the request is malformed or violates a rule
	KindUnauthenticated              // no, unknown, expired or disabled credential
	KindForbidden                    // a valid credential that may not do this (IP, origin)
	KindNotFound                     // the addressed resource does not exist
	KindConflict                     // the request conflicts with current state
	KindRateLimited                  // a rate or concurrency limit was hit
	KindQuotaExceeded                // the key's token quota cannot cover the request
	KindTooLarge                     // the request body is over the configured limit
	KindOverloaded                   // the relay cannot take more work right now
	KindUpstream                     // the upstream failed
	KindTimeout                      // the upstream did not answer within the deadline
	KindMethodNotAllowed             // the endpoint exists but does not take this method
	KindUnsupportedMedia             // the body's content type or encoding is not accepted
	KindUnavailable                  // the relay lacks what it needs to serve this (no upstream key)
)

var kindNames = [...]string{
	KindInternal:         "internal",
	KindInvalid:          "invalid",
	KindUnauthenticated:  "unauthenticated",
	KindForbidden:        "forbidden",
	KindNotFound:         "not_found",
	KindConflict:         "conflict",
	KindRateLimited:      "rate_limited",
	KindQuotaExceeded:    "quota_exceeded",
	KindTooLarge:         "too_large",
	KindOverloaded:       "overloaded",
	KindUpstream:         "upstream",
	KindTimeout:          "timeout",
	KindMethodNotAllowed: "method_not_allowed",
	KindUnsupportedMedia: "unsupported_media",
	KindUnavailable:      "unavailable",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Sentinels for errors.Is. They carry no message: any *Error of the same
// kind matches them.
var (
	ErrInternal        = &Error{Kind: KindInternal}
	ErrInvalid         = &Error{Kind: KindInvalid}
	ErrUnauthenticated = &Error{Kind: KindUnauthenticated}
	ErrForbidden       = &Error{Kind: KindForbidden}
	ErrNotFound        = &Error{Kind: KindNotFound}
	ErrConflict        = &Error{Kind: KindConflict}
	ErrRateLimited     = &Error{Kind: KindRateLimited}
	ErrQuotaExceeded   = &Error{Kind: KindQuotaExceeded}
	ErrTooLarge        = &Error{Kind: KindTooLarge}
	ErrOverloaded      = &Error{Kind: KindOverloaded}
	ErrUpstream        = &Error{Kind: KindUpstream}
	ErrTimeout         = &Error{Kind: KindTimeout}
	ErrUnavailable     = &Error{Kind: KindUnavailable}
)

// Error is a domain error. Message is safe to show to the caller; Err is the
// cause, for logs only.
type Error struct {
	Kind    Kind
	Message string
	// RetryAfter, when set, tells the client when trying again can succeed.
	RetryAfter time.Duration
	// NoRetry marks a refusal that no retry can turn into a success (the
	// quota is spent by settled usage alone): clients are told so with
	// x-should-retry: false.
	NoRetry bool
	// Reason says why, in one of the closed set of Reason values (for
	// metrics); empty when the kind says enough.
	Reason Reason
	Err    error
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = e.Kind.String()
	}
	if e.Err != nil {
		return msg + ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrNotFound) true for any *Error of that kind.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return t.Message == "" && t.Err == nil && t.Kind == e.Kind
}

// Errorf returns an *Error of the given kind with a formatted, caller-safe message.
func Errorf(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// Invalidf is shorthand for Errorf(KindInvalid, ...).
func Invalidf(format string, args ...any) *Error { return Errorf(KindInvalid, format, args...) }

// KindOf reports the kind of err: the kind of the first *Error in its chain,
// KindInternal otherwise.
func KindOf(err error) Kind {
	if de := AsError(err); de != nil {
		return de.Kind
	}
	return KindInternal
}

// ReasonOf reports the reason of the first *Error in err's chain,
// ReasonNone otherwise.
func ReasonOf(err error) Reason {
	if de := AsError(err); de != nil {
		return de.Reason
	}
	return ReasonNone
}

// AsError returns the first *Error in err's chain, or nil.
func AsError(err error) *Error {
	// The common cases first: errors.As makes its target escape, one
	// allocation per call on the hot path.
	switch e := err.(type) {
	case nil:
		return nil
	case *Error:
		return e
	}
	var de *Error
	if errors.As(err, &de) {
		return de
	}
	return nil
}
