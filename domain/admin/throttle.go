package admin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

// LoginThrottlePolicy is the login throttle's limits. Every count and
// duration is required (> 0) except KnownAddressTTL.
type LoginThrottlePolicy struct {
	// PerAddress failed logins from one client address (an IPv4 address, or
	// an IPv6 /64) are free. Each further one doubles the wait before the
	// address may try again, from one second up to MaxBackoff. An address's
	// failures are forgotten Window after its last one, or when it logs in.
	PerAddress int
	MaxBackoff time.Duration
	// PerUsername and Global are budgets of failed logins per Window: for
	// one username, and for all of them. They refill steadily (one failure
	// every Window/budget); while one is spent, an address that is not known
	// is refused until the budget has room again.
	PerUsername int
	Global      int
	// Window is at least MaxBackoff, so a backoff always ends before the
	// failures behind it are forgotten.
	Window time.Duration
	// KnownAddressTTL is how long an address that logged in stays known. A
	// known address faces only its own backoff, never the username and
	// global budgets, so an attacker who spends them cannot lock the admin
	// out of the addresses they use. Zero: no address is ever known.
	KnownAddressTTL time.Duration
}

// Validate checks that every limit is set.
func (p LoginThrottlePolicy) Validate() error {
	switch {
	case p.PerAddress < 1 || p.PerUsername < 1 || p.Global < 1:
		return fmt.Errorf("login throttle: PerAddress, PerUsername and Global must be at least 1")
	case p.MaxBackoff < loginBackoffBase:
		return fmt.Errorf("login throttle: MaxBackoff must be at least %v", loginBackoffBase)
	case p.Window < p.MaxBackoff:
		return fmt.Errorf("login throttle: Window must be at least MaxBackoff")
	case p.KnownAddressTTL < 0:
		return fmt.Errorf("login throttle: KnownAddressTTL must not be negative")
	}
	return nil
}

const (
	// loginBackoffBase is the wait after the first failure past PerAddress.
	loginBackoffBase = time.Second
	// loginLease bounds how long an admitted attempt counts as in flight. A
	// check never waits for a slot, so it ends well within it unless its
	// replica died. A counter has one lease for all its attempts, renewed
	// by each admission: a dead replica's attempts stop counting once a
	// minute has passed without a new one.
	loginLease = time.Minute
	// loginInFlightWait answers an attempt refused only because others are
	// being checked: they end within moments.
	loginInFlightWait = time.Second
	// loginEndTimeout bounds the store call that ends an attempt; if it
	// fails, the lease frees the attempt.
	loginEndTimeout = 2 * time.Second
	// loginWarnEvery spaces the warnings about a failing store.
	loginWarnEvery = 10 * time.Second
)

// ErrLoginThrottled is the cause (errors.Is) of every refusal by the login
// throttle, a KindRateLimited error with RetryAfter set.
var ErrLoginThrottled = errors.New("login throttled")

// LoginThrottle decides whether a login may have its password checked, and
// records how each check ended. Three counters apply to an attempt: its
// address's (exponential backoff), and, unless the address is known, its
// username's and the global one (budgets). An attempt is admitted only if
// every one of them admits it, and is then charged to all of them while it
// is being checked, so parallel guesses count before their checks end.
type LoginThrottle struct {
	store    ports.LoginThrottle
	fallback ports.LoginThrottle
	policy   LoginThrottlePolicy
	addr     addressBackoff
	user     budget
	global   budget
	log      *slog.Logger
	warnedAt atomic.Int64
}

// NewLoginThrottle builds the throttle on store. fallback, when not nil,
// takes over while store fails (a shared store that is unreachable): each
// replica then throttles on its own. Without one, logins are refused with
// 503 while store fails.
func NewLoginThrottle(store, fallback ports.LoginThrottle, p LoginThrottlePolicy, log *slog.Logger) (*LoginThrottle, error) {
	if store == nil {
		return nil, fmt.Errorf("login throttle: a store is required")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &LoginThrottle{
		store: store, fallback: fallback, policy: p, log: log,
		addr:   addressBackoff{free: p.PerAddress, max: p.MaxBackoff, window: p.Window},
		user:   budget{size: p.PerUsername, window: p.Window},
		global: budget{size: p.Global, window: p.Window},
	}, nil
}

// LoginAttempt is a login the throttle admitted. It counts as in flight
// until the first of Failed, Succeeded or Release ends it; later calls do
// nothing.
type LoginAttempt struct {
	t        *LoginThrottle
	store    ports.LoginThrottle
	keys     []string // the counters it was charged to
	rules    []rule
	knownKey string
	ended    atomic.Bool
}

// Reserve admits a login attempt from addr for username, or refuses it with
// an error wrapping ErrLoginThrottled that says how long to wait.
func (t *LoginThrottle) Reserve(ctx context.Context, addr netip.Addr, username string) (*LoginAttempt, error) {
	group := addressGroup(addr)
	// The known-address marker first, then the counters in rule order.
	keys := []string{"known:" + group, "addr:" + group, "user:" + usernameKey(username), "global"}
	rules := []rule{t.addr, t.user, t.global}
	var (
		wait    time.Duration
		charged int
	)
	decide := func(now time.Time, cur []ports.LoginCounter) []ports.LoginCounterUpdate {
		wait, charged = 0, len(rules)
		if t.policy.KnownAddressTTL > 0 && !cur[0].At.IsZero() {
			charged = 1 // a known address: its own backoff only
		}
		ups := make([]ports.LoginCounterUpdate, 0, charged)
		for i, r := range rules[:charged] {
			c := r.norm(cur[1+i], now)
			if w := r.wait(c, now); w > 0 {
				wait = max(wait, w)
				continue
			}
			c.InFlight++
			c.Lease = now.Add(loginLease)
			ups = append(ups, ports.LoginCounterUpdate{Key: keys[1+i], Counter: c, TTL: r.ttl(c, now)})
		}
		if wait > 0 {
			return nil
		}
		return ups
	}
	store, err := t.update(ctx, keys, decide)
	if err != nil {
		return nil, err
	}
	if wait > 0 {
		return nil, &domain.Error{Kind: domain.KindRateLimited, Reason: domain.ReasonLoginThrottled, RetryAfter: wait,
			Message: "too many failed logins; try again later", Err: ErrLoginThrottled}
	}
	return &LoginAttempt{t: t, store: store, keys: keys[1 : 1+charged], rules: rules[:charged], knownKey: keys[0]}, nil
}

// update runs decide on the store, or on the fallback while the store fails,
// and returns the one that took it.
func (t *LoginThrottle) update(ctx context.Context, keys []string,
	decide func(time.Time, []ports.LoginCounter) []ports.LoginCounterUpdate) (ports.LoginThrottle, error) {
	err := t.store.Update(ctx, keys, decide)
	if err == nil {
		return t.store, nil
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("login throttle: %w", err)
	}
	if t.fallback != nil {
		t.warn("login throttle store failed; this replica throttles on its own until it is back", err)
		if err = t.fallback.Update(ctx, keys, decide); err == nil {
			return t.fallback, nil
		}
	}
	return nil, &domain.Error{Kind: domain.KindOverloaded, Reason: domain.ReasonLoginBackend, RetryAfter: time.Second,
		Message: "logins cannot be checked right now; retry shortly", Err: err}
}

func (t *LoginThrottle) warn(msg string, err error) {
	now := time.Now().UnixNano()
	last := t.warnedAt.Load()
	if now-last < int64(loginWarnEvery) || !t.warnedAt.CompareAndSwap(last, now) {
		return
	}
	t.log.Warn(msg, "error", err)
}

// Failed ends the attempt as a wrong credential.
func (a *LoginAttempt) Failed(ctx context.Context) { a.end(ctx, loginFailed) }

// Succeeded ends the attempt as a login: the address's failures are
// forgotten and it becomes known.
func (a *LoginAttempt) Succeeded(ctx context.Context) { a.end(ctx, loginSucceeded) }

// Release ends the attempt without counting it either way (no check
// happened, or it could not finish).
func (a *LoginAttempt) Release(ctx context.Context) { a.end(ctx, loginReleased) }

type loginOutcome uint8

const (
	loginReleased loginOutcome = iota
	loginFailed
	loginSucceeded
)

func (a *LoginAttempt) end(ctx context.Context, o loginOutcome) {
	if a == nil || !a.ended.CompareAndSwap(false, true) {
		return
	}
	// A client that hung up must not leave its attempt in flight.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), loginEndTimeout)
	defer cancel()
	remember := o == loginSucceeded && a.t.policy.KnownAddressTTL > 0
	keys := a.keys
	if remember {
		keys = append(slices.Clip(keys), a.knownKey)
	}
	err := a.store.Update(ctx, keys, func(now time.Time, cur []ports.LoginCounter) []ports.LoginCounterUpdate {
		ups := make([]ports.LoginCounterUpdate, 0, len(keys))
		for i, r := range a.rules {
			c := r.norm(cur[i], now)
			c.InFlight = max(c.InFlight-1, 0)
			if c.InFlight == 0 {
				c.Lease = time.Time{}
			}
			switch o {
			case loginFailed:
				r.fail(&c, now)
			case loginSucceeded:
				r.succeed(&c)
			}
			ups = append(ups, ports.LoginCounterUpdate{Key: a.keys[i], Counter: c, TTL: r.ttl(c, now)})
		}
		if remember {
			ups = append(ups, ports.LoginCounterUpdate{Key: a.knownKey,
				Counter: ports.LoginCounter{Count: 1, At: now}, TTL: a.t.policy.KnownAddressTTL})
		}
		return ups
	})
	if err != nil {
		a.t.warn("login throttle: ending an attempt failed; its lease frees it", err)
	}
}

// rule is how one counter admits attempts and records their ends. Every
// method but norm takes a counter norm returned for the same now.
type rule interface {
	// norm is c as of now: failures forgotten or leaked away, and in-flight
	// attempts dropped once their lease has passed.
	norm(c ports.LoginCounter, now time.Time) ports.LoginCounter
	// wait is how long c makes a new attempt wait; zero admits it.
	wait(c ports.LoginCounter, now time.Time) time.Duration
	fail(c *ports.LoginCounter, now time.Time)
	succeed(c *ports.LoginCounter)
	// ttl is how long c matters; zero or less when it is back to nothing.
	ttl(c ports.LoginCounter, now time.Time) time.Duration
}

func dropLease(c *ports.LoginCounter, now time.Time) {
	if c.InFlight > 0 && !now.Before(c.Lease) {
		c.InFlight, c.Lease = 0, time.Time{}
	}
}

func leaseTTL(c ports.LoginCounter, now time.Time) time.Duration {
	if c.InFlight > 0 {
		return c.Lease.Sub(now)
	}
	return 0
}

// addressBackoff is the per-address rule: free failures, then a wait that
// doubles with each further one, up to max; all forgotten window after the
// last.
type addressBackoff struct {
	free   int
	max    time.Duration
	window time.Duration
}

func (b addressBackoff) norm(c ports.LoginCounter, now time.Time) ports.LoginCounter {
	if c.Count > 0 && now.Sub(c.At) >= b.window {
		c.Count, c.At = 0, time.Time{}
	}
	dropLease(&c, now)
	return c
}

// delay is the wait after n failures, n >= free.
func (b addressBackoff) delay(n int) time.Duration {
	k := n - b.free
	if k >= 30 {
		return b.max
	}
	return min(loginBackoffBase<<k, b.max)
}

func (b addressBackoff) wait(c ports.LoginCounter, now time.Time) time.Duration {
	n := int(c.Count)
	switch {
	case n+c.InFlight < b.free:
		return 0
	case c.InFlight > 0:
		// Past the free failures one attempt at a time: each may double
		// the next one's wait.
		return loginInFlightWait
	}
	if until := c.At.Add(b.delay(n)); now.Before(until) {
		return until.Sub(now)
	}
	return 0
}

func (b addressBackoff) fail(c *ports.LoginCounter, now time.Time) { c.Count++; c.At = now }

func (b addressBackoff) succeed(c *ports.LoginCounter) { c.Count, c.At = 0, time.Time{} }

func (b addressBackoff) ttl(c ports.LoginCounter, now time.Time) time.Duration {
	d := leaseTTL(c, now)
	if c.Count > 0 {
		d = max(d, c.At.Add(b.window).Sub(now))
	}
	return d
}

// budget is the per-username and global rule: size failures per window,
// leaking away steadily (a GCRA in disguise), with attempts in flight
// counted as failures to come.
type budget struct {
	size   int
	window time.Duration
}

func (b budget) norm(c ports.LoginCounter, now time.Time) ports.LoginCounter {
	if c.Count > 0 {
		if elapsed := now.Sub(c.At); elapsed > 0 {
			c.Count = max(0, c.Count-float64(elapsed)*float64(b.size)/float64(b.window))
		}
	}
	c.At = now
	dropLease(&c, now)
	return c
}

func (b budget) wait(c ports.LoginCounter, _ time.Time) time.Duration {
	over := c.Count + float64(c.InFlight) + 1 - float64(b.size)
	if over <= 1e-9 {
		return 0
	}
	return time.Duration(over * float64(b.window) / float64(b.size))
}

func (b budget) fail(c *ports.LoginCounter, _ time.Time) { c.Count++ }

func (b budget) succeed(*ports.LoginCounter) {}

func (b budget) ttl(c ports.LoginCounter, now time.Time) time.Duration {
	return max(leaseTTL(c, now), time.Duration(c.Count*float64(b.window)/float64(b.size)))
}

// addressGroup is the unit an address is throttled by: an IPv4 address, or
// an IPv6 /64 (one subscriber's network: anyone with one has all of it).
func addressGroup(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	switch {
	case !a.IsValid():
		return "unknown"
	case a.Is6():
		return netip.PrefixFrom(a, 64).Masked().String()
	default:
		return a.String()
	}
}

// usernameKey keeps attacker-chosen text out of the store's keys and bounds
// their length.
func usernameKey(u string) string {
	h := sha256.Sum256([]byte(u))
	return hex.EncodeToString(h[:16])
}
