package memory

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/relaystation/relay/ports"
)

// SessionPins is an in-process ports.SessionPins, for one replica: pins in
// one LRU of bounded size, each with its own expiry. Past the bound the
// least recently used pin is dropped; that session loses its cache
// affinity and is pinned afresh on its next request.
type SessionPins struct {
	clock ports.Clock
	mu    sync.Mutex
	lru   *simplelru.LRU[string, pinEntry]
}

var _ ports.SessionPins = (*SessionPins)(nil)

type pinEntry struct {
	upstream string
	expires  time.Time
}

// DefaultSessionPins is how many pins one replica keeps: 100,000 sessions,
// about 20 MB.
const DefaultSessionPins = 100_000

// NewSessionPins returns a store of at most maxEntries pins (about 200
// bytes each with a 34-byte session key and a 36-byte upstream id).
// Options: WithClock.
func NewSessionPins(maxEntries int, opts ...Option) (*SessionPins, error) {
	o := buildOptions(opts)
	lru, err := simplelru.NewLRU[string, pinEntry](maxEntries, nil)
	if err != nil {
		return nil, fmt.Errorf("memory session pins: %w", err)
	}
	return &SessionPins{clock: o.clock, lru: lru}, nil
}

// InProcess reports that the store answers without I/O, so callers need
// not bound its calls with a deadline.
func (s *SessionPins) InProcess() bool { return true }

// Get implements ports.SessionPins. An expired pin is dropped here; one
// nobody asks for again ages out of the LRU.
func (s *SessionPins) Get(_ context.Context, session string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.lru.Get(session)
	if !ok {
		return "", false, nil
	}
	if !s.clock.Now().Before(e.expires) {
		s.lru.Remove(session)
		return "", false, nil
	}
	return e.upstream, true, nil
}

// Set implements ports.SessionPins.
func (s *SessionPins) Set(_ context.Context, session, upstreamID string, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ttl <= 0 {
		s.lru.Remove(session)
		return nil
	}
	s.lru.Add(session, pinEntry{upstream: upstreamID, expires: s.clock.Now().Add(ttl)})
	return nil
}

// Len reports how many pins are held, expired ones not yet dropped
// included.
func (s *SessionPins) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Len()
}
