package pool

import (
	"math/rand/v2"
	"time"

	"github.com/relaystation/relay/domain"
)

// Defaults of the Config fields.
const (
	// DefaultCooldown matches the transport's cooldown before this pool.
	DefaultCooldown = 30 * time.Second
	// DefaultMaxCooldown keeps a backed-off upstream probed every few
	// minutes: a probe costs nothing, a key left idle costs capacity.
	DefaultMaxCooldown = 10 * time.Minute
	// DefaultBurstErrors in DefaultBurstWindow: one 500 is noise, three
	// in a row within ten seconds is a model in trouble.
	DefaultBurstErrors = 3
	DefaultBurstWindow = 10 * time.Second
	// DefaultProbeTimeout is longer than any count_tokens answer takes.
	DefaultProbeTimeout = 30 * time.Second
	// DefaultPinTTL is the longest prompt-cache TTL Anthropic offers.
	DefaultPinTTL = time.Hour
	// DefaultLowHeadroom: below a tenth of a limit left, new sessions go
	// elsewhere.
	DefaultLowHeadroom = 0.1
)

// Config tunes a Pool. A zero field takes its default.
type Config struct {
	// DefaultCooldown is how long a failure cools when the upstream stated
	// no time; it doubles with each cooling since the last real success.
	DefaultCooldown time.Duration
	// MaxCooldown caps every cooling, stated or backed off.
	MaxCooldown time.Duration
	// BurstErrors 5xx answers (or, for the upstream, network errors) within
	// BurstWindow and with no success between them cool. A success resets
	// the count, so a busy upstream's scattered errors never add up.
	BurstErrors int
	BurstWindow time.Duration
	// ProbeTimeout is how long a probe may go unanswered before it counts
	// as failed.
	ProbeTimeout time.Duration
	// PinTTL is how long a session pin lasts after its last use. It should
	// be at least the longest prompt-cache TTL in use.
	PinTTL time.Duration
	// LowHeadroom is the share of a rate limit below which an upstream
	// takes no new sessions while another has more; in (0, 1).
	LowHeadroom float64

	// Clock tells the time (default the system clock).
	Clock Clock
	// Rand draws among equally loaded upstreams (default seeded at random).
	// The pool serializes its use.
	Rand *rand.Rand
}

// Clock tells the time; ports.Clock satisfies it.
type Clock interface{ Now() time.Time }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (c Config) withDefaults() (Config, error) {
	if c.DefaultCooldown < 0 || c.MaxCooldown < 0 || c.BurstErrors < 0 || c.BurstWindow < 0 ||
		c.ProbeTimeout < 0 || c.PinTTL < 0 || c.LowHeadroom < 0 || c.LowHeadroom >= 1 {
		return c, domain.Invalidf("pool: durations and counts must not be negative, low headroom must be in [0, 1)")
	}
	set := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	set(&c.DefaultCooldown, DefaultCooldown)
	set(&c.MaxCooldown, DefaultMaxCooldown)
	set(&c.BurstWindow, DefaultBurstWindow)
	set(&c.ProbeTimeout, DefaultProbeTimeout)
	set(&c.PinTTL, DefaultPinTTL)
	if c.BurstErrors == 0 {
		c.BurstErrors = DefaultBurstErrors
	}
	if c.LowHeadroom == 0 {
		c.LowHeadroom = DefaultLowHeadroom
	}
	if c.MaxCooldown < c.DefaultCooldown {
		return c, domain.Invalidf("pool: max cooldown %v is below the default cooldown %v", c.MaxCooldown, c.DefaultCooldown)
	}
	if c.Clock == nil {
		c.Clock = systemClock{}
	}
	if c.Rand == nil {
		c.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	return c, nil
}
