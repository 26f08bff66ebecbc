package ports

import (
	"context"
	"time"
)

// SessionPins remembers which upstream each session is pinned to, so that
// a session's requests keep reaching the upstream that holds its prompt
// cache. Sessions are opaque keys of bounded size (domain/pool.SessionKey);
// upstreams are upstream ids. A store shared by several replicas makes
// them pin alike.
//
// A pin is a hint, not a record: a store with bounded memory may forget
// the least recently used pins early, and a caller that cannot read a pin
// carries on as if there were none.
type SessionPins interface {
	// Get returns the upstream session is pinned to; ok is false when it
	// has no pin, or its pin expired.
	Get(ctx context.Context, session string) (upstreamID string, ok bool, err error)
	// Set pins session to upstreamID for ttl from now, replacing any pin.
	// Setting it on every use renews the pin, so an active session never
	// loses it. A ttl of zero or less removes the pin.
	Set(ctx context.Context, session, upstreamID string, ttl time.Duration) error
}
