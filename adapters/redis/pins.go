package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/relaystation/relay/ports"
)

// SessionPins is a ports.SessionPins on Redis, shared by every replica
// using the same prefix, so a session is pinned alike whichever replica
// takes its request.
//
// Each pin is one string key, <prefix>pin:<session>, holding the upstream
// id and expiring with the pin's TTL (SET with PX, or EX for whole seconds): Redis forgets idle
// pins itself, and memory is bounded by the sessions active within one
// TTL. A renewal is a plain overwrite; two replicas moving one session at
// once agree on whichever wrote last.
type SessionPins struct {
	rdb    goredis.UniversalClient
	prefix string
}

var _ ports.SessionPins = (*SessionPins)(nil)

// NewSessionPins returns a store on rdb. Options: WithPrefix.
func NewSessionPins(rdb goredis.UniversalClient, opts ...Option) *SessionPins {
	o := buildOptions(opts)
	return &SessionPins{rdb: rdb, prefix: o.prefix + "pin:"}
}

// Get implements ports.SessionPins.
func (s *SessionPins) Get(ctx context.Context, session string) (string, bool, error) {
	v, err := s.rdb.Get(ctx, s.prefix+session).Result()
	switch {
	case errors.Is(err, goredis.Nil):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("redis session pins: %w", err)
	}
	return v, true, nil
}

// Set implements ports.SessionPins.
func (s *SessionPins) Set(ctx context.Context, session, upstreamID string, ttl time.Duration) error {
	var err error
	if ttl <= 0 {
		err = s.rdb.Del(ctx, s.prefix+session).Err()
	} else {
		err = s.rdb.Set(ctx, s.prefix+session, upstreamID, max(ttl, time.Millisecond)).Err()
	}
	if err != nil {
		return fmt.Errorf("redis session pins: %w", err)
	}
	return nil
}
