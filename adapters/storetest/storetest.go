// Package storetest is the contract suite for ports.Store. Every storage
// adapter runs it against a real, migrated database:
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) ports.Store { return mustOpen(t) })
//	}
package storetest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

// Run runs every contract test, in parallel: newStore must return an
// empty, migrated store that belongs to the calling (sub)test alone.
func Run(t *testing.T, newStore func(t *testing.T) ports.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s ports.Store)
	}{
		{"Ping", testPing},
		{"KeyRoundTrip", testKeyRoundTrip},
		{"KeyCreateConflicts", testKeyCreateConflicts},
		{"KeyUnknownTier", testKeyUnknownTier},
		{"KeyNotFound", testKeyNotFound},
		{"KeyUpdate", testKeyUpdate},
		{"KeyUpdateStale", testKeyUpdateStale},
		{"KeyUpdateConcurrent", testKeyUpdateConcurrent},
		{"KeySoftDelete", testKeySoftDelete},
		{"KeyListFilters", testKeyListFilters},
		{"KeyListPagination", testKeyListPagination},
		{"TierCRUD", testTierCRUD},
		{"TierDeleteConflict", testTierDeleteConflict},
		{"TierSeedOnlyWhenEmpty", testTierSeed},
		{"UsageRoundTrip", testUsageRoundTrip},
		{"UsageDetailsRoundTrip", testUsageDetailsRoundTrip},
		{"UsageIdempotent", testUsageIdempotent},
		{"UsageUnknownKey", testUsageUnknownKey},
		{"UsageHostileText", testUsageHostileText},
		{"UsageTotalsGrouping", testUsageTotalsGrouping},
		{"UsageTotalsBounds", testUsageTotalsBounds},
		{"UsageLogs", testUsageLogs},
		{"UsageLogsPagination", testUsageLogsPagination},
		{"UsageConcurrentInserts", testUsageConcurrent},
		{"UsageCostRoundTrip", testUsageCostRoundTrip},
		{"UsageTotalsCost", testUsageTotalsCost},
		{"UsageLogsFilters", testUsageLogsFilters},
		{"UsageLogsFilterPagination", testUsageLogsFilterPagination},
		{"UsageLogsTimeBounds", testUsageLogsTimeBounds},
		{"UsageAttemptsRoundTrip", testUsageAttemptsRoundTrip},
		{"UsageSeries", testUsageSeries},
		{"UsageTotalsRandom", testUsageTotalsRandom},
		{"SpendHistory", testSpendHistory},
		{"SpendHistoryEmpty", testSpendHistoryEmpty},
		{"PriceTables", testPriceTables},
		{"PriceTablesInvalid", testPriceTablesInvalid},
		{"RepriceApplies", testRepriceApplies},
		{"RepriceSkipsStale", testRepriceSkipsStale},
		{"RepriceInvalid", testRepriceInvalid},
		{"RepriceConcurrent", testRepriceConcurrent},
		{"ObjectRoundTrip", testObjectRoundTrip},
		{"ObjectPutIdempotent", testObjectPutIdempotent},
		{"ObjectPutConcurrent", testObjectPutConcurrent},
		{"ObjectNotFound", testObjectNotFound},
		{"ObjectInvalid", testObjectInvalid},
		{"ObjectOwnedAmong", testObjectOwnedAmong},
		{"ObjectUnsettledBatches", testObjectUnsettledBatches},
		{"ObjectBatchSettlement", testObjectBatchSettlement},
		{"UpstreamRoundTrip", testUpstreamRoundTrip},
		{"UpstreamConflicts", testUpstreamConflicts},
		{"UpstreamInvalid", testUpstreamInvalid},
		{"UpstreamUpdate", testUpstreamUpdate},
		{"UpstreamUpdateConcurrent", testUpstreamUpdateConcurrent},
		{"UpstreamDelete", testUpstreamDelete},
		{"UpstreamSeedOnlyWhenEmpty", testUpstreamSeed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			tc.fn(t, s)
		})
	}
}

// base is a fixed UTC midnight, so day grouping is deterministic.
var base = time.Date(2025, 3, 10, 0, 0, 0, 0, time.UTC)

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func wantKind(t *testing.T, err error, kind domain.Kind, what string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: got nil error, want kind %s", what, kind)
	}
	if got := domain.KindOf(err); got != kind {
		t.Fatalf("%s: got kind %s (%v), want %s", what, got, err, kind)
	}
	if de := domain.AsError(err); de != nil && strings.Contains(strings.ToUpper(de.Message), "SELECT ") {
		t.Fatalf("%s: message leaks SQL: %q", what, de.Message)
	}
}

func mustTier(t *testing.T, s ports.Store, name string) domain.Tier {
	t.Helper()
	tier := domain.Tier{Name: name, Requests: 10, Period: time.Minute, CreatedAt: base, UpdatedAt: base}
	must(t, s.UpsertTier(ctxT(t), tier), "upsert tier "+name)
	return tier
}

// newKey returns a fully populated key on tier "basic", created at `at`.
func newKey(name string, at time.Time) domain.APIKey {
	id := uuid.New()
	limit := int64(1_000_000)
	exp := at.Add(30 * 24 * time.Hour)
	return domain.APIKey{
		ID:             id,
		Name:           name,
		Description:    "description of " + name,
		KeyHash:        "hash-" + id.String(),
		KeyPrefix:      "sk-proxy-" + id.String()[:4] + "…",
		TokenLimit:     &limit,
		RateLimitTier:  "basic",
		IsActive:       true,
		ExpiresAt:      &exp,
		AllowedIPs:     []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")},
		AllowedDomains: []string{"example.com", "claude.ai"},
		AllowedModels:  []string{"claude-sonnet-4-5", "claude-haiku-*"},
		Budgets: []domain.KeyBudget{
			{Window: "5h", Limit: 2_500_000_000},
			{Window: "day", Limit: 10_000_000_001, TimeZone: "Europe/Berlin"},
			// Past 2⁵³ nanodollars: a float would round it.
			{Window: "total", Limit: 1<<53 + 1},
		},
		UpstreamGroup: "team-a",
		CreatedAt:     at,
		UpdatedAt:     at,
	}
}

func mustKey(t *testing.T, s ports.Store, k domain.APIKey) domain.APIKey {
	t.Helper()
	must(t, s.CreateKey(ctxT(t), k), "create key "+k.Name)
	keyNames.Store(k.ID, k.Name)
	return k
}

// keyNames holds the name of every key mustKey created (ids are unique
// across tests), which totals grouped by key carry.
var keyNames sync.Map // uuid.UUID -> string

// keyName is the name mustKey created the key with, "" if it did not.
func keyName(id string) string {
	u, err := uuid.Parse(id)
	if err != nil {
		return ""
	}
	n, _ := keyNames.Load(u)
	s, _ := n.(string)
	return s
}

// normKey is k as a store returns it: UTC, microsecond precision.
func normKey(k domain.APIKey) domain.APIKey {
	k.CreatedAt = normTime(k.CreatedAt)
	k.UpdatedAt = normTime(k.UpdatedAt)
	k.ExpiresAt = normTimePtr(k.ExpiresAt)
	k.LastUsedAt = normTimePtr(k.LastUsedAt)
	k.DeletedAt = normTimePtr(k.DeletedAt)
	if len(k.AllowedIPs) == 0 {
		k.AllowedIPs = nil
	}
	if len(k.AllowedDomains) == 0 {
		k.AllowedDomains = nil
	}
	if len(k.AllowedModels) == 0 {
		k.AllowedModels = nil
	}
	if len(k.Budgets) == 0 {
		k.Budgets = nil
	}
	return k
}

func normTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func normTimePtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	n := normTime(*t)
	return &n
}

func equalKey(t *testing.T, got, want domain.APIKey, what string) {
	t.Helper()
	want = normKey(want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %s\nwant %s", what, fmtKey(got), fmtKey(want))
	}
}

func fmtKey(k domain.APIKey) string {
	ptr := func(p *time.Time) string {
		if p == nil {
			return "nil"
		}
		return p.Format(time.RFC3339Nano)
	}
	lim := "nil"
	if k.TokenLimit != nil {
		lim = fmt.Sprint(*k.TokenLimit)
	}
	return fmt.Sprintf("{id=%s name=%q desc=%q hash=%q prefix=%q limit=%s used=%d tier=%q active=%v exp=%s ips=%v domains=%v models=%q budgets=%+v group=%q created=%s updated=%s last=%s deleted=%s}",
		k.ID, k.Name, k.Description, k.KeyHash, k.KeyPrefix, lim, k.TokensUsed, k.RateLimitTier, k.IsActive,
		ptr(k.ExpiresAt), k.AllowedIPs, k.AllowedDomains, k.AllowedModels, k.Budgets, k.UpstreamGroup, k.CreatedAt.Format(time.RFC3339Nano),
		k.UpdatedAt.Format(time.RFC3339Nano), ptr(k.LastUsedAt), ptr(k.DeletedAt))
}

func ids(keys []domain.APIKey) []uuid.UUID {
	out := make([]uuid.UUID, len(keys))
	for i, k := range keys {
		out[i] = k.ID
	}
	return out
}

func isErr(err, target error) bool { return errors.Is(err, target) }
