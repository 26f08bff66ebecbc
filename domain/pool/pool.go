package pool

import (
	"slices"
	"sync"
	"time"

	"github.com/relaystation/relay/domain"
)

// Pool holds the upstreams, their health and their in-flight counts, for
// one replica. It is safe for concurrent use; every method takes one
// mutex for a few hundred nanoseconds.
type Pool struct {
	cfg Config

	mu   sync.Mutex
	ups  []*member // in configuration order
	byID map[string]*member
}

type member struct {
	up       Upstream
	inFlight int
	health   health
	models   map[string]*health
	// fails are the times of its latest failed attempts (any status that
	// is not a success, or no answer), at most maxRecentFails, oldest
	// first: the admin view's recent error count.
	fails []time.Time
}

// RecentWindow is how far back Status counts an upstream's errors.
const RecentWindow = 5 * time.Minute

// maxRecentFails bounds the failures kept per upstream (the count shown
// is then "at least" this many).
const maxRecentFails = 256

func (m *member) noteFailure(at time.Time) {
	if len(m.fails) >= maxRecentFails {
		m.fails = append(m.fails[:0], m.fails[1:]...)
	}
	m.fails = append(m.fails, at)
}

// recentFailures counts the failures within RecentWindow before now.
func (m *member) recentFailures(now time.Time) int {
	n := 0
	for i := len(m.fails) - 1; i >= 0 && now.Sub(m.fails[i]) <= RecentWindow; i-- {
		n++
	}
	return n
}

// New returns a pool of ups.
func New(cfg Config, ups []Upstream) (*Pool, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Pool{cfg: cfg, byID: map[string]*member{}}
	if err := p.SetUpstreams(ups); err != nil {
		return nil, err
	}
	return p, nil
}

// SetUpstreams replaces the configured upstreams (after an admin change).
// Upstreams that stay keep their health and in-flight counts; removed
// ones are forgotten, and their pins and objects are skipped as unknown.
func (p *Pool) SetUpstreams(ups []Upstream) error {
	seen := make(map[string]bool, len(ups))
	for _, u := range ups {
		if err := u.Validate(); err != nil {
			return err
		}
		if seen[u.ID] {
			return domain.Invalidf("upstream id %q appears twice", u.ID)
		}
		seen[u.ID] = true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	next := make([]*member, 0, len(ups))
	byID := make(map[string]*member, len(ups))
	for _, u := range ups {
		m := p.byID[u.ID]
		if m == nil {
			m = &member{}
		}
		u.Models = slices.Clone(u.Models)
		m.up = u
		next = append(next, m)
		byID[u.ID] = m
	}
	p.ups, p.byID = next, byID
	return nil
}

// PinTTL is how long the caller keeps a session pin after its last use.
func (p *Pool) PinTTL() time.Duration { return p.cfg.PinTTL }

// Observe applies one attempt's outcome and returns the changes of state it
// caused (usually none).
func (p *Pool) Observe(o Observation) []Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.byID[o.Upstream]
	if m == nil {
		return nil
	}
	at := o.At
	if at.IsZero() {
		at = p.cfg.Clock.Now()
	}
	c := classify(o.Status)
	if c != answered && !o.Probe {
		m.noteFailure(at)
	}
	if o.Limits.any() {
		if h := m.entry(o.Model, true); h != nil && !at.Before(h.limitsAt) {
			h.limits, h.limitsAt = o.Limits, at
		}
	}
	var ev Event
	var changed bool
	switch {
	case c == refused: // whatever the model, and whether a probe or not
		ev, changed = m.disable(&o, at)
	case o.Probe:
		ev, changed = p.probed(m, &o, c, at)
	case c == answered:
		var evs []Event
		if h := m.entry(o.Model, false); h != nil && o.Model != "" {
			if ev, ok := m.succeeded(h, o.Model, at); ok {
				evs = append(evs, ev)
			}
		}
		if ev, ok := m.succeeded(&m.health, "", at); ok {
			evs = append(evs, ev)
		}
		return evs
	case c == noResponse:
		ev, changed = p.failed(m, &m.health, "", CauseNetworkErrors, &o, at, true)
	default:
		h := m.entry(o.Model, true)
		if h == nil {
			return nil
		}
		cause, burst := CauseRateLimited, false
		switch c {
		case overloaded:
			cause = CauseOverloaded
		case serverError:
			cause, burst = CauseServerErrors, true
		}
		ev, changed = p.failed(m, h, o.Model, cause, &o, at, burst)
	}
	if !changed {
		return nil
	}
	return []Event{ev}
}

// Probes hands out the probes due now: one for each upstream, or model on
// an otherwise healthy upstream, whose cooling has ended. Each is handed
// out once; until its answer is observed that upstream or model is
// probing. A probe unanswered for ProbeTimeout counts as failed. Call it
// about once a second.
func (p *Pool) Probes() ([]Probe, []Event) {
	now := p.cfg.Clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	var probes []Probe
	var evs []Event
	visit := func(m *member, h *health, model string) {
		if now.Before(h.until) {
			return
		}
		switch h.state {
		case Cooling:
			ev := m.move(h, model, Probing, CauseCoolingEnded, now, 0)
			h.until, ev.Until = now.Add(p.cfg.ProbeTimeout), now.Add(p.cfg.ProbeTimeout)
			probes = append(probes, Probe{Upstream: m.up.ID, Model: model})
			evs = append(evs, ev)
		case Probing:
			evs = append(evs, p.cool(m, h, model, CauseProbeLost, &Observation{}, now))
		}
	}
	for _, m := range p.ups {
		if !m.up.Enabled {
			continue
		}
		visit(m, &m.health, "")
		if m.health.state != Healthy {
			continue
		}
		var due []string
		for name, h := range m.models {
			if (h.state == Cooling || h.state == Probing) && !now.Before(h.until) {
				due = append(due, name)
			}
		}
		slices.Sort(due)
		for _, name := range due {
			visit(m, m.models[name], name)
		}
	}
	return probes, evs
}

// Enable makes a disabled (or cooling) upstream healthy again: the
// operator's word after fixing its key. Its models keep their own states.
func (p *Pool) Enable(id string) ([]Event, error) {
	now := p.cfg.Clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.byID[id]
	if m == nil {
		return nil, domain.Errorf(domain.KindNotFound, "upstream %q is not in the pool", id)
	}
	h := &m.health
	if h.state == Healthy {
		return nil, nil
	}
	ev := m.move(h, "", Healthy, CauseOperator, now, 0)
	h.strikes, h.errs = 0, nil
	return []Event{ev}, nil
}

// Acquire takes an in-flight slot on upstream id, refusing when it is at
// its max_concurrency (or unknown). Pick skips upstreams at their cap, but
// two requests may pick the last slot at once: the one refused here
// excludes the upstream and picks again. release may be called more than
// once.
func (p *Pool) Acquire(id string) (release func(), ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.byID[id]
	if m == nil || (m.up.MaxConcurrency > 0 && m.inFlight >= m.up.MaxConcurrency) {
		return nil, false
	}
	m.inFlight++
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			m.inFlight--
			p.mu.Unlock()
		})
	}, true
}

// Health is the state of an upstream, or of one model on it, for the
// admin view.
type Health struct {
	State  State
	Cause  Cause
	Status int
	Detail string
	Since  time.Time
	// Until is when a cooling ends, or when the probe counts as lost.
	Until       time.Time
	LastProbe   time.Time
	LastProbeOK bool
	// Limits is the last rate-limit reading, taken at LimitsAt.
	Limits   Limits
	LimitsAt time.Time
}

// Status is one upstream as the admin view shows it.
type Status struct {
	Upstream Upstream
	InFlight int
	// RecentErrors counts its failed attempts (429, 529, 5xx, 401/403, no
	// answer; probes aside) within RecentWindow.
	RecentErrors int
	Health       Health
	// Models holds the models with a state or a reading of their own.
	Models map[string]Health
}

// Status reports every upstream, in configuration order.
func (p *Pool) Status() []Status {
	now := p.cfg.Clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Status, 0, len(p.ups))
	for _, m := range p.ups {
		s := Status{Upstream: m.up, InFlight: m.inFlight, RecentErrors: m.recentFailures(now), Health: m.health.view()}
		s.Upstream.Models = slices.Clone(m.up.Models)
		if len(m.models) > 0 {
			s.Models = make(map[string]Health, len(m.models))
			for name, h := range m.models {
				s.Models[name] = h.view()
			}
		}
		out = append(out, s)
	}
	return out
}

func (h *health) view() Health {
	return Health{State: h.state, Cause: h.cause, Status: h.status, Detail: h.detail, Since: h.since, Until: h.until,
		LastProbe: h.probeAt, LastProbeOK: h.probeOK, Limits: h.limits, LimitsAt: h.limitsAt}
}
