package pool

import (
	"time"
	"unicode/utf8"
)

// Observation is what the transport saw of one attempt on an upstream.
// An attempt the client canceled says nothing about the upstream and is
// not reported.
type Observation struct {
	Upstream string
	// Model is the request's model; "" when it names none.
	Model string
	// At is when the answer or the failure came; zero means now.
	At time.Time
	// Status is the HTTP status; 0 when no response came (the connection
	// failed or the response headers timed out).
	Status int
	// RetryAt is the upstream's retry-after as a time; zero when it sent
	// none. A 429 without one cools until the reset in Limits of the limit
	// that ran out.
	RetryAt time.Time
	// Limits are the response's anthropic-ratelimit-* headers, if any.
	Limits Limits
	// Message is the upstream's error message; a disable keeps it as its
	// reason (the first maxDetail bytes). It must not hold credentials.
	Message string
	// Probe marks the answer to a probe that Probes handed out, with that
	// probe's Upstream and Model.
	Probe bool
}

// Probe is one request the transport should send now and report back with
// Observe (Probe: true).
type Probe struct {
	Upstream string
	// Model is the model to probe with count_tokens; "" means the
	// upstream itself (GET /v1/models).
	Model string
}

const maxDetail = 200

// class is what an attempt says about the upstream.
type class uint8

const (
	answered    class = iota // the upstream works and the key is good
	refused                  // 401, 403: the key is not accepted
	limited                  // 429
	overloaded               // 529
	serverError              // other 5xx
	noResponse               // network error or timeout
)

func classify(status int) class {
	switch {
	case status <= 0:
		return noResponse
	case status == 401 || status == 403:
		return refused
	case status == 429:
		return limited
	case status == 529:
		return overloaded
	case status >= 500:
		return serverError
	}
	return answered
}

// health is the state of an upstream, or of one model on it.
type health struct {
	state  State
	cause  Cause
	status int
	detail string
	since  time.Time
	// until ends a cooling; for a probe, it is when the probe counts as lost.
	until time.Time
	// strikes counts coolings since the last real success; the backoff
	// doubles with each.
	strikes int
	// guessed: the cooling's length is the relay's backoff, not a time the
	// upstream stated.
	guessed bool
	// errs are the recent failures that count towards a burst, oldest
	// first, none older than the last success.
	errs []time.Time

	limits   Limits
	limitsAt time.Time
	probeAt  time.Time
	probeOK  bool
}

// skip describes why h keeps traffic away, if it does.
func (h *health) skip(id, model string, now time.Time) (Skip, bool) {
	s := Skip{Upstream: id, Model: model, Cause: h.cause, Status: h.status, Detail: h.detail}
	switch h.state {
	case Disabled:
		s.Reason = SkipDisabled
	case Cooling:
		if now.Before(h.until) {
			s.Reason, s.Until, s.Guessed = SkipCooling, h.until, h.guessed
		} else {
			s.Reason = SkipProbing // the probe is due
		}
	case Probing:
		s.Reason = SkipProbing
	default:
		return Skip{}, false
	}
	return s, true
}

// move changes h's state and returns the event saying so.
func (m *member) move(h *health, model string, to State, c Cause, at time.Time, status int) Event {
	ev := Event{At: at, Upstream: m.up.ID, Model: model, From: h.state, To: to, Cause: c, Status: status}
	h.state, h.cause, h.status, h.since, h.until, h.detail, h.guessed = to, c, status, at, time.Time{}, "", false
	return ev
}

// maxModelStates bounds the models tracked per upstream: model names come
// from clients.
const maxModelStates = 64

// entry returns the health of model on m, the upstream's own for "". With
// create, a model without one gets one, unless the table is full of models
// that are not healthy (then nil: that model's trouble goes untracked).
func (m *member) entry(model string, create bool) *health {
	if model == "" {
		return &m.health
	}
	if h := m.models[model]; h != nil || !create {
		return h
	}
	if m.models == nil {
		m.models = map[string]*health{}
	}
	if len(m.models) >= maxModelStates && !m.evictHealthyModel() {
		return nil
	}
	h := &health{}
	m.models[model] = h
	return h
}

func (m *member) evictHealthyModel() bool {
	victim, oldest := "", time.Time{}
	for name, h := range m.models {
		if h.state == Healthy && (victim == "" || h.limitsAt.Before(oldest)) {
			victim, oldest = name, h.limitsAt
		}
	}
	if victim == "" {
		return false
	}
	delete(m.models, victim)
	return true
}

// succeeded applies a real (not a probe's) success to h.
func (m *member) succeeded(h *health, model string, at time.Time) (Event, bool) {
	h.errs = h.errs[:0]
	switch h.state {
	case Healthy:
		h.strikes = 0
	case Probing:
		h.strikes = 0
		return m.move(h, model, Healthy, CauseSuccess, at, 0), true
	}
	return Event{}, false
}

// failed applies a failure to h. With burst it cools only as the
// BurstErrors-th failure in a row within BurstWindow.
func (p *Pool) failed(m *member, h *health, model string, c Cause, o *Observation, at time.Time, burst bool) (Event, bool) {
	switch h.state {
	case Disabled:
		return Event{}, false
	case Cooling:
		if end := p.stated(o, at); end.After(h.until) {
			h.until = end
		}
		return Event{}, false
	}
	if burst {
		if len(h.errs) == p.cfg.BurstErrors {
			h.errs = append(h.errs[:0], h.errs[1:]...)
		}
		h.errs = append(h.errs, at)
		if len(h.errs) < p.cfg.BurstErrors || at.Sub(h.errs[0]) > p.cfg.BurstWindow {
			return Event{}, false
		}
	}
	return p.cool(m, h, model, c, o, at), true
}

// probed applies a probe's answer. One that comes when h is not probing
// any more (a real request decided first) is stale and changes nothing.
func (p *Pool) probed(m *member, o *Observation, c class, at time.Time) (Event, bool) {
	h := m.entry(o.Model, false)
	if h == nil || h.state != Probing {
		return Event{}, false
	}
	h.probeAt, h.probeOK = at, c == answered
	if c == answered {
		h.errs = h.errs[:0]
		return m.move(h, o.Model, Healthy, CauseProbeOK, at, o.Status), true
	}
	return p.cool(m, h, o.Model, CauseProbeFailed, o, at), true
}

func (p *Pool) cool(m *member, h *health, model string, c Cause, o *Observation, at time.Time) Event {
	h.strikes++
	until := p.stated(o, at)
	guessed := until.IsZero()
	if guessed {
		until = at.Add(p.backoff(h.strikes))
	}
	h.errs = h.errs[:0]
	ev := m.move(h, model, Cooling, c, at, o.Status)
	h.until, ev.Until, h.guessed = until, until, guessed
	return ev
}

func (m *member) disable(o *Observation, at time.Time) (Event, bool) {
	h := &m.health
	if h.state == Disabled {
		return Event{}, false
	}
	ev := m.move(h, "", Disabled, CauseAuth, at, o.Status)
	reason := truncate(o.Message, maxDetail)
	h.detail, ev.Detail = reason, reason
	return ev, true
}

// stated is when the upstream said to come back, at most MaxCooldown from
// at; zero when it did not say.
func (p *Pool) stated(o *Observation, at time.Time) time.Time {
	t := o.RetryAt
	if t.IsZero() && o.Status == 429 {
		t = o.Limits.exhaustedReset()
	}
	if t.IsZero() {
		return t
	}
	if t.Before(at) {
		return at
	}
	if limit := at.Add(p.cfg.MaxCooldown); t.After(limit) {
		return limit
	}
	return t
}

// backoff is the cooling for the strikes-th cooling when the upstream
// stated no time: DefaultCooldown, doubling, capped at MaxCooldown.
func (p *Pool) backoff(strikes int) time.Duration {
	d := p.cfg.DefaultCooldown
	for i := 1; i < strikes && d < p.cfg.MaxCooldown; i++ {
		d *= 2
	}
	return min(d, p.cfg.MaxCooldown)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
