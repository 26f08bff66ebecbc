package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/adapters/sqlite/sqlitedb"
	"github.com/relaystation/relay/adapters/sqlstore"
	"github.com/relaystation/relay/domain"
)

// rowsPerInsert is the rows of one multi-row INSERT. Small, because SQLite
// runs on the relay's own CPU and the writer yields between statements: 16
// rows take under a millisecond, which bounds how long request handlers can
// wait behind a batch (measured: 17.7k records/s at 16 rows against 24.2k at
// 500, far above what one relay produces).
const rowsPerInsert = 16

// usageColumns lists every column of a record. plainColumns are the ones a
// plain record (no iterations, server tools, speed, region, requested model,
// batch flag, 1-hour cache writes, cost flags and detail or failed-over
// upstreams: nearly every record) has values for; its insert binds only those and leaves the rest to
// their defaults, since each bound value costs CPU in the in-process SQLite
// engine.
const (
	plainColumns = `request_id, key_id, created_at, model, path, status, stream,
	input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens,
	cache_creation_5m_tokens, cache_creation_1h_tokens, estimated, latency_us, ttfb_us,
	upstream_request_id, upstream, session_id, client_ip, error_type, endpoint, service_tier,
	cost_total, cost_input, cost_output, cost_cache_write_5m, cost_cache_read, price_version,
	cost_cache_saved, attempts`
	usageColumns = plainColumns + `,
	requested_model, iterations, web_search_requests, web_fetch_requests, speed, inference_geo, batch,
	cost_cache_write_1h, cost_web_search, cost_web_fetch, cost_fallback_5m, cost_unpriced, cost_detail,
	tried_upstreams`

	plainColumnCount = 31
	usageColumnCount = 45
)

// plainRecord reports whether r has nothing beyond the plain columns.
func plainRecord(r *domain.UsageRecord) bool {
	c := &r.Cost
	return r.RequestedModel == "" && len(r.Iterations) == 0 && r.ServerTools.IsZero() &&
		r.Speed == "" && r.InferenceGeo == "" && !r.Batch && len(r.TriedUpstreams) == 0 &&
		c.CacheWrite1h == 0 && c.WebSearch == 0 && c.WebFetch == 0 && !c.Fallback5m && !c.Unpriced && len(c.Detail) == 0
}

// insertSQL caches the multi-row INSERT text per row count. It is
// hand-built because sqlc cannot express a VALUES list of variable length.
var insertSQL sync.Map // int -> string

func insertUsageSQL(n int, plain bool) string {
	cacheKey := 2 * n
	cols, count := usageColumns, usageColumnCount
	if plain {
		cacheKey++
		cols, count = plainColumns, plainColumnCount
	}
	if v, ok := insertSQL.Load(cacheKey); ok {
		return v.(string)
	}
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", count), ",") + ")"
	var b strings.Builder
	b.WriteString("INSERT INTO usage_records (" + cols + ") VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
	// A record already stored (a batch written again after a lost commit
	// reply) is skipped here; insertedBy tells the rollups which rows went
	// in.
	b.WriteString(` ON CONFLICT (request_id) DO NOTHING`)
	s := b.String()
	insertSQL.Store(cacheKey, s)
	return s
}

// insertedBy returns the request ids that the multi-row insert res of n
// rows stored, or nil when it stored all n (the usual case, known without
// a query). A rowid table gives the rows of one insert consecutive rowids
// after the largest there was, so the rows stored are those up to
// LastInsertId, as many as were affected. (RETURNING said the same but
// cost a fifth of the writer's CPU: SQLite gathers the returned rows in a
// temporary table, and each is scanned back through database/sql.)
func insertedBy(ctx context.Context, tx sqlitedb.DBTX, res sql.Result, n int) (map[string]bool, error) {
	affected, err := res.RowsAffected()
	if err != nil {
		return nil, fmt.Errorf("insert usage records: %w", err)
	}
	if affected == int64(n) {
		return nil, nil
	}
	got := map[string]bool{}
	if affected == 0 {
		return got, nil
	}
	last, err := res.LastInsertId()
	if err != nil {
		return nil, fmt.Errorf("insert usage records: %w", err)
	}
	rows, err := tx.QueryContext(ctx, "SELECT request_id FROM usage_records WHERE rowid > ? AND rowid <= ?", last-affected, last)
	if err != nil {
		return nil, fmt.Errorf("read inserted usage records: %w", err)
	}
	defer rows.Close()
	n = 0
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("read inserted usage records: %w", err)
		}
		got[id] = true
		n++
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read inserted usage records: %w", err)
	}
	if int64(n) != affected {
		// The rowids were not consecutive (AUTOINCREMENT, a trigger, the
		// largest rowid reached): the rollups cannot tell which rows went
		// in. Fail loudly rather than count wrong; the contract suite's
		// interleaved batch trips this if the schema ever changes so.
		return nil, fmt.Errorf("insert usage records: %d rows stored but %d found in the rowid range ending at %d", affected, n, last)
	}
	return got, nil
}

type dailyKey struct {
	key        uuid.UUID
	day, model string
}

type dailyUpstreamKey struct {
	day, upstream string
	key           uuid.UUID
}

// rollups are the sums a batch adds to the rollups.
type rollups struct {
	daily    map[dailyKey]*sqlitedb.UpsertUsageDailyParams
	upstream map[dailyUpstreamKey]*sums
	hourly   sqlstore.HourlyRollup
	global   map[globalKey]*sums
	monthly  map[monthlyKey]*sums
}

// globalKey names a usage_daily_global row, monthlyKey a usage_monthly_key
// row (month "YYYY-MM-01").
type globalKey struct{ day, model, upstream string }

type monthlyKey struct {
	month string
	key   uuid.UUID
}

// sums are the columns every rollup of every key and the monthly rollup
// hold, in their order: requests, the six token counts, the cost total,
// the seven classes and what cache reads saved.
type sums [16]int64

const sumColumns = `requests, input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens,
	cache_creation_5m_tokens, cache_creation_1h_tokens, cost_total, cost_input, cost_output,
	cost_cache_write_5m, cost_cache_write_1h, cost_cache_read, cost_web_search, cost_web_fetch, cost_cache_saved`

func (a *sums) add(b *sums) {
	for i := range a {
		a[i] += b[i]
	}
}

// addSums adds v to m's row k.
func addSums[K comparable](m map[K]*sums, k K, v *sums) {
	if row := m[k]; row != nil {
		row.add(v)
		return
	}
	c := *v
	m[k] = &c
}

// sumsUpsertSQL caches the multi-row upserts of the rollups holding sums,
// per table and row count.
var sumsUpsertSQL sync.Map // [2]any{table, n} -> string

// upsertSumsSQL adds n rows of keyCols and sums to table, whose primary key
// is keyCols.
func upsertSumsSQL(table, keyCols string, nKeys, n int) string {
	cacheKey := [2]any{table, n}
	if v, ok := sumsUpsertSQL.Load(cacheKey); ok {
		return v.(string)
	}
	var b strings.Builder
	b.WriteString("INSERT INTO " + table + " (" + keyCols + ", " + sumColumns + ") VALUES ")
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", nKeys+len(sums{})), ",") + ")"
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
	b.WriteString(" ON CONFLICT (" + keyCols + ") DO UPDATE SET ")
	for i, c := range strings.Split(sumColumns, ",") {
		c = strings.TrimSpace(c)
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c + " = " + c + " + excluded." + c)
	}
	q := b.String()
	sumsUpsertSQL.Store(cacheKey, q)
	return q
}

// upsertSums adds rows to a rollup, rollupRowsPerUpsert at a time; each
// row's key values are keys(k), in keyCols' order, and each key is in rows
// once, so no statement names a row twice.
func upsertSums[K comparable](ctx context.Context, tx sqlitedb.DBTX, table, keyCols string, rows map[K]*sums, keys func(K) []any) error {
	var args []any
	n, nKeys := 0, 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		_, err := tx.ExecContext(ctx, upsertSumsSQL(table, keyCols, nKeys, n), args...)
		args, n = args[:0], 0
		return err
	}
	for k, v := range rows {
		kv := keys(k)
		nKeys = len(kv)
		args = append(args, kv...)
		for _, x := range v {
			args = append(args, x)
		}
		if n++; n == rollupRowsPerUpsert {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

type keyAgg struct {
	tokens int64
	last   int64
}

// InsertUsage writes recs and their aggregates in one transaction.
func (e *engine) InsertUsage(ctx context.Context, recs []domain.UsageRecord) error {
	clean := sqlstore.Clean
	return e.inTx(ctx, func(tx sqlitedb.DBTX, q *sqlitedb.Queries) error {
		keys := map[uuid.UUID]*keyAgg{}
		daily := rollups{
			daily:    map[dailyKey]*sqlitedb.UpsertUsageDailyParams{},
			upstream: map[dailyUpstreamKey]*sums{},
			hourly:   sqlstore.HourlyRollup{},
			global:   map[globalKey]*sums{},
			monthly:  map[monthlyKey]*sums{},
		}
		plainArgs := make([]any, 0, min(len(recs), rowsPerInsert)*plainColumnCount)
		fullArgs := make([]any, 0, usageColumnCount)
		var plainRecs, fullRecs []*domain.UsageRecord
		for start := 0; start < len(recs); start += rowsPerInsert {
			chunk := recs[start:min(start+rowsPerInsert, len(recs))]
			plainArgs, fullArgs = plainArgs[:0], fullArgs[:0]
			plainRecs, fullRecs = plainRecs[:0], fullRecs[:0]
			nPlain, nFull := 0, 0
			for i := range chunk {
				r := &chunk[i]
				c := &r.Cost
				args := &plainArgs
				if plainRecord(r) {
					nPlain++
					plainRecs = append(plainRecs, r)
				} else {
					args, nFull = &fullArgs, nFull+1
					fullRecs = append(fullRecs, r)
				}
				*args = append(*args,
					clean(r.RequestID), r.KeyID.String(), r.Time.UnixMicro(), clean(r.Model), clean(r.Path), int64(r.Status), r.Stream,
					r.Usage.InputTokens, r.Usage.OutputTokens, r.Usage.CacheCreationInputTokens, r.Usage.CacheReadInputTokens,
					r.Usage.CacheCreation5mTokens, r.Usage.CacheCreation1hTokens, r.Estimated,
					r.Latency.Microseconds(), r.TTFB.Microseconds(),
					clean(r.UpstreamRequestID), clean(r.Upstream), clean(r.SessionID), clean(r.ClientIP), clean(r.ErrorType),
					clean(r.Endpoint), clean(r.ServiceTier),
					int64(c.Total), int64(c.Input), int64(c.Output), int64(c.CacheWrite5m), int64(c.CacheRead), clean(c.PriceVersion),
					int64(c.CacheSaved), sqlstore.StoredAttempts(r.Attempts))
				if args == &fullArgs {
					fullArgs = append(fullArgs, clean(r.RequestedModel), sqlstore.EncodeIterations(r.Iterations),
						r.ServerTools.WebSearchRequests, r.ServerTools.WebFetchRequests, clean(r.Speed), clean(r.InferenceGeo), r.Batch,
						int64(c.CacheWrite1h), int64(c.WebSearch), int64(c.WebFetch), c.Fallback5m, c.Unpriced, sqlstore.EncodeCostDetail(c.Detail),
						sqlstore.EncodeTriedUpstreams(r.TriedUpstreams))
				}
			}
			for _, part := range [2]struct {
				recs  []*domain.UsageRecord
				args  []any
				plain bool
			}{{plainRecs, plainArgs, true}, {fullRecs, fullArgs, false}} {
				if len(part.recs) == 0 {
					continue
				}
				res, err := tx.ExecContext(ctx, insertUsageSQL(len(part.recs), part.plain), part.args...)
				if err != nil {
					return fmt.Errorf("insert usage records: %w", err)
				}
				got, err := insertedBy(ctx, tx, res, len(part.recs))
				if err != nil {
					return err
				}
				for _, r := range part.recs {
					if got != nil {
						// Only rows this insert stored count, and a record
						// given twice counts once, as the table holds it.
						id := clean(r.RequestID)
						if !got[id] {
							continue
						}
						delete(got, id)
					}
					addRecord(r, keys, daily)
				}
				if len(got) > 0 {
					return fmt.Errorf("insert usage records: %d rows in the insert's rowid range are not of its batch", len(got))
				}
			}
			// SQLite runs on the relay's own CPU: let request handlers in
			// between chunks, so a large batch never stalls them for
			// milliseconds (it matters most when GOMAXPROCS is 1).
			runtime.Gosched()
		}
		for id, a := range keys {
			if err := q.AddKeyUsage(ctx, sqlitedb.AddKeyUsageParams{ID: id, Tokens: a.tokens, LastUsedAt: a.last}); err != nil {
				return fmt.Errorf("add key usage: %w", err)
			}
		}
		for _, d := range daily.daily {
			if err := q.UpsertUsageDaily(ctx, *d); err != nil {
				return fmt.Errorf("update daily usage: %w", err)
			}
		}
		if err := upsertSums(ctx, tx, "usage_daily_upstream", "day, upstream, key_id", daily.upstream,
			func(k dailyUpstreamKey) []any { return []any{k.day, k.upstream, k.key.String()} }); err != nil {
			return fmt.Errorf("update daily usage per upstream: %w", err)
		}
		for _, hour := range daily.hourly.Hours() {
			if err := q.UpsertUsageHourly(ctx, hourlyParams(hour, daily.hourly[hour])); err != nil {
				return fmt.Errorf("update hourly usage: %w", err)
			}
		}
		if err := upsertSums(ctx, tx, "usage_daily_global", "day, model, upstream", daily.global,
			func(k globalKey) []any { return []any{k.day, k.model, k.upstream} }); err != nil {
			return fmt.Errorf("update daily usage of every key: %w", err)
		}
		if err := upsertSums(ctx, tx, "usage_monthly_key", "month, key_id", daily.monthly,
			func(k monthlyKey) []any { return []any{k.month, k.key.String()} }); err != nil {
			return fmt.Errorf("update monthly usage: %w", err)
		}
		return nil
	})
}

// rollupRowsPerUpsert is the rows of one multi-row upsert of a rollup
// (upsertSums): a batch touches one row per day, upstream and key, and one
// statement for them all costs far less in the in-process engine than one
// each.
const rollupRowsPerUpsert = 32

// addRecord adds a stored record to the key's totals and the rollups,
// with the values its row holds (text cleaned as stored; a plain record's
// missing columns are zero in the record too).
func addRecord(r *domain.UsageRecord, keys map[uuid.UUID]*keyAgg, daily rollups) {
	clean := sqlstore.Clean
	keyID := r.KeyID
	model, upstream := clean(r.Model), clean(r.Upstream)
	at, status, ttfb := r.Time.UnixMicro(), int64(r.Status), r.TTFB.Microseconds()
	u, c := &r.Usage, &r.Cost
	in, out, cc, cr, c5, c1h := u.InputTokens, u.OutputTokens, u.CacheCreationInputTokens, u.CacheReadInputTokens,
		u.CacheCreation5mTokens, u.CacheCreation1hTokens
	search, fetch := r.ServerTools.WebSearchRequests, r.ServerTools.WebFetchRequests
	// total, input, output, 5m, 1h, read, search, fetch, saved
	cost := [9]int64{int64(c.Total), int64(c.Input), int64(c.Output), int64(c.CacheWrite5m), int64(c.CacheWrite1h),
		int64(c.CacheRead), int64(c.WebSearch), int64(c.WebFetch), int64(c.CacheSaved)}

	a := keys[keyID]
	if a == nil {
		a = &keyAgg{}
		keys[keyID] = a
	}
	a.tokens += in + out + cc + cr
	a.last = max(a.last, at)

	atUTC := time.UnixMicro(at).UTC()
	day := atUTC.Format(time.DateOnly)
	v := sums{1, in, out, cc, cr, c5, c1h, cost[0], cost[1], cost[2], cost[3], cost[4], cost[5], cost[6], cost[7], cost[8]}
	addSums(daily.global, globalKey{day, model, upstream}, &v)
	addSums(daily.monthly, monthlyKey{atUTC.Format("2006-01") + "-01", keyID}, &v)
	addSums(daily.upstream, dailyUpstreamKey{day, upstream, keyID}, &v)
	dk := dailyKey{keyID, day, model}
	d := daily.daily[dk]
	if d == nil {
		d = &sqlitedb.UpsertUsageDailyParams{KeyID: dk.key, Day: dk.day, Model: dk.model}
		daily.daily[dk] = d
	}
	d.Requests++
	d.InputTokens += in
	d.OutputTokens += out
	d.CacheCreationInputTokens += cc
	d.CacheReadInputTokens += cr
	d.CacheCreation5mTokens += c5
	d.CacheCreation1hTokens += c1h
	d.WebSearchRequests += search
	d.WebFetchRequests += fetch
	d.CostTotal += cost[0]
	d.CostInput += cost[1]
	d.CostOutput += cost[2]
	d.CostCacheWrite5m += cost[3]
	d.CostCacheWrite1h += cost[4]
	d.CostCacheRead += cost[5]
	d.CostWebSearch += cost[6]
	d.CostWebFetch += cost[7]
	d.CostCacheSaved += cost[8]

	usage := [8]int64{in, out, cc, cr, c5, c1h, search, fetch}
	daily.hourly.Add(at, int(status), upstream, ttfb, &usage, &cost)
}

// hourlyParams is one hour of a batch as UpsertUsageHourly takes it.
func hourlyParams(hour int64, h *sqlstore.HourSums) sqlitedb.UpsertUsageHourlyParams {
	u, c, st, b := &h.Usage, &h.Cost, &h.Status, &h.TTFB
	return sqlitedb.UpsertUsageHourlyParams{
		Hour: sqlstore.Time(time.UnixMicro(hour)), Requests: h.Requests,
		InputTokens: u[0], OutputTokens: u[1], CacheCreationInputTokens: u[2], CacheReadInputTokens: u[3],
		CacheCreation5mTokens: u[4], CacheCreation1hTokens: u[5], WebSearchRequests: u[6], WebFetchRequests: u[7],
		CostTotal: c[0], CostInput: c[1], CostOutput: c[2], CostCacheWrite5m: c[3],
		CostCacheWrite1h: c[4], CostCacheRead: c[5], CostWebSearch: c[6], CostWebFetch: c[7], CostCacheSaved: c[8],
		StatusOk: st.OK, StatusClientError: st.ClientError, StatusRateLimited: st.RateLimited,
		StatusServerError: st.ServerError, StatusOverloaded: st.Overloaded, Refused: st.Refused,
		TtfbB00: b[0], TtfbB01: b[1], TtfbB02: b[2], TtfbB03: b[3], TtfbB04: b[4], TtfbB05: b[5], TtfbB06: b[6],
		TtfbB07: b[7], TtfbB08: b[8], TtfbB09: b[9], TtfbB10: b[10], TtfbB11: b[11], TtfbB12: b[12], TtfbB13: b[13],
		TtfbB14: b[14], TtfbB15: b[15], TtfbB16: b[16], TtfbB17: b[17], TtfbB18: b[18], TtfbB19: b[19], TtfbB20: b[20],
		TtfbCount: h.TTFBCount,
	}
}
