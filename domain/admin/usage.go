package admin

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
	// Named money here: the login throttle has a type named budget.
	money "github.com/relaystation/relay/domain/budget"
)

const (
	// DefaultUsageWindow is the range a usage view covers when from is absent.
	DefaultUsageWindow = 30 * 24 * time.Hour
	// MaxDailyDays bounds the rows of a daily view.
	MaxDailyDays = 366
	// DefaultLogPageSize and MaxLogPageSize bound a log page.
	DefaultLogPageSize = 100
	MaxLogPageSize     = 500
)

func checkRange(from, to *time.Time) error {
	if from != nil && to != nil && from.After(*to) {
		return domain.Invalidf("from must not be later than to")
	}
	return nil
}

// window fills in a missing end (now) and start (end - DefaultUsageWindow).
func (s *Service) window(from, to *time.Time) (time.Time, time.Time) {
	end := s.clock.Now().UTC()
	if to != nil {
		end = to.UTC()
	}
	start := end.Add(-DefaultUsageWindow)
	if from != nil {
		start = from.UTC()
	}
	return start, end
}

// AdminUsageInput asks for usage totals across all keys, or one key's when
// KeyID is set (a deleted key's too: its usage stays visible to admins).
type AdminUsageInput struct {
	KeyID    *uuid.UUID
	From, To *time.Time
	GroupBy  domain.GroupBy
}

// Validate checks the range and the grouping.
func (in AdminUsageInput) Validate() error {
	switch in.GroupBy {
	case domain.GroupNone, domain.GroupKey, domain.GroupDay, domain.GroupModel, domain.GroupUpstream:
	default:
		return domain.Invalidf("group_by must be key, day, model or upstream")
	}
	if in.KeyID != nil && *in.KeyID == uuid.Nil {
		return domain.Invalidf("key_id must not be the nil UUID")
	}
	return checkRange(in.From, in.To)
}

// UsageReport is usage over [From, To): the grand total and, when grouped,
// one row per group.
type UsageReport struct {
	From, To time.Time
	GroupBy  domain.GroupBy
	Totals   domain.UsageTotals
	Groups   []domain.UsageTotals
}

// AdminUsage sums usage across every key, deleted ones included.
func (s *Service) AdminUsage(ctx context.Context, in AdminUsageInput) (UsageReport, error) {
	if err := in.Validate(); err != nil {
		return UsageReport{}, err
	}
	from, to := s.window(in.From, in.To)
	return s.report(ctx, domain.UsageQuery{KeyID: in.KeyID, From: from, To: to, GroupBy: in.GroupBy})
}

func (s *Service) report(ctx context.Context, q domain.UsageQuery) (UsageReport, error) {
	rows, err := s.usage.UsageTotals(ctx, q)
	if err != nil {
		return UsageReport{}, fmt.Errorf("usage totals: %w", err)
	}
	r := UsageReport{From: q.From, To: q.To, GroupBy: q.GroupBy, Groups: []domain.UsageTotals{}}
	for _, row := range rows {
		r.Totals.Requests += row.Requests
		r.Totals.Usage = r.Totals.Usage.Add(row.Usage)
		var ok bool
		if r.Totals.Cost, ok = r.Totals.Cost.Add(row.Cost); ok {
			r.Totals.CostTotal, ok = addUSD(r.Totals.CostTotal, row.CostTotal)
		}
		if !ok {
			return UsageReport{}, fmt.Errorf("usage totals: the cost sum leaves int64 nanodollars")
		}
	}
	if q.GroupBy != domain.GroupNone {
		r.Groups = rows
	}
	return r, nil
}

// KeyUsageInput asks for one key's usage over a range.
type KeyUsageInput struct {
	KeyID    uuid.UUID
	From, To *time.Time
}

// Validate checks the range.
func (in KeyUsageInput) Validate() error {
	if in.KeyID == uuid.Nil {
		return domain.Invalidf("a key is required")
	}
	return checkRange(in.From, in.To)
}

// KeyUsage is one key's totals with a per-model breakdown (Groups).
func (s *Service) KeyUsage(ctx context.Context, in KeyUsageInput) (UsageReport, error) {
	if err := in.Validate(); err != nil {
		return UsageReport{}, err
	}
	from, to := s.window(in.From, in.To)
	id := in.KeyID
	r, err := s.report(ctx, domain.UsageQuery{KeyID: &id, From: from, To: to, GroupBy: domain.GroupModel})
	if err != nil {
		return UsageReport{}, err
	}
	sort.SliceStable(r.Groups, func(i, j int) bool { return r.Groups[i].Group < r.Groups[j].Group })
	return r, nil
}

// KeyDaily is one row per UTC day over [from, to), oldest first; days
// without usage are present with zeros. The default range is the last 30
// days, today included.
func (s *Service) KeyDaily(ctx context.Context, in KeyUsageInput) (UsageReport, error) {
	if err := in.Validate(); err != nil {
		return UsageReport{}, err
	}
	tomorrow := startOfDay(s.clock.Now().UTC()).AddDate(0, 0, 1)
	to := tomorrow
	if in.To != nil {
		to = in.To.UTC()
	}
	from := startOfDay(to.Add(-time.Nanosecond)).AddDate(0, 0, -29)
	if in.From != nil {
		from = in.From.UTC()
	}
	if to.Sub(startOfDay(from)) > MaxDailyDays*24*time.Hour {
		return UsageReport{}, domain.Invalidf("a daily view covers at most %d days", MaxDailyDays)
	}
	id := in.KeyID
	r, err := s.report(ctx, domain.UsageQuery{KeyID: &id, From: from, To: to, GroupBy: domain.GroupDay})
	if err != nil {
		return UsageReport{}, err
	}
	byDay := make(map[string]domain.UsageTotals, len(r.Groups))
	for _, g := range r.Groups {
		byDay[g.Group] = g
	}
	days := []domain.UsageTotals{}
	for d := startOfDay(from); d.Before(to); d = d.AddDate(0, 0, 1) {
		name := d.Format(time.DateOnly)
		row, ok := byDay[name]
		if !ok {
			row = domain.UsageTotals{Group: name}
		}
		days = append(days, row)
	}
	r.Groups = days
	return r, nil
}

func startOfDay(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// LogsInput selects request logs, newest first.
type LogsInput struct {
	KeyID    *uuid.UUID
	From, To *time.Time
	Status   *int
	// Model and Upstream match exactly when set.
	Model    *string
	Upstream *string
	// RefusalsOnly keeps the requests the relay refused itself.
	RefusalsOnly bool
	Cursor       string
	Limit        int // 0 = DefaultLogPageSize
}

// maxFilterLen bounds the model and upstream log filters.
const maxFilterLen = 256

// Validate checks the range, status, filters, page size and cursor.
func (in LogsInput) Validate() error {
	if in.Limit < 0 || in.Limit > MaxLogPageSize {
		return domain.Invalidf("limit must be between 1 and %d", MaxLogPageSize)
	}
	if in.Status != nil && (*in.Status < 100 || *in.Status > 599) {
		return domain.Invalidf("status must be an HTTP status code")
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"model", in.Model}, {"upstream", in.Upstream}} {
		// Compared as text by both engines: NUL or invalid UTF-8 would be
		// a 500 on PostgreSQL.
		if f.v != nil && (*f.v == "" || len(*f.v) > maxFilterLen || !validText(*f.v)) {
			return domain.Invalidf("%s filter must be 1-%d bytes of valid UTF-8 without NUL", f.name, maxFilterLen)
		}
	}
	if in.Cursor != "" {
		if _, err := decodeLogCursor(in.Cursor); err != nil {
			return err
		}
	}
	return checkRange(in.From, in.To)
}

// LogPage is one page of request logs; NextCursor is "" on the last page.
type LogPage struct {
	Records    []domain.UsageRecord
	NextCursor string
}

// AdminLogs returns request logs across keys, deleted ones included.
func (s *Service) AdminLogs(ctx context.Context, in LogsInput) (LogPage, error) {
	if err := in.Validate(); err != nil {
		return LogPage{}, err
	}
	limit := in.Limit
	if limit == 0 {
		limit = DefaultLogPageSize
	}
	q := domain.LogQuery{KeyID: in.KeyID, From: in.From, To: in.To, Status: in.Status,
		Model: in.Model, Upstream: in.Upstream, RefusalsOnly: in.RefusalsOnly, Limit: limit + 1}
	if in.Cursor != "" {
		c, _ := decodeLogCursor(in.Cursor)
		q.After = &c
	}
	recs, err := s.usage.UsageLogs(ctx, q)
	if err != nil {
		return LogPage{}, fmt.Errorf("usage logs: %w", err)
	}
	page := LogPage{Records: recs}
	if len(recs) > limit {
		page.Records = recs[:limit]
		last := page.Records[limit-1]
		page.NextCursor = encodeLogCursor(domain.LogCursor{Time: last.Time, RequestID: last.RequestID})
	}
	return page, nil
}

// KeyLogsInput selects one key's own request logs.
type KeyLogsInput struct {
	KeyID  uuid.UUID
	Cursor string
	Limit  int
}

// Validate checks the key, page size and cursor.
func (in KeyLogsInput) Validate() error {
	if in.KeyID == uuid.Nil {
		return domain.Invalidf("a key is required")
	}
	return LogsInput{Cursor: in.Cursor, Limit: in.Limit}.Validate()
}

// KeyLogs returns the key's own logs, newest first. The key id comes from
// authentication, never from the request, so one key cannot read another's.
func (s *Service) KeyLogs(ctx context.Context, in KeyLogsInput) (LogPage, error) {
	if err := in.Validate(); err != nil {
		return LogPage{}, err
	}
	id := in.KeyID
	return s.AdminLogs(ctx, LogsInput{KeyID: &id, Cursor: in.Cursor, Limit: in.Limit})
}

// Quota is a key's token quota, its money budgets and what is left of its
// tier's limits now.
type Quota struct {
	Key domain.APIKey
	QuotaView
	Tier TierStatus
}

// QuotaView is the part of a key's quota the key list carries for every
// key: its tokens and money budgets as the live ledgers see them.
type QuotaView struct {
	TokensUsed      int64
	TokensReserved  int64
	TokensRemaining *int64   // nil = unlimited
	UsageRatio      *float64 // nil = unlimited
	// Budgets are the key's money budgets as the budget ledger sees them
	// now, in the key's order; empty when it has none, or when the relay
	// has no budget ledger.
	Budgets []money.Status
}

// TierStatus is a tier's limits and their live remainders for one key.
type TierStatus struct {
	Name        string
	Requests    BudgetStatus
	Tokens      *BudgetStatus
	Concurrency *ConcurrencyStatus
}

// BudgetStatus is one rate budget's state.
type BudgetStatus struct {
	Limit      int64
	Period     time.Duration
	Remaining  int64
	ResetAfter time.Duration
}

// ConcurrencyStatus is the key's in-flight slots.
type ConcurrencyStatus struct {
	Limit, InFlight, Remaining int
}

// KeyQuota reports the key's quota from storage and the live ledger and
// limiters, which is what the relay's admission checks will see.
func (s *Service) KeyQuota(ctx context.Context, keyID uuid.UUID) (Quota, error) {
	k, err := s.GetKey(ctx, keyID)
	if err != nil {
		return Quota{}, err
	}
	v, err := s.quotaView(ctx, k)
	if err != nil {
		return Quota{}, err
	}
	q := Quota{Key: k, QuotaView: v}
	if q.Tier, err = s.tierStatus(ctx, k); err != nil {
		return Quota{}, err
	}
	return q, nil
}

// needsLedger reports whether k's quota view reads a live ledger: only a
// key with a token limit or a money budget does; any other key's view is
// its stored row.
func (s *Service) needsLedger(k domain.APIKey) bool {
	return (s.ledger != nil && k.TokenLimit != nil) || (s.budgets != nil && len(k.Budgets) > 0)
}

// quotaView is k's tokens and budgets now: the token ledger for a key with
// a limit, the budget ledger (seeded from storage on first use) for a key
// with budgets, and nothing but k itself otherwise.
func (s *Service) quotaView(ctx context.Context, k domain.APIKey) (QuotaView, error) {
	q := QuotaView{TokensUsed: k.TokensUsed}
	if s.ledger != nil && k.TokenLimit != nil {
		st, err := s.ledger.State(ctx, k.ID, k.TokensUsed)
		if err != nil {
			return QuotaView{}, fmt.Errorf("quota ledger state: %w", err)
		}
		q.TokensUsed, q.TokensReserved = max(st.Used, k.TokensUsed), st.Reserved
	}
	if k.TokenLimit != nil {
		limit := *k.TokenLimit
		rem := domain.QuotaState{Used: q.TokensUsed, Reserved: q.TokensReserved}.Remaining(limit)
		ratio := 1.0
		if limit > 0 {
			ratio = float64(q.TokensUsed) / float64(limit)
		}
		q.TokensRemaining, q.UsageRatio = &rem, &ratio
	}
	if s.budgets != nil && len(k.Budgets) > 0 {
		var err error
		if q.Budgets, err = s.budgets.State(ctx, k, s.clock.Now()); err != nil {
			return QuotaView{}, fmt.Errorf("budget ledger state: %w", err)
		}
	}
	return q, nil
}

// addUSD is a + b; false when the sum leaves int64.
func addUSD(a, b domain.Nanodollars) (domain.Nanodollars, bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, false
	}
	return s, true
}

func (s *Service) tierStatus(ctx context.Context, k domain.APIKey) (TierStatus, error) {
	ts := TierStatus{Name: k.RateLimitTier}
	t, err := s.tiers.GetTier(ctx, k.RateLimitTier)
	if errors.Is(err, domain.ErrNotFound) {
		return ts, nil
	}
	if err != nil {
		return TierStatus{}, fmt.Errorf("get tier: %w", err)
	}
	ts.Requests, err = s.peek(ctx, domain.RequestsLimiterKey(k.ID), t.RequestLimit())
	if err != nil {
		return TierStatus{}, err
	}
	if l, ok := t.TokenLimit(); ok {
		b, err := s.peek(ctx, domain.TokensLimiterKey(k.ID), l)
		if err != nil {
			return TierStatus{}, err
		}
		ts.Tokens = &b
	}
	if t.MaxConcurrency != nil {
		c := ConcurrencyStatus{Limit: *t.MaxConcurrency}
		if s.concurrency != nil {
			n, err := s.concurrency.InFlight(ctx, domain.ConcurrencyKey(k.ID))
			if err != nil {
				return TierStatus{}, fmt.Errorf("in-flight requests: %w", err)
			}
			c.InFlight = n
		}
		c.Remaining = max(c.Limit-c.InFlight, 0)
		ts.Concurrency = &c
	}
	return ts, nil
}

func (s *Service) peek(ctx context.Context, key string, l domain.Limit) (BudgetStatus, error) {
	b := BudgetStatus{Limit: l.Count, Period: l.Period, Remaining: l.Count}
	if s.limiter == nil {
		return b, nil
	}
	d, err := s.limiter.Peek(ctx, key, l)
	if err != nil {
		return BudgetStatus{}, fmt.Errorf("peek rate limit: %w", err)
	}
	b.Remaining, b.ResetAfter = max(d.Remaining, 0), d.ResetAfter
	return b, nil
}
