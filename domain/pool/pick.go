package pool

import (
	"slices"
	"strconv"
	"time"
)

// PickInput is one request's attempt to find an upstream.
type PickInput struct {
	// Model is the request's model; "" when it names none.
	Model string
	// Session is the key the session is pinned under (see SessionKey);
	// "" for none, and then nothing is pinned.
	Session string
	// Pinned is the upstream ports.SessionPins holds for Session; "" when
	// it holds none, or could not be read.
	Pinned string
	// Group is the proxy key's upstream group; "" is the default group.
	Group string
	// Require names the upstream that created the object the request
	// addresses (a batch, a file): only it can serve the request.
	Require string
	// Exclude lists the upstreams this request already tried.
	Exclude []string
}

// Why says how a Choice was made.
type Why string

const (
	WhyAffinity Why = "affinity" // the upstream that created the addressed object
	WhyPinned   Why = "pinned"   // the session's pin, kept
	WhyBalanced Why = "balanced" // no pin: best tier, least loaded, weighted draw
	WhyMoved    Why = "moved"    // the pin could not be kept (its Skip says why)
	// WhyLastResort: every upstream that could serve the request is
	// cooling on a length the relay guessed (the upstream stated none),
	// so the request goes to the one whose cooling ends first rather than
	// being refused: the upstream's own answer is more truthful than the
	// relay's guess.
	WhyLastResort Why = "last_resort"
)

// Choice is where a request goes.
type Choice struct {
	// Upstream is "" when no upstream may take the request; the Skips say
	// why.
	Upstream string
	Why      Why
	// Pin tells the caller to pin the session to Upstream for PinTTL: a
	// new pin, a move, or the renewal of the pin it kept.
	Pin    bool
	PinTTL time.Duration
	// RetryAt, when no upstream may take the request, is the first time a
	// cooling one ends its cooling; zero when none will by itself.
	RetryAt time.Time
}

// SkipReason says why an upstream was passed over, in one bounded word.
type SkipReason string

const (
	SkipUnknown     SkipReason = "unknown"              // not in the pool (a pin or object of a removed upstream)
	SkipOff         SkipReason = "off"                  // the operator turned it off (enabled = false)
	SkipGroup       SkipReason = "not_in_group"         // not in the proxy key's group
	SkipModel       SkipReason = "does_not_serve_model" // its models do not match the request's
	SkipTried       SkipReason = "tried"                // this request already failed on it
	SkipDisabled    SkipReason = "disabled"             // it refused its key (401/403)
	SkipCooling     SkipReason = "cooling"              // the upstream, or the model on it, is cooling
	SkipProbing     SkipReason = "probing"              // its cooling ended; a probe decides
	SkipBusy        SkipReason = "at_max_concurrency"
	SkipLowHeadroom SkipReason = "low_headroom" // close to a rate limit while another is not
	SkipLowerTier   SkipReason = "lower_priority"
)

// Skip is one upstream passed over, and why: what an operator reads to
// see why a request went where it did.
type Skip struct {
	Upstream string
	Reason   SkipReason
	// Model is set when the reason concerns the request's model on the
	// upstream rather than the upstream itself.
	Model string
	// Cause and Status say why it is cooling, probing or disabled.
	Cause  Cause
	Status int
	// Until is when a cooling ends, or when a low reading lapses.
	Until time.Time
	// Guessed: the cooling's length is the relay's backoff; the upstream
	// stated no time.
	Guessed bool
	// Detail is a disable's reason, or the tightest rate limit.
	Detail string
}

func (s Skip) String() string {
	subject := s.Upstream + ": "
	if s.Model != "" && s.Reason != SkipModel {
		subject += "model " + s.Model + " "
	}
	switch s.Reason {
	case SkipUnknown:
		return subject + "not in the pool"
	case SkipOff:
		return subject + "turned off by an operator"
	case SkipGroup:
		return subject + "not in the key's group"
	case SkipModel:
		return subject + "does not serve model " + s.Model
	case SkipTried:
		return subject + "already tried"
	case SkipDisabled:
		return subject + "disabled: " + strconv.Itoa(s.Status) + " " + s.Detail
	case SkipCooling:
		return subject + "cooling until " + stamp(s.Until) + " (" + s.why() + ")"
	case SkipProbing:
		return subject + "probing (" + s.why() + ")"
	case SkipBusy:
		return subject + "at max_concurrency"
	case SkipLowHeadroom:
		return subject + "low headroom (" + s.Detail + ") until " + stamp(s.Until)
	case SkipLowerTier:
		return subject + "a better priority tier has room"
	}
	return subject + string(s.Reason)
}

func (s Skip) why() string {
	if s.Status != 0 {
		return string(s.Cause) + " " + strconv.Itoa(s.Status)
	}
	return string(s.Cause)
}

type candidate struct {
	m     *member
	room  level
	tight string    // the tightest rate limit, when room is not roomy
	until time.Time // and when its reading lapses
}

// Pick chooses the upstream for one attempt; see the package doc for the
// rules. It changes nothing: the caller acquires a slot (Acquire) and
// pins the session as Choice.Pin says.
func (p *Pool) Pick(in PickInput) (Choice, []Skip) {
	now := p.cfg.Clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if in.Require != "" {
		return p.pickRequired(&in)
	}

	var skips []Skip
	var pinned *member
	var pinnedSkip Skip
	why := WhyBalanced
	checkedPin := in.Session != "" && in.Pinned != ""
	if checkedPin {
		why = WhyMoved
		m := p.byID[in.Pinned]
		s, room, ok := p.check(m, in.Pinned, &in, now)
		switch {
		case ok && room < exhausted:
			return p.chose(m, WhyPinned, &in), nil
		case ok:
			pinned, pinnedSkip = m, s // kept unless another has room
		default:
			skips = append(skips, s)
		}
	}

	var buf [8]candidate
	cands := buf[:0]
	best := exhausted
	for _, m := range p.ups {
		if checkedPin && m.up.ID == in.Pinned {
			continue
		}
		s, room, ok := p.check(m, m.up.ID, &in, now)
		if !ok {
			skips = append(skips, s)
			continue
		}
		cands = append(cands, candidate{m: m, room: room, tight: s.Detail, until: s.Until})
		best = min(best, room)
	}
	if pinned != nil {
		if best == exhausted {
			return p.chose(pinned, WhyPinned, &in), nil
		}
		skips = append(skips, pinnedSkip)
	}
	if len(cands) == 0 {
		if m := p.lastResort(skips); m != nil {
			return p.chose(m, WhyLastResort, &in), skips
		}
		return Choice{RetryAt: retryAt(skips, now)}, skips
	}

	// Headroom steers: only the candidates with the most room stay. Then
	// only the best tier among them.
	tier := -1
	n := 0
	for _, c := range cands {
		if c.room != best {
			skips = append(skips, Skip{Upstream: c.m.up.ID, Reason: SkipLowHeadroom, Model: in.Model, Detail: c.tight, Until: c.until})
			continue
		}
		if tier < 0 || c.m.up.Priority < tier {
			tier = c.m.up.Priority
		}
		cands[n] = c
		n++
	}
	cands = cands[:n]
	n = 0
	for _, c := range cands {
		if c.m.up.Priority != tier {
			skips = append(skips, Skip{Upstream: c.m.up.ID, Reason: SkipLowerTier})
			continue
		}
		cands[n] = c
		n++
	}
	return p.chose(p.leastLoaded(cands[:n]), why, &in), skips
}

// check applies the rules an upstream must pass to take the request, and
// ranks its headroom. The returned Skip is the reason when ok is false,
// and the low-headroom reason otherwise.
func (p *Pool) check(m *member, id string, in *PickInput, now time.Time) (Skip, level, bool) {
	if m == nil {
		return Skip{Upstream: id, Reason: SkipUnknown}, 0, false
	}
	u := &m.up
	switch {
	case !u.Enabled:
		return Skip{Upstream: id, Reason: SkipOff}, 0, false
	case u.Group != in.Group:
		return Skip{Upstream: id, Reason: SkipGroup}, 0, false
	case !u.Serves(in.Model):
		return Skip{Upstream: id, Reason: SkipModel, Model: in.Model}, 0, false
	case slices.Contains(in.Exclude, id):
		return Skip{Upstream: id, Reason: SkipTried}, 0, false
	}
	if s, bad := m.health.skip(id, "", now); bad {
		return s, 0, false
	}
	readings := &m.health
	if in.Model != "" {
		readings = m.models[in.Model]
		if readings != nil {
			if s, bad := readings.skip(id, in.Model, now); bad {
				return s, 0, false
			}
		}
	}
	if u.MaxConcurrency > 0 && m.inFlight >= u.MaxConcurrency {
		return Skip{Upstream: id, Reason: SkipBusy}, 0, false
	}
	if readings == nil {
		return Skip{}, roomy, true
	}
	room, tight, until := readings.limits.level(now, readings.limitsAt, p.cfg.LowHeadroom)
	return Skip{Upstream: id, Reason: SkipLowHeadroom, Model: in.Model, Detail: tight, Until: until}, room, true
}

// lastResort is the upstream to send a request to when none may take it:
// when every upstream that could serve it (enabled, in its group, serving
// its model, not yet tried, not disabled) is cooling on a guessed length,
// the one whose cooling ends first, if it has room. Any other obstacle (a
// time the upstream stated, a probe in flight, a disable) keeps the
// refusal: the upstream said when to come back, or a probe will.
func (p *Pool) lastResort(skips []Skip) *member {
	var best *member
	var until time.Time
	for _, s := range skips {
		switch s.Reason {
		case SkipOff, SkipGroup, SkipModel, SkipTried, SkipUnknown:
			continue // could not serve it anyway
		case SkipCooling:
			if s.Guessed {
				break
			}
			return nil
		default:
			return nil
		}
		m := p.byID[s.Upstream]
		if m == nil || m.up.MaxConcurrency > 0 && m.inFlight >= m.up.MaxConcurrency {
			continue
		}
		if best == nil || s.Until.Before(until) {
			best, until = m, s.Until
		}
	}
	return best
}

// pickRequired serves object affinity: the one upstream that can, even
// while cooling, unless it is off, disabled, already tried or full.
func (p *Pool) pickRequired(in *PickInput) (Choice, []Skip) {
	id := in.Require
	m := p.byID[id]
	var s Skip
	switch {
	case m == nil:
		s = Skip{Upstream: id, Reason: SkipUnknown}
	case !m.up.Enabled:
		s = Skip{Upstream: id, Reason: SkipOff}
	case slices.Contains(in.Exclude, id):
		s = Skip{Upstream: id, Reason: SkipTried}
	case m.health.state == Disabled:
		s = Skip{Upstream: id, Reason: SkipDisabled, Cause: m.health.cause, Status: m.health.status, Detail: m.health.detail}
	case m.up.MaxConcurrency > 0 && m.inFlight >= m.up.MaxConcurrency:
		s = Skip{Upstream: id, Reason: SkipBusy}
	default:
		return Choice{Upstream: id, Why: WhyAffinity}, nil
	}
	return Choice{}, []Skip{s}
}

func (p *Pool) chose(m *member, why Why, in *PickInput) Choice {
	c := Choice{Upstream: m.up.ID, Why: why}
	if in.Session != "" {
		c.Pin, c.PinTTL = true, p.cfg.PinTTL
	}
	return c
}

// leastLoaded returns the candidate with the fewest requests in flight per
// unit of weight (compared exactly, as cross products), drawing among ties
// by weight.
func (p *Pool) leastLoaded(cands []candidate) *member {
	n := 0
	for _, c := range cands {
		if n > 0 {
			lead := cands[0].m
			l, r := c.m.inFlight*lead.up.Weight, lead.inFlight*c.m.up.Weight
			if l > r {
				continue
			}
			if l < r {
				n = 0
			}
		}
		cands[n] = c
		n++
	}
	if n == 1 {
		return cands[0].m
	}
	total := 0
	for _, c := range cands[:n] {
		total += c.m.up.Weight
	}
	r := p.cfg.Rand.IntN(total)
	for _, c := range cands[:n] {
		if r -= c.m.up.Weight; r < 0 {
			return c.m
		}
	}
	return cands[n-1].m
}

func retryAt(skips []Skip, now time.Time) time.Time {
	var t time.Time
	for _, s := range skips {
		if s.Reason == SkipCooling && s.Until.After(now) && (t.IsZero() || s.Until.Before(t)) {
			t = s.Until
		}
	}
	return t
}
