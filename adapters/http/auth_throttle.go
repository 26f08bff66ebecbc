package httpadapter

import (
	"net/netip"
	"sync"
	"time"
)

// LoginThrottleOptions bounds failed logins per client IP.
type LoginThrottleOptions struct {
	MaxFailures int           // default 5
	Window      time.Duration // default 1 minute
}

// maxThrottledIPs bounds the throttle's memory. Past it, expired entries are
// pruned, and if that is not enough the table starts over: an attacker with
// that many addresses is not stopped by per-IP throttling anyway.
const maxThrottledIPs = 50_000

// loginThrottle is a sliding window of failed logins per client IP. While a
// client has MaxFailures failures inside the window, every login attempt
// from it is refused, correct credentials included.
//
// An attempt is reserved before the slow password check and counted until it
// ends: otherwise N parallel wrong guesses would all pass the check "fewer
// than MaxFailures so far" before the first of them is recorded.
type loginThrottle struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu    sync.Mutex
	fails map[netip.Addr][]time.Time
	// inflight counts reserved attempts not yet ended; an entry is removed
	// at zero, so its size is bounded by concurrent logins.
	inflight map[netip.Addr]int
}

func newLoginThrottle(o LoginThrottleOptions, now func() time.Time) *loginThrottle {
	if o.MaxFailures <= 0 {
		o.MaxFailures = 5
	}
	if o.Window <= 0 {
		o.Window = time.Minute
	}
	return &loginThrottle{max: o.MaxFailures, window: o.Window, now: now,
		fails: make(map[netip.Addr][]time.Time), inflight: make(map[netip.Addr]int)}
}

// recent drops failures older than the window; the caller holds mu.
func (t *loginThrottle) recent(ip netip.Addr, now time.Time) []time.Time {
	fs := t.fails[ip]
	i := 0
	for i < len(fs) && !fs[i].After(now.Add(-t.window)) {
		i++
	}
	fs = fs[i:]
	if len(fs) == 0 {
		delete(t.fails, ip)
		return nil
	}
	t.fails[ip] = fs
	return fs
}

// reserve admits one login attempt from ip if its recent failures plus its
// attempts in flight are fewer than the maximum; otherwise it reports how
// long to wait. An admitted attempt must end with exactly one of succeed,
// fail or release.
func (t *loginThrottle) reserve(ip netip.Addr) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	fs := t.recent(ip, now)
	if len(fs)+t.inflight[ip] < t.max {
		t.inflight[ip]++
		return 0, true
	}
	if len(fs) < t.max {
		// Full only of attempts still being checked: they end within
		// moments, and then either free their slot or become failures.
		return time.Second, false
	}
	// Free again when the oldest failure that still counts leaves the window.
	wait := fs[len(fs)-t.max].Add(t.window).Sub(now)
	return max(wait, time.Second), false
}

// release ends a reserved attempt without counting it either way (the
// check itself failed).
func (t *loginThrottle) release(ip netip.Addr) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.unreserve(ip)
}

// unreserve drops one in-flight attempt; the caller holds mu.
func (t *loginThrottle) unreserve(ip netip.Addr) {
	switch n := t.inflight[ip]; {
	case n > 1:
		t.inflight[ip] = n - 1
	default:
		delete(t.inflight, ip)
	}
}

// fail ends a reserved attempt as a failure.
func (t *loginThrottle) fail(ip netip.Addr) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.unreserve(ip)
	now := t.now()
	if len(t.fails) >= maxThrottledIPs {
		for a := range t.fails {
			t.recent(a, now)
		}
		if len(t.fails) >= maxThrottledIPs {
			t.fails = make(map[netip.Addr][]time.Time)
		}
	}
	fs := append(t.recent(ip, now), now)
	if len(fs) > t.max {
		fs = fs[len(fs)-t.max:]
	}
	t.fails[ip] = fs
}

// succeed ends a reserved attempt that logged in: ip's failures are forgotten.
func (t *loginThrottle) succeed(ip netip.Addr) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.unreserve(ip)
	delete(t.fails, ip)
}
