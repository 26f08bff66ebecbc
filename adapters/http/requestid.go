package httpadapter

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

// validIncomingID accepts a caller-supplied request id only if it is short
// and plain, so it cannot inject anything into logs or headers.
func validIncomingID(s string) bool {
	if len(s) < 8 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// RequestIDMiddleware assigns every request an id, or adopts the incoming
// x-request-id when trustIncoming is set (a trusted front proxy made it), and
// returns it in the x-request-id response header.
func RequestIDMiddleware(trustIncoming bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := ""
		if trustIncoming {
			if in := r.Header.Get(HeaderRequestID); validIncomingID(in) {
				id = in
			}
		}
		if id == "" {
			id = NewRequestID()
		}
		w.Header().Set(HeaderRequestID, id)
		next.ServeHTTP(w, r.WithContext(WithRequestID(r.Context(), id)))
	})
}
