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
type loginThrottle struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu    sync.Mutex
	fails map[netip.Addr][]time.Time
}

func newLoginThrottle(o LoginThrottleOptions, now func() time.Time) *loginThrottle {
	if o.MaxFailures <= 0 {
		o.MaxFailures = 5
	}
	if o.Window <= 0 {
		o.Window = time.Minute
	}
	return &loginThrottle{max: o.MaxFailures, window: o.Window, now: now, fails: make(map[netip.Addr][]time.Time)}
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

// blocked reports whether ip must wait, and for how long.
func (t *loginThrottle) blocked(ip netip.Addr) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	fs := t.recent(ip, now)
	if len(fs) < t.max {
		return 0, false
	}
	// Free again when the oldest failure that still counts leaves the window.
	wait := fs[len(fs)-t.max].Add(t.window).Sub(now)
	return max(wait, time.Second), true
}

func (t *loginThrottle) fail(ip netip.Addr) {
	t.mu.Lock()
	defer t.mu.Unlock()
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

func (t *loginThrottle) succeed(ip netip.Addr) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.fails, ip)
}
