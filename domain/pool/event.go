package pool

import (
	"log/slog"
	"strconv"
	"time"
)

// State is where an upstream, or one model on it, stands.
type State uint8

const (
	Healthy  State = iota // takes traffic
	Cooling               // takes none until its cooling ends
	Probing               // cooling ended; one probe decides
	Disabled              // the upstream refused its key (401/403); only an operator enables it
)

var stateNames = [...]string{Healthy: "healthy", Cooling: "cooling", Probing: "probing", Disabled: "disabled"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// Cause says why a state changed, in one bounded word: the label metrics
// count transitions by.
type Cause string

const (
	CauseRateLimited   Cause = "rate_limited"   // 429
	CauseOverloaded    Cause = "overloaded"     // 529
	CauseServerErrors  Cause = "server_errors"  // a burst of other 5xx
	CauseNetworkErrors Cause = "network_errors" // a burst of attempts without a response
	CauseAuth          Cause = "auth"           // 401 or 403
	CauseCoolingEnded  Cause = "cooling_ended"  // a probe was handed out
	CauseProbeOK       Cause = "probe_ok"
	CauseProbeFailed   Cause = "probe_failed"
	CauseProbeLost     Cause = "probe_lost" // no answer within Config.ProbeTimeout
	CauseSuccess       Cause = "success"    // a real request succeeded while probing
	CauseOperator      Cause = "operator"   // Enable
)

// Event is one change of state, for a log line and a metric.
type Event struct {
	At       time.Time
	Upstream string
	// Model is the model whose state changed on Upstream; "" when the
	// upstream's own state changed.
	Model    string
	From, To State
	Cause    Cause
	// Status is the HTTP status that caused the change; 0 for none, or for
	// an attempt without a response.
	Status int
	// Until is when a cooling ends, or when a probe counts as lost.
	Until time.Time
	// Detail is the upstream's message, kept as a disable's reason.
	Detail string
}

func (e Event) String() string {
	s := "upstream " + e.Upstream
	if e.Model != "" {
		s += " model " + e.Model
	}
	s += ": " + e.From.String() + " -> " + e.To.String() + " (" + string(e.Cause)
	if e.Status != 0 {
		s += " " + strconv.Itoa(e.Status)
	}
	s += ")"
	if e.To == Cooling || e.To == Probing {
		s += " until " + stamp(e.Until)
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// LogValue lets an Event be logged as one structured attribute.
func (e Event) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("upstream", e.Upstream),
		slog.String("from", e.From.String()),
		slog.String("to", e.To.String()),
		slog.String("cause", string(e.Cause)),
	}
	if e.Model != "" {
		attrs = append(attrs, slog.String("model", e.Model))
	}
	if e.Status != 0 {
		attrs = append(attrs, slog.Int("status", e.Status))
	}
	if !e.Until.IsZero() {
		attrs = append(attrs, slog.Time("until", e.Until))
	}
	if e.Detail != "" {
		attrs = append(attrs, slog.String("detail", e.Detail))
	}
	return slog.GroupValue(attrs...)
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
