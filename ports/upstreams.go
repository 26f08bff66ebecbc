package ports

import (
	"context"
	"time"

	"github.com/relaystation/relay/domain/pool"
)

// UpstreamRecord is a stored upstream: an Anthropic API endpoint and key
// the relay forwards to, with the fields selection needs (pool.Upstream).
type UpstreamRecord struct {
	pool.Upstream
	// URL is the API base URL ("https://api.anthropic.com").
	URL string
	// SealedKey is the API key sealed by the SecretSealer for this
	// upstream's ID; the plaintext is never stored.
	SealedKey string
	// KeyLast4 is the key's last four characters, the only part any view
	// shows.
	KeyLast4 string
	// DisabledReason says why the relay disabled the upstream (the status
	// and message of a 401 or 403 it answered), or why an operator did;
	// "" while it is enabled.
	DisabledReason string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// UpstreamStore persists the upstream pool. After the first start, seeded
// from the configuration, the database is authoritative.
type UpstreamStore interface {
	// ListUpstreams returns every upstream, by priority then name.
	ListUpstreams(ctx context.Context) ([]UpstreamRecord, error)
	// GetUpstream returns one, ErrNotFound if absent.
	GetUpstream(ctx context.Context, id string) (UpstreamRecord, error)
	// CreateUpstream inserts u; a duplicate id or name is an ErrConflict.
	CreateUpstream(ctx context.Context, u UpstreamRecord) error
	// UpdateUpstream writes every mutable field of u if the stored
	// updated_at still equals prevUpdatedAt, else ErrStale (or an
	// ErrNotFound-kind error when absent).
	UpdateUpstream(ctx context.Context, u UpstreamRecord, prevUpdatedAt time.Time) error
	// DeleteUpstream removes it; ErrNotFound if absent.
	DeleteUpstream(ctx context.Context, id string) error
	// SeedUpstreams inserts ups only if the table is empty.
	SeedUpstreams(ctx context.Context, ups []UpstreamRecord) error
}

// SecretSealer seals upstream API keys for storage (AES-GCM, bound to the
// upstream's id so a sealed key cannot be moved to another row).
type SecretSealer interface {
	Seal(plaintext, upstreamID string) (string, error)
	Open(sealed, upstreamID string) (string, error)
}

// UpstreamEndpoint is how the transport reaches one upstream: its URL and
// its opened API key (held in memory only, never logged).
type UpstreamEndpoint struct {
	ID     string
	Name   string
	URL    string
	APIKey string
}

// UpstreamTest is the answer of a test request to an upstream.
type UpstreamTest struct {
	OK      bool
	Status  int           // the HTTP status answered, 0 when none
	Latency time.Duration // until the response headers
	// Message is the upstream's error message, or the connection error,
	// with any secret removed.
	Message string
}

// UpstreamRuntime is the transport's side of the upstream pool: it reaches
// the upstreams the pool selects among.
type UpstreamRuntime interface {
	// Apply replaces the endpoints the transport reaches; the pool's
	// SetUpstreams is called with the same upstreams.
	Apply(endpoints []UpstreamEndpoint) error
	// Test sends one cheap request (GET /v1/models) to e, outside the
	// pool, and reports the answer.
	Test(ctx context.Context, e UpstreamEndpoint) UpstreamTest
}
