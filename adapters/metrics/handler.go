package metrics

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves the registry in the Prometheus text format. When token is
// non-empty, a request must carry "Authorization: Bearer <token>"; any other
// request gets 401 with an Anthropic-shaped error body. The handler does not
// care about the method or path: mount it on GET /metrics.
func (m *Metrics) Handler(token string) http.Handler {
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		// A collector error (say, a failing QuotaSource already handled, or a
		// process collector quirk) should not blank the whole scrape.
		ErrorHandling: promhttp.ContinueOnError,
	})
	if token == "" {
		return h
	}
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !bearerMatches(r.Header.Get("Authorization"), &want) {
			unauthorized(w)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// bearerMatches compares digests so neither the token's content nor its
// length leaks through timing.
func bearerMatches(header string, want *[sha256.Size]byte) bool {
	const scheme = "bearer "
	if len(header) < len(scheme) || !strings.EqualFold(header[:len(scheme)], scheme) {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(header[len(scheme):])))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

type errorBody struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
	RequestID string `json:"request_id"`
}

func unauthorized(w http.ResponseWriter) {
	var b errorBody
	b.Type = "error"
	b.Error.Type = "authentication_error"
	b.Error.Message = "a valid metrics bearer token is required"
	// The request-id middleware, when present, has already set this header.
	b.RequestID = w.Header().Get("X-Request-Id")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
	w.WriteHeader(http.StatusUnauthorized)
	_ = json.NewEncoder(w).Encode(b)
}
