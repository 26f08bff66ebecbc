package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaystation/relay/domain/pool"
)

// UpstreamStateOff is relay_upstream_state's state of an upstream whose
// enabled switch is off.
const UpstreamStateOff = "off"

// The upstream pool's label sets, closed: the pool's own vocabulary, plus
// "off". Anything else counts as "other".
var (
	upstreamStates = []string{pool.Healthy.String(), pool.Cooling.String(), pool.Probing.String(), pool.Disabled.String(), UpstreamStateOff}
	pickWhys       = []string{string(pool.WhyAffinity), string(pool.WhyPinned), string(pool.WhyBalanced), string(pool.WhyMoved), string(pool.WhyLastResort)}
	skipReasons    = []string{string(pool.SkipUnknown), string(pool.SkipOff), string(pool.SkipGroup), string(pool.SkipModel),
		string(pool.SkipTried), string(pool.SkipDisabled), string(pool.SkipCooling), string(pool.SkipProbing),
		string(pool.SkipBusy), string(pool.SkipLowHeadroom), string(pool.SkipLowerTier)}
	stateCauses = []string{string(pool.CauseRateLimited), string(pool.CauseOverloaded), string(pool.CauseServerErrors),
		string(pool.CauseNetworkErrors), string(pool.CauseAuth), string(pool.CauseCoolingEnded), string(pool.CauseProbeOK),
		string(pool.CauseProbeFailed), string(pool.CauseProbeLost), string(pool.CauseSuccess), string(pool.CauseOperator)}
	// changeScopes: the upstream's own state changed, or a model's on it.
	changeScopes = []string{"upstream", "model"}
)

// UpstreamState is one upstream's state for SetUpstreamStates.
type UpstreamState struct {
	Upstream string // its name, the label
	// State is one of the pool's states, or UpstreamStateOff.
	State string
	// ModelsUnhealthy counts the models cooling or probing on it.
	ModelsUnhealthy int
}

// upstreamPool holds the pool's collectors. Picks and skips are counted on
// the hot path through upstreamRow; the rest changes rarely and resolves
// its children as it goes.
type upstreamPool struct {
	state     *prometheus.GaugeVec
	unhealthy *prometheus.GaugeVec
	changes   *prometheus.CounterVec
	disabled  *prometheus.CounterVec

	mu sync.Mutex
	// shown are the upstream labels relay_upstream_state exports.
	shown map[string]bool
}

func (m *Metrics) newUpstreamPool() {
	m.pool = &upstreamPool{
		state: m.gaugeVec("relay_upstream_state",
			"1 for each upstream's current state (healthy, cooling, probing, disabled, off), 0 for the others; health is per replica.",
			"upstream", "state"),
		unhealthy: m.gaugeVec("relay_upstream_models_unhealthy",
			"Models cooling or probing on each upstream (the upstream itself may be healthy).", "upstream"),
		changes: m.counterVec("relay_upstream_state_changes_total",
			"Changes of state of an upstream, or of a model on it (scope), by the state entered and its cause.",
			"upstream", "scope", "to", "cause"),
		disabled: m.counterVec("relay_upstream_disabled_total",
			"Upstreams disabled because they refused their API key (401 or 403).", "upstream"),
		shown: map[string]bool{},
	}
}

// UpstreamPicked counts a pick of upstream for why (a pool.Why).
func (m *Metrics) UpstreamPicked(upstream, why string) {
	if m == nil {
		return
	}
	(*m.upstreamRows.get(m.upstreams.canon(upstream)).picks.get(closedIndex(pickWhys, why))).Inc()
}

// UpstreamSkipped counts upstream passed over by a pick, for reason (a
// pool.SkipReason).
func (m *Metrics) UpstreamSkipped(upstream, reason string) {
	if m == nil {
		return
	}
	(*m.upstreamRows.get(m.upstreams.canon(upstream)).skips.get(closedIndex(skipReasons, reason))).Inc()
}

// UpstreamStateChanged counts one change of state: of the upstream itself,
// or (model) of a model on it, into state to (a pool.State's name) for
// cause (a pool.Cause). Entering disabled also counts in
// relay_upstream_disabled_total.
func (m *Metrics) UpstreamStateChanged(upstream string, model bool, to, cause string) {
	if m == nil {
		return
	}
	up := m.upstreams.canon(upstream)
	scope := 0
	if model {
		scope = 1
	}
	m.pool.changes.WithLabelValues(up, changeScopes[scope], closedAt(upstreamStates, closedIndex(upstreamStates, to)),
		closedAt(stateCauses, closedIndex(stateCauses, cause))).Inc()
	if !model && to == pool.Disabled.String() {
		m.pool.disabled.WithLabelValues(up).Inc()
	}
}

// SetUpstreamStates publishes every upstream's state; upstreams missing
// from states are no longer exported. Each listed upstream also gets its
// relay_upstream_disabled_total series (at 0 until a disable), so that
// increase() sees the first disable.
func (m *Metrics) SetUpstreamStates(states []UpstreamState) {
	if m == nil {
		return
	}
	p := m.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	now := make(map[string]bool, len(states))
	for _, s := range states {
		up := m.upstreams.canon(s.Upstream)
		if now[up] {
			continue // several upstreams beyond the label cap share "other"
		}
		now[up] = true
		state := closedAt(upstreamStates, closedIndex(upstreamStates, s.State))
		for _, st := range upstreamStates {
			v := 0.0
			if st == state {
				v = 1
			}
			p.state.WithLabelValues(up, st).Set(v)
		}
		p.unhealthy.WithLabelValues(up).Set(float64(s.ModelsUnhealthy))
		p.disabled.WithLabelValues(up)
	}
	for up := range p.shown {
		if !now[up] {
			for _, st := range upstreamStates {
				p.state.DeleteLabelValues(up, st)
			}
			p.unhealthy.DeleteLabelValues(up)
		}
	}
	p.shown = now
}
