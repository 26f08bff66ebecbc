package upstreams

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/pool"
	"github.com/relaystation/relay/ports"
)

// CacheHitWindow is the span of usage a view's cache hit rate is measured
// over, ending now.
const CacheHitWindow = 24 * time.Hour

// View is one upstream as the admin views show it: the stored record (its
// sealed key removed) and its live state on this replica.
type View struct {
	// Record is the stored upstream; SealedKey is always empty here.
	Record ports.UpstreamRecord
	// Health is the upstream's own state: Disabled also while the
	// operator (or the relay, after a 401/403) turned it off, or while its
	// key does not open on this replica.
	Health Health
	// InFlight counts its requests in flight from this replica.
	InFlight int
	// RecentErrors counts its failed attempts from this replica within
	// pool.RecentWindow (5 minutes); nil when it is not in the pool.
	RecentErrors *int
	// Headroom is its freshest rate-limit reading, of any model; nil when
	// none was taken.
	Headroom *Headroom
	// CacheHitRate is cache reads over every input-side token in its usage
	// of the last CacheHitWindow; nil without such usage (or a usage store).
	CacheHitRate *float64
	// Models are the models with a state or a reading of their own on it,
	// by name.
	Models []ModelHealth
	// Loaded is whether this replica's pool has it (an upstream created
	// through another replica is loaded at the next refresh).
	Loaded bool
}

// Health is a state with why and since when.
type Health struct {
	State pool.State
	// Reason says why, in words ("" for a healthy upstream that never
	// changed state).
	Reason string
	Cause  pool.Cause
	Status int
	// Since is when the state began; zero when not known (never changed, or
	// turned off in the store).
	Since time.Time
	// Until ends a cooling, or is when a probe counts as lost.
	Until     time.Time
	LastProbe *Probe
}

// Probe is the last probe's outcome.
type Probe struct {
	At time.Time
	OK bool
	// Model is the model probed; "" for the upstream itself.
	Model string
}

// Headroom is one rate-limit reading.
type Headroom struct {
	Limits pool.Limits
	ReadAt time.Time
	// Model is the model whose answer carried it; "" for a request that
	// named none.
	Model string
}

// ModelHealth is the state of one model on an upstream.
type ModelHealth struct {
	Model    string
	Health   Health
	Headroom *Headroom
}

// views joins records with the pool's live state and the cache hit rates.
func (r *Registry) views(ctx context.Context, recs []ports.UpstreamRecord) []View {
	live := map[string]pool.Status{}
	for _, st := range r.pool.Status() {
		live[st.Upstream.ID] = st
	}
	r.mu.Lock()
	sealFailed := make(map[string]string, len(r.sealFailed))
	for id, why := range r.sealFailed {
		sealFailed[id] = why
	}
	r.mu.Unlock()
	rates := r.cacheHitRates(ctx)

	out := make([]View, 0, len(recs))
	for _, u := range recs {
		u.SealedKey = ""
		u.Models = slices.Clone(u.Models)
		v := View{Record: u}
		st, loaded := live[u.ID]
		v.Loaded = loaded
		if loaded {
			v.InFlight = st.InFlight
			n := st.RecentErrors
			v.RecentErrors = &n
			v.Health = health(st.Health, "")
			v.Headroom = headroom(st.Health, "")
			names := make([]string, 0, len(st.Models))
			for name := range st.Models {
				names = append(names, name)
			}
			slices.Sort(names)
			for _, name := range names {
				h := st.Models[name]
				mh := ModelHealth{Model: name, Health: health(h, name), Headroom: headroom(h, name)}
				v.Models = append(v.Models, mh)
				if mh.Headroom != nil && (v.Headroom == nil || mh.Headroom.ReadAt.After(v.Headroom.ReadAt)) {
					v.Headroom = mh.Headroom
				}
				if p := mh.Health.LastProbe; p != nil && (v.Health.LastProbe == nil || p.At.After(v.Health.LastProbe.At)) {
					v.Health.LastProbe = p
				}
			}
		}
		switch why, failed := sealFailed[u.ID]; {
		case !u.Enabled:
			reason := u.DisabledReason
			if reason == "" {
				reason = "disabled"
			}
			h := Health{State: pool.Disabled, Reason: reason, LastProbe: v.Health.LastProbe}
			if v.Health.State == pool.Disabled {
				// The relay disabled it here (a 401/403) before storing
				// it: this replica knows since when.
				h.Cause, h.Status, h.Since = v.Health.Cause, v.Health.Status, v.Health.Since
			}
			v.Health = h
		case failed:
			v.Health = Health{State: pool.Disabled, Reason: why, LastProbe: v.Health.LastProbe}
		}
		if rate, ok := rates[u.ID]; ok {
			v.CacheHitRate = &rate
		}
		out = append(out, v)
	}
	return out
}

func health(h pool.Health, model string) Health {
	out := Health{State: h.State, Cause: h.Cause, Status: h.Status, Since: h.Since, Until: h.Until, Reason: reason(h)}
	if !h.LastProbe.IsZero() {
		out.LastProbe = &Probe{At: h.LastProbe, OK: h.LastProbeOK, Model: model}
	}
	return out
}

// reason words a state's cause: "rate_limited 429", "auth 401: invalid
// x-api-key".
func reason(h pool.Health) string {
	s := string(h.Cause)
	if h.Status != 0 {
		s += " " + strconv.Itoa(h.Status)
	}
	if h.Detail != "" {
		s += ": " + h.Detail
	}
	return s
}

func headroom(h pool.Health, model string) *Headroom {
	l := h.Limits
	if l.Requests.Limit <= 0 && l.InputTokens.Limit <= 0 && l.OutputTokens.Limit <= 0 {
		return nil
	}
	return &Headroom{Limits: l, ReadAt: h.LimitsAt, Model: model}
}

// cacheHitRates is cache reads over every input-side token (uncached
// input, cache writes, cache reads) per upstream id over the last
// CacheHitWindow; upstreams without input-side tokens are absent. A usage
// store that fails leaves the rates out, logged: the rest of the view
// stands.
func (r *Registry) cacheHitRates(ctx context.Context) map[string]float64 {
	if r.usage == nil {
		return nil
	}
	now := r.clock.Now()
	rows, err := r.usage.UsageTotals(ctx, domain.UsageQuery{From: now.Add(-CacheHitWindow), To: now, GroupBy: domain.GroupUpstream})
	if err != nil {
		r.log.Warn("cache hit rates of the upstreams", "error", err.Error())
		return nil
	}
	out := make(map[string]float64, len(rows))
	for _, t := range rows {
		in := t.Usage.InputTokens + t.Usage.CacheCreationInputTokens + t.Usage.CacheReadInputTokens
		if t.Group == "" || in <= 0 {
			continue
		}
		out[t.Group] = float64(t.Usage.CacheReadInputTokens) / float64(in)
	}
	return out
}
