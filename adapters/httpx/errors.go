// Package httpx holds what every HTTP-facing adapter shares and nothing
// framework-specific: the one table from domain error kinds to HTTP
// statuses and Anthropic error types, the request id, and the client
// address resolver. The echo management API (adapters/http) and the
// net/http proxy (adapters/proxy) both use it, so neither depends on the
// other and echo stays inside adapters/http.
package httpx

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/relaystation/relay/domain"
)

// ErrorBody is Anthropic's error shape, used on every route.
type ErrorBody struct {
	Type      string      `json:"type"`
	Error     ErrorDetail `json:"error"`
	RequestID string      `json:"request_id"`
}

// ErrorDetail is the inner error object.
type ErrorDetail struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

type errorMapping struct {
	status  int
	errType string
}

// errorTable is the one place domain error kinds become HTTP statuses and
// Anthropic error types. Nothing maps a status back to a type: an error
// that does not come from the domain (echo's router, say) is made a domain
// error first, where it is met.
var errorTable = map[domain.Kind]errorMapping{
	domain.KindInvalid:          {http.StatusBadRequest, "invalid_request_error"},
	domain.KindUnauthenticated:  {http.StatusUnauthorized, "authentication_error"},
	domain.KindForbidden:        {http.StatusForbidden, "permission_error"},
	domain.KindNotFound:         {http.StatusNotFound, "not_found_error"},
	domain.KindConflict:         {http.StatusConflict, "invalid_request_error"},
	domain.KindRateLimited:      {http.StatusTooManyRequests, "rate_limit_error"},
	domain.KindQuotaExceeded:    {http.StatusTooManyRequests, "rate_limit_error"},
	domain.KindTooLarge:         {http.StatusRequestEntityTooLarge, "request_too_large"},
	domain.KindOverloaded:       {http.StatusServiceUnavailable, "overloaded_error"},
	domain.KindUnavailable:      {http.StatusServiceUnavailable, "api_error"},
	domain.KindUpstream:         {http.StatusBadGateway, "api_error"},
	domain.KindTimeout:          {http.StatusGatewayTimeout, "api_error"},
	domain.KindInternal:         {http.StatusInternalServerError, "api_error"},
	domain.KindMethodNotAllowed: {http.StatusMethodNotAllowed, "invalid_request_error"},
	domain.KindUnsupportedMedia: {http.StatusUnsupportedMediaType, "invalid_request_error"},
}

// StatusOf maps a domain error to its HTTP status and Anthropic error type.
func StatusOf(err error) (status int, errType string) {
	m, ok := errorTable[domain.KindOf(err)]
	if !ok {
		m = errorTable[domain.KindInternal]
	}
	return m.status, m.errType
}

// WriteError answers err in Anthropic's error shape. Internal errors are
// logged with their cause and answered with a generic message, so no detail
// (SQL, secrets) escapes.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	status, errType := StatusOf(err)
	msg := "internal server error"
	var de *domain.Error
	if errors.As(err, &de) {
		if de.Kind != domain.KindInternal && de.Message != "" {
			msg = de.Message
		}
		if de.NoRetry {
			w.Header().Set("x-should-retry", "false")
		} else if de.RetryAfter > 0 {
			secs := int64((de.RetryAfter + 999_999_999) / 1_000_000_000)
			w.Header().Set("retry-after", strconv.FormatInt(secs, 10))
		}
	}
	// A relay without an upstream key says so once, at start; every call
	// it then refuses is not a failure worth an error line of its own.
	if status >= 500 && log != nil && domain.KindOf(err) != domain.KindUnavailable {
		log.LogAttrs(r.Context(), slog.LevelError, "request failed",
			slog.String("request_id", RequestIDFrom(r.Context())),
			slog.Int("status", status),
			slog.String("error", err.Error()))
	}
	writeErrorBody(w, r, status, errType, msg)
}

// writeErrorBody writes an Anthropic-shaped error with its status, type and
// caller-safe message.
func writeErrorBody(w http.ResponseWriter, r *http.Request, status int, errType, msg string) {
	body, _ := json.Marshal(ErrorBody{
		Type:      "error",
		Error:     ErrorDetail{Type: errType, Message: msg},
		RequestID: RequestIDFrom(r.Context()),
	})
	h := w.Header()
	// Anthropic's SDKs read the request id of an error from "request-id".
	if id := RequestIDFrom(r.Context()); id != "" && h.Get("request-id") == "" {
		h.Set("request-id", id)
	}
	h.Set("content-type", "application/json")
	h.Del("content-length")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
