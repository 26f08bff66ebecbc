package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/adapters/sqlite/sqlitedb"
	"github.com/relaystation/relay/domain"
)

// rowsPerInsert is the rows of one multi-row INSERT. Small, because SQLite
// runs on the relay's own CPU and the writer yields between statements: 16
// rows take under a millisecond, which bounds how long request handlers can
// wait behind a batch (measured: 17.7k records/s at 16 rows against 24.2k at
// 500, far above what one relay produces).
const rowsPerInsert = 16

// usageColumns lists every column of a record. plainColumns are the ones a
// plain record (no iterations, server tools, speed, region, requested model
// or batch flag: nearly every record) has values for; its insert binds only
// those and leaves the rest to their defaults, since each bound value costs
// CPU in the in-process SQLite engine.
const (
	plainColumns = `request_id, key_id, created_at, model, path, status, stream,
	input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens,
	cache_creation_5m_tokens, cache_creation_1h_tokens, estimated, latency_us, ttfb_us,
	upstream_request_id, upstream, session_id, client_ip, error_type, endpoint, service_tier`
	usageColumns = plainColumns + `,
	requested_model, iterations, web_search_requests, web_fetch_requests, speed, inference_geo, batch`

	plainColumnCount = 23
	usageColumnCount = 30
)

// plainRecord reports whether r has nothing beyond the plain columns.
func plainRecord(r *domain.UsageRecord) bool {
	return r.RequestedModel == "" && len(r.Iterations) == 0 && r.ServerTools.IsZero() &&
		r.Speed == "" && r.InferenceGeo == "" && !r.Batch
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
	// RETURNING yields only the rows actually inserted: exactly the ones the
	// aggregates must count.
	b.WriteString(` ON CONFLICT (request_id) DO NOTHING
		RETURNING key_id, created_at, model, input_tokens, output_tokens,
		cache_creation_input_tokens, cache_read_input_tokens,
		cache_creation_5m_tokens, cache_creation_1h_tokens,
		web_search_requests, web_fetch_requests`)
	s := b.String()
	insertSQL.Store(cacheKey, s)
	return s
}

type dailyKey struct{ key, day, model string }

type keyAgg struct {
	tokens int64
	last   int64
}

// InsertUsage writes recs and their aggregates in one transaction; request
// ids already stored are skipped and counted nowhere.
func (s *Store) InsertUsage(ctx context.Context, recs []domain.UsageRecord) error {
	if len(recs) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(tx *sql.Tx, q *sqlitedb.Queries) error {
		keys := map[string]*keyAgg{}
		daily := map[dailyKey]*sqlitedb.UpsertUsageDailyParams{}
		plainArgs := make([]any, 0, min(len(recs), rowsPerInsert)*plainColumnCount)
		fullArgs := make([]any, 0, usageColumnCount)
		for start := 0; start < len(recs); start += rowsPerInsert {
			chunk := recs[start:min(start+rowsPerInsert, len(recs))]
			plainArgs, fullArgs = plainArgs[:0], fullArgs[:0]
			nPlain, nFull := 0, 0
			for i := range chunk {
				r := &chunk[i]
				args := &plainArgs
				if plainRecord(r) {
					nPlain++
				} else {
					args, nFull = &fullArgs, nFull+1
				}
				*args = append(*args,
					clean(r.RequestID), r.KeyID.String(), r.Time.UnixMicro(), clean(r.Model), clean(r.Path), int64(r.Status), boolInt(r.Stream),
					r.Usage.InputTokens, r.Usage.OutputTokens, r.Usage.CacheCreationInputTokens, r.Usage.CacheReadInputTokens,
					r.Usage.CacheCreation5mTokens, r.Usage.CacheCreation1hTokens, boolInt(r.Estimated),
					r.Latency.Microseconds(), r.TTFB.Microseconds(),
					clean(r.UpstreamRequestID), clean(r.Upstream), clean(r.SessionID), clean(r.ClientIP), clean(r.ErrorType),
					clean(r.Endpoint), clean(r.ServiceTier))
				if args == &fullArgs {
					fullArgs = append(fullArgs, clean(r.RequestedModel), encodeIterations(r.Iterations),
						r.ServerTools.WebSearchRequests, r.ServerTools.WebFetchRequests, clean(r.Speed), clean(r.InferenceGeo), boolInt(r.Batch))
				}
			}
			if nPlain > 0 {
				if err := insertChunk(ctx, tx, insertUsageSQL(nPlain, true), plainArgs, keys, daily); err != nil {
					return err
				}
			}
			if nFull > 0 {
				if err := insertChunk(ctx, tx, insertUsageSQL(nFull, false), fullArgs, keys, daily); err != nil {
					return err
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
		for _, d := range daily {
			if err := q.UpsertUsageDaily(ctx, *d); err != nil {
				return fmt.Errorf("update daily usage: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("insert usage batch of %d: %w", len(recs), err)
	}
	return nil
}

func insertChunk(ctx context.Context, tx *sql.Tx, query string, args []any, keys map[string]*keyAgg, daily map[dailyKey]*sqlitedb.UpsertUsageDailyParams) error {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("insert usage records: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			keyID, model             string
			at                       int64
			in, out, cc, cr, c5, c1h int64
			search, fetch            int64
		)
		if err := rows.Scan(&keyID, &at, &model, &in, &out, &cc, &cr, &c5, &c1h, &search, &fetch); err != nil {
			return fmt.Errorf("read inserted usage: %w", err)
		}
		a := keys[keyID]
		if a == nil {
			a = &keyAgg{}
			keys[keyID] = a
		}
		a.tokens += in + out + cc + cr
		a.last = max(a.last, at)

		dk := dailyKey{keyID, fromMicro(at).Format(time.DateOnly), model}
		d := daily[dk]
		if d == nil {
			d = &sqlitedb.UpsertUsageDailyParams{KeyID: dk.key, Day: dk.day, Model: dk.model}
			daily[dk] = d
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
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("insert usage records: %w", err)
	}
	return nil
}

// UsageTotals sums usage over [q.From, q.To). A day-aligned range is read
// from the daily rollup, anything else from the records themselves.
func (s *Store) UsageTotals(ctx context.Context, q domain.UsageQuery) ([]domain.UsageTotals, error) {
	switch q.GroupBy {
	case domain.GroupNone, domain.GroupKey, domain.GroupDay, domain.GroupModel:
	default:
		return nil, domain.Invalidf("unknown usage grouping %q", q.GroupBy)
	}
	var keyID *string
	if q.KeyID != nil {
		k := q.KeyID.String()
		keyID = &k
	}
	var out []domain.UsageTotals
	if dayAligned(q.From) && dayAligned(q.To) {
		rows, err := s.rq.UsageTotalsFromDaily(ctx, sqlitedb.UsageTotalsFromDailyParams{
			GroupBy: string(q.GroupBy),
			KeyID:   keyID,
			FromDay: dayPtr(q.From),
			ToDay:   dayPtr(q.To),
		})
		if err != nil {
			return nil, fmt.Errorf("usage totals: %w", err)
		}
		for _, r := range rows {
			out = append(out, totals(r.Grp, r.Requests, r.InputTokens, r.OutputTokens, r.CacheCreationInputTokens,
				r.CacheReadInputTokens, r.CacheCreation5mTokens, r.CacheCreation1hTokens))
		}
	} else {
		rows, err := s.rq.UsageTotalsFromRecords(ctx, sqlitedb.UsageTotalsFromRecordsParams{
			GroupBy:  string(q.GroupBy),
			KeyID:    keyID,
			FromTime: microOrNil(q.From),
			ToTime:   microOrNil(q.To),
		})
		if err != nil {
			return nil, fmt.Errorf("usage totals: %w", err)
		}
		for _, r := range rows {
			out = append(out, totals(r.Grp, r.Requests, r.InputTokens, r.OutputTokens, r.CacheCreationInputTokens,
				r.CacheReadInputTokens, r.CacheCreation5mTokens, r.CacheCreation1hTokens))
		}
	}
	if q.GroupBy == domain.GroupNone && len(out) == 0 {
		out = append(out, domain.UsageTotals{})
	}
	return out, nil
}

// UsageLogs returns records newest first.
func (s *Store) UsageLogs(ctx context.Context, q domain.LogQuery) ([]domain.UsageRecord, error) {
	p := sqlitedb.UsageLogsParams{FromTime: microPtr(q.From), ToTime: microPtr(q.To), MaxRows: limit(q.Limit)}
	if q.KeyID != nil {
		k := q.KeyID.String()
		p.KeyID = &k
	}
	if q.Status != nil {
		st := int64(*q.Status)
		p.Status = &st
	}
	if q.After != nil {
		at, id := q.After.Time.UnixMicro(), q.After.RequestID
		p.AfterTime, p.AfterRequestID = &at, &id
	}
	rows, err := s.rq.UsageLogs(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("usage logs: %w", err)
	}
	out := make([]domain.UsageRecord, len(rows))
	for i, r := range rows {
		keyID, err := uuid.Parse(r.KeyID)
		if err != nil {
			return nil, fmt.Errorf("usage record %s: stored key id %q: %w", r.RequestID, r.KeyID, err)
		}
		its, err := decodeIterations(r.Iterations)
		if err != nil {
			return nil, fmt.Errorf("usage record %s: %w", r.RequestID, err)
		}
		out[i] = domain.UsageRecord{
			RequestID:      r.RequestID,
			KeyID:          keyID,
			Time:           fromMicro(r.CreatedAt),
			Model:          r.Model,
			RequestedModel: r.RequestedModel,
			Path:           r.Path,
			Endpoint:       r.Endpoint,
			Status:         int(r.Status),
			Stream:         r.Stream != 0,
			Usage: domain.Usage{
				InputTokens:              r.InputTokens,
				OutputTokens:             r.OutputTokens,
				CacheCreationInputTokens: r.CacheCreationInputTokens,
				CacheReadInputTokens:     r.CacheReadInputTokens,
				CacheCreation5mTokens:    r.CacheCreation5mTokens,
				CacheCreation1hTokens:    r.CacheCreation1hTokens,
			},
			Iterations: its,
			ServerTools: domain.ServerToolUse{
				WebSearchRequests: r.WebSearchRequests,
				WebFetchRequests:  r.WebFetchRequests,
			},
			ServiceTier:       r.ServiceTier,
			Speed:             r.Speed,
			InferenceGeo:      r.InferenceGeo,
			Estimated:         r.Estimated != 0,
			Batch:             r.Batch != 0,
			Latency:           time.Duration(r.LatencyUs) * time.Microsecond,
			TTFB:              time.Duration(r.TtfbUs) * time.Microsecond,
			UpstreamRequestID: r.UpstreamRequestID,
			Upstream:          r.Upstream,
			SessionID:         r.SessionID,
			ClientIP:          r.ClientIp,
			ErrorType:         r.ErrorType,
		}
	}
	return out, nil
}

// clean stores text the way the PostgreSQL adapter must (no NUL, valid
// UTF-8), so both engines return the same records.
func clean(s string) string {
	if storable(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}

// iteration is the stored form of a domain.Iteration, one element of the
// usage_records.iterations JSON array. The PostgreSQL adapter stores the
// same shape, so both engines hold the same text.
type iteration struct {
	Type                     string `json:"type"`
	Model                    string `json:"model"`
	InputTokens              int64  `json:"input_tokens"`
	OutputTokens             int64  `json:"output_tokens"`
	CacheCreationInputTokens int64  `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64  `json:"cache_read_input_tokens"`
	CacheCreation5mTokens    int64  `json:"cache_creation_5m_tokens"`
	CacheCreation1hTokens    int64  `json:"cache_creation_1h_tokens"`
}

// encodeIterations returns the stored text of its: the empty string when
// there are none, which keeps the common record small.
func encodeIterations(its []domain.Iteration) string {
	if len(its) == 0 {
		return ""
	}
	out := make([]iteration, len(its))
	for i, it := range its {
		out[i] = iteration{
			Type:                     clean(it.Type),
			Model:                    clean(it.Model),
			InputTokens:              it.Usage.InputTokens,
			OutputTokens:             it.Usage.OutputTokens,
			CacheCreationInputTokens: it.Usage.CacheCreationInputTokens,
			CacheReadInputTokens:     it.Usage.CacheReadInputTokens,
			CacheCreation5mTokens:    it.Usage.CacheCreation5mTokens,
			CacheCreation1hTokens:    it.Usage.CacheCreation1hTokens,
		}
	}
	b, _ := json.Marshal(out) // cannot fail: only strings and integers
	return string(b)
}

// decodeIterations reads what encodeIterations stored; an empty string or
// an empty array is none.
func decodeIterations(s string) ([]domain.Iteration, error) {
	if s == "" {
		return nil, nil
	}
	var in []iteration
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return nil, fmt.Errorf("stored iterations: %w", err)
	}
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]domain.Iteration, len(in))
	for i, it := range in {
		out[i] = domain.Iteration{
			Type:  it.Type,
			Model: it.Model,
			Usage: domain.Usage{
				InputTokens:              it.InputTokens,
				OutputTokens:             it.OutputTokens,
				CacheCreationInputTokens: it.CacheCreationInputTokens,
				CacheReadInputTokens:     it.CacheReadInputTokens,
				CacheCreation5mTokens:    it.CacheCreation5mTokens,
				CacheCreation1hTokens:    it.CacheCreation1hTokens,
			},
		}
	}
	return out, nil
}

// dayAligned reports whether t is unset or a UTC midnight, so that a range
// bounded by it can be answered from the daily rollup.
func dayAligned(t time.Time) bool {
	return t.IsZero() || t.Equal(t.Truncate(24*time.Hour))
}

func dayPtr(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	d := t.UTC().Format(time.DateOnly)
	return &d
}

func microOrNil(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	us := t.UnixMicro()
	return &us
}

func totals(group string, requests, in, out, cc, cr, c5m, c1h int64) domain.UsageTotals {
	return domain.UsageTotals{
		Group:    group,
		Requests: requests,
		Usage: domain.Usage{
			InputTokens:              in,
			OutputTokens:             out,
			CacheCreationInputTokens: cc,
			CacheReadInputTokens:     cr,
			CacheCreation5mTokens:    c5m,
			CacheCreation1hTokens:    c1h,
		},
	}
}
