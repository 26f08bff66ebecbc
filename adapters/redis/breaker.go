package redis

import (
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// ErrUnavailable is returned while the breaker is open: Redis failed to
// connect recently and is not being asked again yet.
var ErrUnavailable = errors.New("redis unavailable (circuit open after a connection failure)")

// Breaker is a go-redis hook that fails commands at once for a cooldown
// after Redis could not be reached. Without it, every admission check would
// wait for dial timeouts while Redis is away; with it, the configured
// fail_open/fail_closed policy applies immediately, and Redis is tried again
// after the cooldown.
type Breaker struct {
	cooldown  time.Duration
	openUntil atomic.Int64 // unix nanoseconds; 0 = closed
	now       func() time.Time
}

var _ goredis.Hook = (*Breaker)(nil)

// NewBreaker returns a breaker that stays open for cooldown after a failure.
func NewBreaker(cooldown time.Duration) *Breaker {
	return &Breaker{cooldown: cooldown, now: time.Now}
}

func (b *Breaker) open() bool {
	until := b.openUntil.Load()
	return until != 0 && b.now().UnixNano() < until
}

func (b *Breaker) trip() { b.openUntil.Store(b.now().Add(b.cooldown).UnixNano()) }

// connFailure reports whether err means Redis cannot be reached, as opposed
// to an answer (a script error, a nil reply) from a working server.
func connFailure(err error) bool {
	if err == nil || errors.Is(err, goredis.Nil) || errors.Is(err, ErrUnavailable) {
		return false
	}
	// A connection refused, reset or closed trips it; a plain timeout does
	// not (a slow answer is not an absent server, and tripping on it would
	// fail every other command for the cooldown).
	var oe *net.OpError
	if errors.As(err, &oe) {
		return !oe.Timeout()
	}
	return errors.Is(err, goredis.ErrClosed) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}

// DialHook trips the breaker when a connection cannot be made.
func (b *Breaker) DialHook(next goredis.DialHook) goredis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if b.open() {
			return nil, ErrUnavailable
		}
		c, err := next(ctx, network, addr)
		if err != nil {
			b.trip()
		}
		return c, err
	}
}

// ProcessHook fails commands at once while the breaker is open.
func (b *Breaker) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		if b.open() {
			cmd.SetErr(ErrUnavailable)
			return ErrUnavailable
		}
		err := next(ctx, cmd)
		if connFailure(err) {
			b.trip()
		}
		return err
	}
}

// ProcessPipelineHook does the same for pipelines.
func (b *Breaker) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		if b.open() {
			for _, c := range cmds {
				c.SetErr(ErrUnavailable)
			}
			return ErrUnavailable
		}
		err := next(ctx, cmds)
		if connFailure(err) {
			b.trip()
		}
		return err
	}
}
