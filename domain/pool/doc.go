// Package pool decides which upstream (Anthropic API key) serves each
// request: it keeps every upstream's health from what the transport
// observes, and picks by stickiness, priority, weight and load, saying why
// each other upstream was passed over. It does no I/O: the transport
// reports outcomes (Observe), sends the probes it is asked for (Probes),
// and keeps the session pins in a ports.SessionPins; the pool only decides.
//
// # Health
//
// Each upstream has a state, and so does each model on it:
//
//	healthy ──fail──▶ cooling ──until passes, Probes hands out one probe──▶ probing
//	   ▲                 ▲                                                  │
//	   │                 └───────────── probe fails, or is lost ────────────┤
//	   └──────────────────────────── probe succeeds ────────────────────────┘
//	any ──401/403──▶ disabled ──Enable (an operator)──▶ healthy
//
// What cools what (Observe):
//   - 429: the model on that upstream, or the upstream for a request that
//     names no model. Anthropic's request and token limits are per model
//     class, and the anthropic-ratelimit-* headers describe the class of the
//     request's model, so a Sonnet 429 says nothing about Haiku on the same
//     key. Cooling the exact model id rather than its class costs at most one
//     extra 429 per sibling id, which fails over before any byte is sent.
//   - 529: the model on that upstream, at once.
//   - Other 5xx: the model on that upstream, after a burst (Config.BurstErrors
//     within Config.BurstWindow, no success in between).
//   - No response (a network error or a timeout): the whole upstream, after a
//     burst: the host or the path to it is the problem, not a model.
//   - 401 or 403: the upstream is disabled with the status and the
//     upstream's message. Nothing but Enable brings it back: its key is
//     revoked or lacks permission, and no probe can tell when that is fixed.
//   - Anything else answered (2xx, 3xx, the other 4xx) is a success: the
//     upstream is up and the key works.
//
// Cooling lasts until the time the upstream stated: retry-after, or for a
// 429 without it the reset of the rate limit that ran out. A default
// (Config.DefaultCooldown) applies only when neither is present, doubling
// with each cooling since the last real success (a probe's success does not
// count: a model that fails again right after a probe backs off further).
// Every cooling is capped by Config.MaxCooldown, so a bogus reset time
// cannot park an upstream for days; probes are cheap.
//
// A failure while cooling does not restart the cooling; a later stated
// time extends it. A success while cooling changes nothing: the request was
// sent before, or despite (object affinity), the cooling.
//
// When cooling ends, Probes hands out exactly one probe for that upstream
// or model (the transport sends count_tokens for a model, GET /v1/models
// for an upstream); it is probing, taking no new traffic, until the probe's
// outcome is observed. A probe unanswered for Config.ProbeTimeout counts as
// failed, so a lost probe never strands an upstream. A model's probe waits
// while its upstream as a whole is not healthy.
//
// Every change of state returns an Event with its cause, for logs and
// metrics. Health is per replica: each learns from its own traffic. A
// disable should also be persisted (enabled = false, with its reason), so
// that other replicas and restarts stop using the key too.
//
// # Headroom
//
// Observations carry the anthropic-ratelimit-{requests,input-tokens,
// output-tokens}-{limit,remaining,reset} headers, kept per model like 429s.
// An upstream whose remaining share of any limit is below Config.LowHeadroom
// is "low"; one with nothing remaining is "exhausted". A reading counts until
// its reset time (or for a minute without one): an upstream that gets no new
// sessions still recovers.
//
// # Selection (Pick)
//
//  1. Object affinity: a request naming a batch or file goes to the upstream
//     that created it, since no other can serve it, even while that upstream
//     is cooling: the upstream's own answer is more truthful than a refusal.
//     Only a disabled upstream, one already tried or one at its
//     max_concurrency is refused.
//  2. Sticky: a pinned session stays on its upstream while that upstream may
//     take it (enabled, in the key's group, serving the model, not tried,
//     healthy for the model, below max_concurrency), whatever its tier, and
//     even when low on headroom: its prompt cache is worth more. It moves
//     only when exhausted and another upstream has headroom.
//  3. Otherwise: among the upstreams that may take the request, prefer those
//     not low on headroom; among those, the best (lowest) priority tier;
//     within the tier, the least loaded (in-flight requests per unit of
//     weight), ties broken by a draw weighted by weight.
//  4. Last resort: when none may take it because every upstream that could
//     serve it is cooling on a length the relay guessed (a 529 or 5xx burst
//     without retry-after), the one whose cooling ends first takes it
//     (WhyLastResort), rather than the relay refusing on its own guess; a
//     relay with one upstream then passes a transient overload straight
//     through. A time the upstream stated, a probe in flight or a disable
//     keeps the refusal.
//
// The caller pins the session to the choice (Choice.Pin), which renews the
// pin on every use; a failover is a Pick with the upstreams already tried
// excluded, and its choice re-pins the session. Each upstream passed over
// comes back as a Skip with its reason.
package pool
