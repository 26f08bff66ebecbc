package budget

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// The span cache answers what computing the span answers, whatever order
// times arrive in (forward, backward, jumping between zones and windows).
func TestSpanCacheAgreesWithComputation(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	zones := []string{"", "Europe/Paris", "America/Santiago", "Australia/Lord_Howe", "Asia/Kathmandu"}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	for i := range 20000 {
		b := Budget{Window: []Window{Day, Week, Month}[rng.IntN(3)], Limit: 1, TimeZone: zones[rng.IntN(len(zones))]}
		at := time.Unix(base+rng.Int64N(2*366*86400), int64(rng.IntN(1e9)))
		if i%3 == 0 {
			at = at.Truncate(time.Hour) // on and around boundaries
		}
		ws, we := b.span(at)
		gs, ge, cover := b.SpanCover(at)
		if !gs.Equal(ws) || !ge.Equal(we) {
			t.Fatalf("%v at %v: cached span [%v, %v), computed [%v, %v)", b, at, gs, ge, ws, we)
		}
		if want := Cover(ws, we); !slices.Equal(cover, want) {
			t.Fatalf("%v at %v: cached cover differs", b, at)
		}
		if s, e := b.Span(at); !s.Equal(ws) || !e.Equal(we) {
			t.Fatalf("%v at %v: Span disagrees", b, at)
		}
	}
}
