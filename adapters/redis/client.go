package redis

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Client tuning: admission waits on Redis, so its worst case stays short
// and the fail_open/fail_closed policies apply within about a second of
// Redis going away, instead of after go-redis's default timeouts and
// retries.
const (
	dialTimeout = time.Second
	ioTimeout   = 500 * time.Millisecond
	poolTimeout = time.Second
	// breakerCooldown is how long Redis calls fail at once after a
	// connection failure.
	breakerCooldown = time.Second
	// pingTimeout bounds the reachability check at start.
	pingTimeout = 3 * time.Second
)

// NewClient connects to the Redis at url for the relay's admission ports:
// short timeouts, one retry, and a Breaker. A Redis that cannot be reached
// yet is not an error (the failure policies decide what happens while it
// is away, and it may come back); it is logged. go-redis's own messages go
// to log at debug level; go-redis has one logger per process, so it is the
// first client's.
func NewClient(ctx context.Context, url string, log *slog.Logger) (*goredis.Client, error) {
	opts, err := goredis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis_url: %w", err)
	}
	opts.DialTimeout = dialTimeout
	opts.ReadTimeout = ioTimeout
	opts.WriteTimeout = ioTimeout
	opts.PoolTimeout = poolTimeout
	opts.MaxRetries = 1
	opts.DialerRetries = 1
	setLogger.Do(func() { goredis.SetLogger(clientLogger{log}) })
	c := goredis.NewClient(opts)
	c.AddHook(NewBreaker(breakerCooldown))
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := c.Ping(pctx).Err(); err != nil {
		log.Warn("redis is not reachable at start; the failure policies apply until it is", "error", err)
	}
	return c, nil
}

var setLogger sync.Once

// clientLogger sends go-redis's own messages (dial retries, pool notes) to
// the structured log at debug level instead of stderr.
type clientLogger struct{ log *slog.Logger }

func (l clientLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.Log(ctx, slog.LevelDebug, "redis: "+fmt.Sprintf(format, v...))
}
