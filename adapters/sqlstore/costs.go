package sqlstore

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/budget"
	"github.com/relaystation/relay/ports"
)

// spendParams select a key's records from a time on; spendRow is one
// 5-minute bucket (BucketStart in Unix seconds), or with AllTime set the
// key's all-time spend.
type spendParams = struct {
	KeyID uuid.UUID
	Since Time
}

type spendRow = struct {
	AllTime     bool
	BucketStart int64
	Amount      int64
}

// storedCostParams select a record by id if it still carries the cost the
// repricer read; storedCostRow is what it is summed under in the rollup and
// its stored cost per class.
type storedCostParams = struct {
	RequestID       string
	OldTotal        int64
	OldPriceVersion string
}

type storedCostRow = struct {
	KeyID            uuid.UUID
	CreatedAt        Time
	Model            string
	Upstream         string
	CostTotal        int64
	CostInput        int64
	CostOutput       int64
	CostCacheWrite5m int64
	CostCacheWrite1h int64
	CostCacheRead    int64
	CostWebSearch    int64
	CostWebFetch     int64
	CostCacheSaved   int64
}

type setCostParams = struct {
	CostTotal        int64
	CostInput        int64
	CostOutput       int64
	CostCacheWrite5m int64
	CostCacheWrite1h int64
	CostCacheRead    int64
	CostWebSearch    int64
	CostWebFetch     int64
	CostCacheSaved   int64
	PriceVersion     string
	CostFallback5m   bool
	CostUnpriced     bool
	CostDetail       string
	RequestID        string
}

// dailyCostParams move one rollup row (key, UTC day "YYYY-MM-DD", model)
// by the given amounts.
type dailyCostParams = struct {
	CostTotal        int64
	CostInput        int64
	CostOutput       int64
	CostCacheWrite5m int64
	CostCacheWrite1h int64
	CostCacheRead    int64
	CostWebSearch    int64
	CostWebFetch     int64
	CostCacheSaved   int64
	KeyID            uuid.UUID
	Day              string
	Model            string
}

// dailyUpstreamCostParams move one upstream rollup row (UTC day, upstream,
// key) by the given amounts.
type dailyUpstreamCostParams = struct {
	CostTotal        int64
	CostInput        int64
	CostOutput       int64
	CostCacheWrite5m int64
	CostCacheWrite1h int64
	CostCacheRead    int64
	CostWebSearch    int64
	CostWebFetch     int64
	CostCacheSaved   int64
	Day              string
	Upstream         string
	KeyID            uuid.UUID
}

// globalCostParams move one global daily rollup row (UTC day, model,
// upstream) by the given amounts.
type globalCostParams = struct {
	CostTotal        int64
	CostInput        int64
	CostOutput       int64
	CostCacheWrite5m int64
	CostCacheWrite1h int64
	CostCacheRead    int64
	CostWebSearch    int64
	CostWebFetch     int64
	CostCacheSaved   int64
	Day              string
	Model            string
	Upstream         string
}

// monthlyCostParams move one monthly rollup row (the UTC month's first
// day, key) by the given amounts.
type monthlyCostParams = struct {
	CostTotal        int64
	CostInput        int64
	CostOutput       int64
	CostCacheWrite5m int64
	CostCacheWrite1h int64
	CostCacheRead    int64
	CostWebSearch    int64
	CostWebFetch     int64
	CostCacheSaved   int64
	Month            string
	KeyID            uuid.UUID
}

// hourlyCostParams move one hourly rollup row (the hour's start) by the
// given amounts.
type hourlyCostParams = struct {
	CostTotal        int64
	CostInput        int64
	CostOutput       int64
	CostCacheWrite5m int64
	CostCacheWrite1h int64
	CostCacheRead    int64
	CostWebSearch    int64
	CostWebFetch     int64
	CostCacheSaved   int64
	Hour             Time
}

// costSQL is an engine's sqlc queries on the cost columns of usage_records,
// usage_daily, usage_daily_upstream and the rollups of every key.
type costSQL[Spend ~spendParams, SpendRow ~spendRow, For ~storedCostParams, Stored ~storedCostRow, Set ~setCostParams, Daily ~dailyCostParams, DailyUp ~dailyUpstreamCostParams, Hourly ~hourlyCostParams, Global ~globalCostParams, Monthly ~monthlyCostParams] interface {
	SpendHistory(ctx context.Context, arg Spend) ([]SpendRow, error)
	UsageCostForUpdate(ctx context.Context, arg For) (Stored, error)
	SetUsageCost(ctx context.Context, arg Set) error
	AddUsageDailyCost(ctx context.Context, arg Daily) (int64, error)
	AddUsageDailyUpstreamCost(ctx context.Context, arg DailyUp) (int64, error)
	AddUsageHourlyCost(ctx context.Context, arg Hourly) (int64, error)
	AddUsageDailyGlobalCost(ctx context.Context, arg Global) (int64, error)
	AddUsageMonthlyKeyCost(ctx context.Context, arg Monthly) (int64, error)
}

// rollupKey names one usage_daily row.
type rollupKey struct {
	key        uuid.UUID
	day, model string
}

// upstreamRollupKey names one usage_daily_upstream row.
type upstreamRollupKey struct {
	key           uuid.UUID
	day, upstream string
}

// costDelta is a change of cost per class and of the total.
type costDelta struct {
	domain.CostBreakdown
	Total domain.Nanodollars
}

// globalRollupKey names one usage_daily_global row.
type globalRollupKey struct {
	day, model, upstream string
}

// monthlyRollupKey names one usage_monthly_key row (month "YYYY-MM-01").
type monthlyRollupKey struct {
	month string
	key   uuid.UUID
}

// storedCost is a record's stored cost, with the rollup rows it is summed
// in (hour is the start of its usage_hourly row).
type storedCost struct {
	rollup   rollupKey
	upstream upstreamRollupKey
	global   globalRollupKey
	monthly  monthlyRollupKey
	hour     time.Time
	cost     costDelta
}

// CostQueries are an engine's cost queries in domain terms.
type CostQueries struct {
	// spend returns the key's buckets since `since` and its total.
	spend      func(ctx context.Context, keyID uuid.UUID, since time.Time) ([]budget.Spend, domain.Nanodollars, error)
	storedCost func(ctx context.Context, requestID string, old domain.RecordCost) (storedCost, error)
	setCost    func(ctx context.Context, requestID string, c domain.RecordCost) error
	addDaily   func(ctx context.Context, k rollupKey, d costDelta) (int64, error)
	addDailyUp func(ctx context.Context, k upstreamRollupKey, d costDelta) (int64, error)
	addHourly  func(ctx context.Context, hour time.Time, d costDelta) (int64, error)
	addGlobal  func(ctx context.Context, k globalRollupKey, d costDelta) (int64, error)
	addMonthly func(ctx context.Context, k monthlyRollupKey, d costDelta) (int64, error)
}

// BindCosts binds an engine's sqlc queries on usage costs.
func BindCosts[Spend ~spendParams, SpendRow ~spendRow, For ~storedCostParams, Stored ~storedCostRow, Set ~setCostParams, Daily ~dailyCostParams, DailyUp ~dailyUpstreamCostParams, Hourly ~hourlyCostParams, Global ~globalCostParams, Monthly ~monthlyCostParams](
	q costSQL[Spend, SpendRow, For, Stored, Set, Daily, DailyUp, Hourly, Global, Monthly],
) CostQueries {
	return CostQueries{
		spend: func(ctx context.Context, keyID uuid.UUID, since time.Time) ([]budget.Spend, domain.Nanodollars, error) {
			rows, err := q.SpendHistory(ctx, Spend{KeyID: keyID, Since: Time(since)})
			if err != nil {
				return nil, 0, err
			}
			var (
				buckets []budget.Spend
				total   domain.Nanodollars
			)
			for _, row := range rows {
				r := spendRow(row)
				if r.AllTime {
					total = domain.Nanodollars(r.Amount)
					continue
				}
				buckets = append(buckets, budget.Spend{Start: time.Unix(r.BucketStart, 0).UTC(), Amount: domain.Nanodollars(r.Amount)})
			}
			return buckets, total, nil
		},
		storedCost: func(ctx context.Context, requestID string, old domain.RecordCost) (storedCost, error) {
			row, err := q.UsageCostForUpdate(ctx, For{RequestID: requestID, OldTotal: int64(old.Total), OldPriceVersion: old.PriceVersion})
			if err != nil {
				return storedCost{}, err
			}
			r := storedCostRow(row)
			at := time.Time(r.CreatedAt).UTC()
			day := at.Format(time.DateOnly)
			return storedCost{
				rollup:   rollupKey{key: r.KeyID, day: day, model: r.Model},
				upstream: upstreamRollupKey{key: r.KeyID, day: day, upstream: r.Upstream},
				global:   globalRollupKey{day: day, model: r.Model, upstream: r.Upstream},
				monthly:  monthlyRollupKey{month: at.Format("2006-01") + "-01", key: r.KeyID},
				hour:     at.Truncate(time.Hour),
				cost: costDelta{
					CostBreakdown: domain.CostBreakdown{
						Input: domain.Nanodollars(r.CostInput), Output: domain.Nanodollars(r.CostOutput),
						CacheWrite5m: domain.Nanodollars(r.CostCacheWrite5m), CacheWrite1h: domain.Nanodollars(r.CostCacheWrite1h),
						CacheRead: domain.Nanodollars(r.CostCacheRead), WebSearch: domain.Nanodollars(r.CostWebSearch),
						WebFetch: domain.Nanodollars(r.CostWebFetch), CacheSaved: domain.Nanodollars(r.CostCacheSaved),
					},
					Total: domain.Nanodollars(r.CostTotal),
				},
			}, nil
		},
		setCost: func(ctx context.Context, requestID string, c domain.RecordCost) error {
			return q.SetUsageCost(ctx, Set{
				CostTotal: int64(c.Total), CostInput: int64(c.Input), CostOutput: int64(c.Output),
				CostCacheWrite5m: int64(c.CacheWrite5m), CostCacheWrite1h: int64(c.CacheWrite1h),
				CostCacheRead: int64(c.CacheRead), CostWebSearch: int64(c.WebSearch), CostWebFetch: int64(c.WebFetch),
				CostCacheSaved: int64(c.CacheSaved), PriceVersion: c.PriceVersion, CostFallback5m: c.Fallback5m, CostUnpriced: c.Unpriced,
				CostDetail: EncodeCostDetail(c.Detail), RequestID: requestID,
			})
		},
		addDaily: func(ctx context.Context, k rollupKey, d costDelta) (int64, error) {
			return q.AddUsageDailyCost(ctx, Daily{
				CostTotal: int64(d.Total), CostInput: int64(d.Input), CostOutput: int64(d.Output),
				CostCacheWrite5m: int64(d.CacheWrite5m), CostCacheWrite1h: int64(d.CacheWrite1h),
				CostCacheRead: int64(d.CacheRead), CostWebSearch: int64(d.WebSearch), CostWebFetch: int64(d.WebFetch),
				CostCacheSaved: int64(d.CacheSaved), KeyID: k.key, Day: k.day, Model: k.model,
			})
		},
		addDailyUp: func(ctx context.Context, k upstreamRollupKey, d costDelta) (int64, error) {
			return q.AddUsageDailyUpstreamCost(ctx, DailyUp{
				CostTotal: int64(d.Total), CostInput: int64(d.Input), CostOutput: int64(d.Output),
				CostCacheWrite5m: int64(d.CacheWrite5m), CostCacheWrite1h: int64(d.CacheWrite1h),
				CostCacheRead: int64(d.CacheRead), CostWebSearch: int64(d.WebSearch), CostWebFetch: int64(d.WebFetch),
				CostCacheSaved: int64(d.CacheSaved), Day: k.day, Upstream: k.upstream, KeyID: k.key,
			})
		},
		addHourly: func(ctx context.Context, hour time.Time, d costDelta) (int64, error) {
			return q.AddUsageHourlyCost(ctx, Hourly{
				CostTotal: int64(d.Total), CostInput: int64(d.Input), CostOutput: int64(d.Output),
				CostCacheWrite5m: int64(d.CacheWrite5m), CostCacheWrite1h: int64(d.CacheWrite1h),
				CostCacheRead: int64(d.CacheRead), CostWebSearch: int64(d.WebSearch), CostWebFetch: int64(d.WebFetch),
				CostCacheSaved: int64(d.CacheSaved), Hour: Time(hour),
			})
		},
		addGlobal: func(ctx context.Context, k globalRollupKey, d costDelta) (int64, error) {
			return q.AddUsageDailyGlobalCost(ctx, Global{
				CostTotal: int64(d.Total), CostInput: int64(d.Input), CostOutput: int64(d.Output),
				CostCacheWrite5m: int64(d.CacheWrite5m), CostCacheWrite1h: int64(d.CacheWrite1h),
				CostCacheRead: int64(d.CacheRead), CostWebSearch: int64(d.WebSearch), CostWebFetch: int64(d.WebFetch),
				CostCacheSaved: int64(d.CacheSaved), Day: k.day, Model: k.model, Upstream: k.upstream,
			})
		},
		addMonthly: func(ctx context.Context, k monthlyRollupKey, d costDelta) (int64, error) {
			return q.AddUsageMonthlyKeyCost(ctx, Monthly{
				CostTotal: int64(d.Total), CostInput: int64(d.Input), CostOutput: int64(d.Output),
				CostCacheWrite5m: int64(d.CacheWrite5m), CostCacheWrite1h: int64(d.CacheWrite1h),
				CostCacheRead: int64(d.CacheRead), CostWebSearch: int64(d.WebSearch), CostWebFetch: int64(d.WebFetch),
				CostCacheSaved: int64(d.CacheSaved), Month: k.month, KeyID: k.key,
			})
		},
	}
}

// SpendHistory returns the key's spend per 5-minute bucket of its records'
// times from asOf − budget.HistorySpan on (records dated after asOf, from a
// replica whose clock runs ahead, included) and its all-time total, both
// from one snapshot: see ports.SpendStore. Buckets without spend are left
// out, the rest are in time order. The total is read from the daily
// rollup, which InsertUsage and UpdateUsageCosts keep equal to the sum of
// the records in the same transactions, so it costs a row per day and
// model rather than one per request.
func (s *Store) SpendHistory(ctx context.Context, keyID uuid.UUID, asOf time.Time) (budget.History, error) {
	if asOf.IsZero() {
		return budget.History{}, domain.Invalidf("spend history: as_of is required")
	}
	buckets, total, err := s.read.Costs.spend(ctx, keyID, ceilMicro(asOf.Add(-budget.HistorySpan)))
	if err != nil {
		return budget.History{}, fmt.Errorf("spend history of key %s: %w", keyID, err)
	}
	return budget.History{AsOf: asOf, Buckets: buckets, Total: total}, nil
}

// ceilMicro rounds t up to the stored precision, so that "at or after t"
// holds exactly for times stored to the microsecond.
func ceilMicro(t time.Time) time.Time {
	if c := t.Truncate(time.Microsecond); c.Before(t) {
		return c.Add(time.Microsecond)
	}
	return t
}

// UpdateUsageCosts writes the updates in one transaction; see
// ports.UsageRepricer. An update applies when its record is stored and still
// carries Old's total and price version; the record then takes New's cost
// (and what it saved), and its rollup rows (per key, day and model; per
// day, upstream and key; per hour; per day, model and upstream; per month
// and key) move by New minus the cost it had (which is Old, as the caller read it).
// Other updates are skipped, as are those whose record was never stored (an
// id that is not storable text); an update of a record that an earlier
// update in the same call changed sees that change. New must have a
// storable price version and Detail that is empty or JSON, else nothing is
// written and the error is ErrInvalid.
func (s *Store) UpdateUsageCosts(ctx context.Context, updates []ports.CostUpdate) (int, error) {
	todo := make([]ports.CostUpdate, 0, len(updates))
	for _, u := range updates {
		if !storable(u.New.PriceVersion) {
			return 0, domain.Invalidf("reprice %s: the price version must be UTF-8 text without NUL characters", Clean(u.RequestID))
		}
		if len(u.New.Detail) > 0 && (!utf8.Valid(u.New.Detail) || !json.Valid(u.New.Detail)) {
			return 0, domain.Invalidf("reprice %s: the cost detail must be JSON in UTF-8", Clean(u.RequestID))
		}
		if storable(u.RequestID) && storable(u.Old.PriceVersion) {
			todo = append(todo, u)
		}
	}
	if len(todo) == 0 {
		return 0, nil
	}
	// In request id order, so that two repricings lock records alike.
	slices.SortStableFunc(todo, func(a, b ports.CostUpdate) int { return strings.Compare(a.RequestID, b.RequestID) })
	ids := make([]string, 0, len(todo))
	for _, u := range todo {
		if len(ids) == 0 || ids[len(ids)-1] != u.RequestID {
			ids = append(ids, u.RequestID)
		}
	}

	var applied int
	err := s.engine.UsageTx(ctx, ids, func(q Queries) error {
		applied = 0
		deltas := map[rollupKey]costDelta{}
		upDeltas := map[upstreamRollupKey]costDelta{}
		hourDeltas := map[time.Time]costDelta{}
		globalDeltas := map[globalRollupKey]costDelta{}
		monthDeltas := map[monthlyRollupKey]costDelta{}
		for _, u := range todo {
			stored, err := q.Costs.storedCost(ctx, u.RequestID, u.Old)
			if s.is(err, ErrDBNotFound) {
				continue // repriced meanwhile, or never stored
			}
			if err != nil {
				return fmt.Errorf("read the cost of %s: %w", u.RequestID, err)
			}
			if err := q.Costs.setCost(ctx, u.RequestID, u.New); err != nil {
				return fmt.Errorf("write the cost of %s: %w", u.RequestID, err)
			}
			applied++
			d := deltas[stored.rollup]
			classes, ok := d.CostBreakdown.Add(u.New.CostBreakdown.Sub(stored.cost.CostBreakdown))
			if !ok {
				return domain.Invalidf("reprice %s: the cost change is out of range", u.RequestID)
			}
			deltas[stored.rollup] = costDelta{CostBreakdown: classes, Total: d.Total + u.New.Total - stored.cost.Total}
			ud := upDeltas[stored.upstream]
			upClasses, ok := ud.CostBreakdown.Add(u.New.CostBreakdown.Sub(stored.cost.CostBreakdown))
			if !ok {
				return domain.Invalidf("reprice %s: the cost change is out of range", u.RequestID)
			}
			upDeltas[stored.upstream] = costDelta{CostBreakdown: upClasses, Total: ud.Total + u.New.Total - stored.cost.Total}
			change := costDelta{CostBreakdown: u.New.CostBreakdown.Sub(stored.cost.CostBreakdown), Total: u.New.Total - stored.cost.Total}
			if !addDelta(hourDeltas, stored.hour, change) || !addDelta(globalDeltas, stored.global, change) ||
				!addDelta(monthDeltas, stored.monthly, change) {
				return domain.Invalidf("reprice %s: the cost change is out of range", u.RequestID)
			}
		}
		keys := make([]rollupKey, 0, len(deltas))
		for k, d := range deltas {
			if d != (costDelta{}) {
				keys = append(keys, k)
			}
		}
		slices.SortFunc(keys, func(a, b rollupKey) int {
			return cmp.Or(strings.Compare(a.key.String(), b.key.String()), strings.Compare(a.day, b.day), strings.Compare(a.model, b.model))
		})
		for _, k := range keys {
			n, err := q.Costs.addDaily(ctx, k, deltas[k])
			if err != nil {
				return fmt.Errorf("update the daily rollup: %w", err)
			}
			if n == 0 {
				// Every record is summed in its row since migration 1; a
				// missing row means the rollup is already wrong.
				return fmt.Errorf("update the daily rollup: no row for key %s, day %s, model %q", k.key, k.day, k.model)
			}
		}
		upKeys := make([]upstreamRollupKey, 0, len(upDeltas))
		for k, d := range upDeltas {
			if d != (costDelta{}) {
				upKeys = append(upKeys, k)
			}
		}
		slices.SortFunc(upKeys, func(a, b upstreamRollupKey) int {
			return cmp.Or(strings.Compare(a.day, b.day), strings.Compare(a.upstream, b.upstream), strings.Compare(a.key.String(), b.key.String()))
		})
		for _, k := range upKeys {
			// A missing row is not an error here: a relay of the previous
			// version, writing during a rolling upgrade, summed its records
			// in usage_daily only.
			if _, err := q.Costs.addDailyUp(ctx, k, upDeltas[k]); err != nil {
				return fmt.Errorf("update the upstream rollup: %w", err)
			}
		}
		// A missing row is not an error in the rollups of every key either:
		// records a relay of a version before them wrote are not in them.
		// Rows are moved in key order, as a usage batch takes them.
		for _, h := range changed(hourDeltas, time.Time.Compare) {
			if _, err := q.Costs.addHourly(ctx, h, hourDeltas[h]); err != nil {
				return fmt.Errorf("update the hourly rollup: %w", err)
			}
		}
		for _, k := range changed(globalDeltas, func(a, b globalRollupKey) int {
			return cmp.Or(strings.Compare(a.day, b.day), strings.Compare(a.model, b.model), strings.Compare(a.upstream, b.upstream))
		}) {
			if _, err := q.Costs.addGlobal(ctx, k, globalDeltas[k]); err != nil {
				return fmt.Errorf("update the global daily rollup: %w", err)
			}
		}
		for _, k := range changed(monthDeltas, func(a, b monthlyRollupKey) int {
			return cmp.Or(strings.Compare(a.month, b.month), strings.Compare(a.key.String(), b.key.String()))
		}) {
			if _, err := q.Costs.addMonthly(ctx, k, monthDeltas[k]); err != nil {
				return fmt.Errorf("update the monthly rollup: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("reprice %d usage records: %w", len(todo), err)
	}
	return applied, nil
}

// addDelta adds d to m[k]; false when a class leaves int64.
func addDelta[K comparable](m map[K]costDelta, k K, d costDelta) bool {
	cur := m[k]
	classes, ok := cur.CostBreakdown.Add(d.CostBreakdown)
	if !ok {
		return false
	}
	m[k] = costDelta{CostBreakdown: classes, Total: cur.Total + d.Total}
	return true
}

// changed is the keys of m whose delta is not zero, sorted by compare.
func changed[K comparable](m map[K]costDelta, compare func(a, b K) int) []K {
	out := make([]K, 0, len(m))
	for k, d := range m {
		if d != (costDelta{}) {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, compare)
	return out
}
