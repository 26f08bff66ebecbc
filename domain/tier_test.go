package domain_test

import (
	"errors"
	"testing"
	"time"

	"github.com/relaystation/relay/domain"
)

func TestTierValidateBounds(t *testing.T) {
	conc := func(n int) *int { return &n }
	tokens := func(n int64) *int64 { return &n }
	good := []domain.Tier{
		{Name: "a", Requests: 1, Period: time.Second},
		{Name: "max", Requests: domain.MaxTierRequests, Period: domain.MaxTierPeriod, Tokens: tokens(1 << 62), MaxConcurrency: conc(domain.MaxTierConcurrency)},
	}
	for _, tr := range good {
		if err := tr.Validate(); err != nil {
			t.Errorf("%+v: %v", tr, err)
		}
		// AuxLimit stays positive and within 32-bit column semantics.
		if aux := tr.AuxLimit().Count; aux <= 0 || aux > 1<<31-1 {
			t.Errorf("%s: AuxLimit %d", tr.Name, aux)
		}
	}
	bad := []domain.Tier{
		{Name: "", Requests: 1, Period: time.Second},
		{Name: "x", Requests: 0, Period: time.Second},
		{Name: "x", Requests: 4294967297, Period: time.Minute},
		{Name: "x", Requests: domain.MaxTierRequests + 1, Period: time.Minute},
		{Name: "x", Requests: 1, Period: 1500 * time.Millisecond},
		{Name: "x", Requests: 1, Period: domain.MaxTierPeriod + time.Second},
		{Name: "x", Requests: 1, Period: time.Second, Tokens: tokens(0)},
		{Name: "x", Requests: 1, Period: time.Second, MaxConcurrency: conc(0)},
		{Name: "x", Requests: 1, Period: time.Second, MaxConcurrency: conc(domain.MaxTierConcurrency + 1)},
		{Name: "x", Requests: 1, Period: time.Second, MaxConcurrency: conc(4294967297)},
	}
	for _, tr := range bad {
		if err := tr.Validate(); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("%+v: %v, want invalid", tr, err)
		}
	}
}
