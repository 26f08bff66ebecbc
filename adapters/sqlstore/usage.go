package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
)

// usageRow is a usage_records row. The engines write records with their own
// batch insert (Engine.InsertUsage); the Store only reads them.
type usageRow = struct {
	RequestID                string
	KeyID                    uuid.UUID
	CreatedAt                Time
	Model                    string
	Path                     string
	Status                   int64
	Stream                   bool
	InputTokens              int64
	OutputTokens             int64
	CacheCreationInputTokens int64
	CacheReadInputTokens     int64
	CacheCreation5mTokens    int64
	CacheCreation1hTokens    int64
	Estimated                bool
	LatencyUs                int64
	TtfbUs                   int64
	UpstreamRequestID        string
	Upstream                 string
	SessionID                string
	ClientIp                 string
	ErrorType                string
	RequestedModel           string
	Endpoint                 string
	Iterations               string
	WebSearchRequests        int64
	WebFetchRequests         int64
	ServiceTier              string
	Speed                    string
	InferenceGeo             string
	Batch                    bool
	CostTotal                int64
	CostInput                int64
	CostOutput               int64
	CostCacheWrite5m         int64
	CostCacheWrite1h         int64
	CostCacheRead            int64
	CostWebSearch            int64
	CostWebFetch             int64
	PriceVersion             string
	CostFallback5m           bool
	CostUnpriced             bool
	CostDetail               string // JSON or "", see EncodeCostDetail
	CostCacheSaved           int64
	Attempts                 int64
	TriedUpstreams           string // comma-joined, see EncodeTriedUpstreams
}

// usageLogsParams select a page of records: the optional filters, then
// the range [FromTime, (BeforeTime, BeforeRequestID)) in (time, request id)
// order, always bound (see logsArgs).
type usageLogsParams = struct {
	KeyID           *uuid.UUID
	Status          *int64
	Model           *string
	Upstream        *string
	RefusalsOnly    bool
	FromTime        Time
	BeforeTime      Time
	BeforeRequestID string
	MaxRows         int64
}

// usageSQL is an engine's sqlc queries on usage_records' logs. The
// variants take the same parameters and differ in the index they scan (see
// logsVariant).
type usageSQL[Row ~usageRow, Logs, ByKey, ByModel, ByUpstream, ByStatus, Refusals ~usageLogsParams] interface {
	UsageLogs(ctx context.Context, arg Logs) ([]Row, error)
	UsageLogsByKey(ctx context.Context, arg ByKey) ([]Row, error)
	UsageLogsByModel(ctx context.Context, arg ByModel) ([]Row, error)
	UsageLogsByUpstream(ctx context.Context, arg ByUpstream) ([]Row, error)
	UsageLogsByStatus(ctx context.Context, arg ByStatus) ([]Row, error)
	UsageLogsRefusals(ctx context.Context, arg Refusals) ([]Row, error)
}

// UsageQueries are an engine's usage queries in domain terms.
type UsageQueries struct {
	logs func(ctx context.Context, q domain.LogQuery) ([]domain.UsageRecord, error)
}

// BindUsage binds an engine's sqlc queries on usage.
func BindUsage[Row ~usageRow, Logs, ByKey, ByModel, ByUpstream, ByStatus, Refusals ~usageLogsParams](
	q usageSQL[Row, Logs, ByKey, ByModel, ByUpstream, ByStatus, Refusals],
) UsageQueries {
	return UsageQueries{
		logs: func(ctx context.Context, lq domain.LogQuery) ([]domain.UsageRecord, error) {
			if !storableFilter(lq.Model) || !storableFilter(lq.Upstream) {
				// Stored text is always storable (Clean): nothing matches.
				return []domain.UsageRecord{}, nil
			}
			p := logsArgs(lq)
			var (
				rows []Row
				err  error
			)
			switch logsVariant(lq) {
			case byKey:
				rows, err = q.UsageLogsByKey(ctx, ByKey(p))
			case byRefusal:
				rows, err = q.UsageLogsRefusals(ctx, Refusals(p))
			case byModel:
				rows, err = q.UsageLogsByModel(ctx, ByModel(p))
			case byUpstream:
				rows, err = q.UsageLogsByUpstream(ctx, ByUpstream(p))
			case byStatus:
				rows, err = q.UsageLogsByStatus(ctx, ByStatus(p))
			default:
				rows, err = q.UsageLogs(ctx, Logs(p))
			}
			return mapRows(rows, err, func(r Row) (domain.UsageRecord, error) { return usageFromRow(r) })
		},
	}
}

// InsertUsage writes recs and their aggregates in one transaction; request
// ids already stored are skipped and counted nowhere.
func (s *Store) InsertUsage(ctx context.Context, recs []domain.UsageRecord) error {
	if len(recs) == 0 {
		return nil
	}
	if err := s.engine.InsertUsage(ctx, recs); err != nil {
		return fmt.Errorf("insert usage batch of %d: %w", len(recs), err)
	}
	return nil
}

// UsageLogs returns records newest first. Model and Upstream match the
// stored (cleaned) text exactly; RefusalsOnly keeps the records with a
// status of 400 or more and no upstream.
func (s *Store) UsageLogs(ctx context.Context, q domain.LogQuery) ([]domain.UsageRecord, error) {
	recs, err := s.read.Usage.logs(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("usage logs: %w", err)
	}
	return recs, nil
}

// storableFilter reports whether an optional text filter can match stored
// text at all.
func storableFilter(s *string) bool { return s == nil || storable(*s) }

// dayOrNil is an optional day bound as the rollup stores it: the UTC date.
func dayOrNil(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	d := t.UTC().Format(time.DateOnly)
	return &d
}

// logIndex is the index a page of logs is read by.
type logIndex int

const (
	byTime logIndex = iota
	byKey
	byRefusal
	byModel
	byUpstream
	byStatus
)

// logsVariant picks the index for q: the first filter q sets of refusals
// only, a status other than 200, the key, the model and the upstream,
// which is roughly the most selective first (refusals and statuses other
// than 200 are a few percent of all requests, a key a share of them, a
// model and an upstream each a large part), else time alone (a status of
// 200, nearly every request, is checked on the rows it yields). A status
// goes before the key: a busy key's records hold a few of its errors among
// many successes, while the errors of every key are few. The other
// filters are checked on the rows that index yields.
func logsVariant(q domain.LogQuery) logIndex {
	switch {
	case q.RefusalsOnly:
		return byRefusal
	case q.Status != nil && *q.Status != 200:
		return byStatus
	case q.KeyID != nil:
		return byKey
	case q.Model != nil:
		return byModel
	case q.Upstream != nil:
		return byUpstream
	}
	return byTime
}

// The widest range of logs: every stored time is inside it.
var (
	logsFrom   = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	logsBefore = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
)

// logsArgs are q's parameters. The range is always bound, the widest when
// q sets none. From (inclusive), To (exclusive) and the cursor (after which
// the page starts, exclusive) become one range in (time, request id) order:
// To is the position before the first record at To, and the upper bound is
// the lower of To and the cursor. A time finer than the stored microsecond
// is rounded up, which keeps every comparison exact.
func logsArgs(q domain.LogQuery) usageLogsParams {
	p := usageLogsParams{
		KeyID: q.KeyID, Model: q.Model, Upstream: q.Upstream, RefusalsOnly: q.RefusalsOnly,
		FromTime: Time(logsFrom), BeforeTime: Time(logsBefore), MaxRows: limit(q.Limit),
	}
	if q.Status != nil {
		st := int64(*q.Status)
		p.Status = &st
	}
	if q.From != nil {
		p.FromTime = Time(ceilMicro(*q.From))
	}
	before, beforeID := logsBefore, ""
	if q.To != nil {
		before = ceilMicro(*q.To)
	}
	if q.After != nil {
		at, id := q.After.Time, q.After.RequestID
		if c := ceilMicro(at); !c.Equal(at) {
			// No stored time lies between at and c: after (at, id) is
			// after (c, "").
			at, id = c, ""
		}
		if at.Before(before) || at.Equal(before) && id < beforeID {
			before, beforeID = at, id
		}
	}
	p.BeforeTime, p.BeforeRequestID = Time(before), beforeID
	return p
}

func usageFromRow(r usageRow) (domain.UsageRecord, error) {
	its, err := decodeIterations(r.Iterations)
	if err != nil {
		return domain.UsageRecord{}, fmt.Errorf("usage record %s: %w", r.RequestID, err)
	}
	return domain.UsageRecord{
		RequestID:      r.RequestID,
		KeyID:          r.KeyID,
		Time:           time.Time(r.CreatedAt),
		Model:          r.Model,
		RequestedModel: r.RequestedModel,
		Path:           r.Path,
		Endpoint:       r.Endpoint,
		Status:         int(r.Status),
		Stream:         r.Stream,
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
		Estimated:         r.Estimated,
		Batch:             r.Batch,
		Latency:           time.Duration(r.LatencyUs) * time.Microsecond,
		TTFB:              time.Duration(r.TtfbUs) * time.Microsecond,
		UpstreamRequestID: r.UpstreamRequestID,
		Upstream:          r.Upstream,
		SessionID:         r.SessionID,
		ClientIP:          r.ClientIp,
		ErrorType:         r.ErrorType,
		Attempts:          int(r.Attempts),
		TriedUpstreams:    decodeTriedUpstreams(r.TriedUpstreams),
		Cost: domain.RecordCost{
			CostBreakdown: domain.CostBreakdown{
				Input:        domain.Nanodollars(r.CostInput),
				Output:       domain.Nanodollars(r.CostOutput),
				CacheWrite5m: domain.Nanodollars(r.CostCacheWrite5m),
				CacheWrite1h: domain.Nanodollars(r.CostCacheWrite1h),
				CacheRead:    domain.Nanodollars(r.CostCacheRead),
				WebSearch:    domain.Nanodollars(r.CostWebSearch),
				WebFetch:     domain.Nanodollars(r.CostWebFetch),
				CacheSaved:   domain.Nanodollars(r.CostCacheSaved),
			},
			Total:        domain.Nanodollars(r.CostTotal),
			PriceVersion: r.PriceVersion,
			Fallback5m:   r.CostFallback5m,
			Unpriced:     r.CostUnpriced,
			Detail:       decodeCostDetail(r.CostDetail),
		},
	}, nil
}

// iteration is the stored form of a domain.Iteration, one element of the
// usage_records.iterations JSON array; both engines store the same text.
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

// EncodeIterations returns the stored text of its: the empty string when
// there are none, which keeps the common record small.
func EncodeIterations(its []domain.Iteration) string {
	if len(its) == 0 {
		return ""
	}
	out := make([]iteration, len(its))
	for i, it := range its {
		out[i] = iteration{
			Type:                     Clean(it.Type),
			Model:                    Clean(it.Model),
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

// decodeIterations reads what EncodeIterations stored; an empty string or
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

// EncodeCostDetail returns the stored text of a record's cost detail: ""
// when there is none. Detail that is not JSON is dropped rather than
// stored (a batch must never fail, and a reader must be able to pass the
// column on as JSON); JSON is made storable as Clean does, which keeps it
// JSON.
func EncodeCostDetail(d json.RawMessage) string {
	if len(d) == 0 || !json.Valid(d) {
		return ""
	}
	return Clean(string(d))
}

// decodeCostDetail reads what EncodeCostDetail stored: nil when empty.
func decodeCostDetail(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	return json.RawMessage(s)
}

// MaxAttempts is the most upstream attempts a record stores; PostgreSQL
// keeps them in a smallint, and a batch must never fail on a count.
const MaxAttempts = 32767

// StoredAttempts is n as the attempts column holds it: within 0 and
// MaxAttempts.
func StoredAttempts(n int) int64 { return int64(min(max(n, 0), MaxAttempts)) }

// EncodeTriedUpstreams returns the stored text of the upstreams a request
// tried before the one that served it: their ids, made storable and
// comma-joined ("" for none). Upstream ids never hold a comma
// (domain/upstreams allows letters, digits, '-', '_' and '.'); one that
// does anyway is stored with '_' in its place, so it cannot split in two.
func EncodeTriedUpstreams(ids []string) string {
	switch len(ids) {
	case 0:
		return ""
	case 1:
		return strings.ReplaceAll(Clean(ids[0]), ",", "_")
	}
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strings.ReplaceAll(Clean(id), ",", "_"))
	}
	return b.String()
}

// decodeTriedUpstreams reads what EncodeTriedUpstreams stored: nil for "".
func decodeTriedUpstreams(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
