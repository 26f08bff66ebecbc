package httpx

import (
	"context"
	"crypto/rand"
	"net/http"
)

type requestIDKey struct{}

// HeaderRequestID is the response header carrying the relay's request id.
const HeaderRequestID = "x-request-id"

// WithRequestID stores id in ctx.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestIDFrom returns the request id stored in ctx, or "".
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// NewRequestID returns a fresh id: "req_" and 24 base62 characters.
func NewRequestID() string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	var b [24]byte
	_, _ = rand.Read(b[:])
	out := make([]byte, 4+len(b))
	copy(out, "req_")
	for i, c := range b {
		// 248 = 4*62: rejection-free modulo bias is negligible for ids.
		out[4+i] = alphabet[int(c)%len(alphabet)]
	}
	return string(out)
}

// RequestIDMiddleware gives every request a fresh id, returned in the
// x-request-id header. An incoming x-request-id is never adopted: the id is
// the usage record's idempotency key and the quota reservation's id, so a
// client that could choose it could replay one and go unbilled.
func RequestIDMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := NewRequestID()
		w.Header().Set(HeaderRequestID, id)
		next.ServeHTTP(w, r.WithContext(WithRequestID(r.Context(), id)))
	})
}
