package sqlstore

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/pool"
	"github.com/relaystation/relay/ports"
)

// upstreamRow is an upstreams row, and the parameters of CreateUpstream
// and InsertUpstreamIfAbsent. L is how the engine holds a list column.
type upstreamRow[L ~[]string] = struct {
	ID             string
	Name           string
	Url            string
	SealedKey      string
	KeyLast4       string
	Priority       int64
	Weight         int64
	MaxConcurrency int64
	Models         L
	Grp            string
	Enabled        bool
	DisabledReason string
	CreatedAt      Time
	UpdatedAt      Time
}

type updateUpstreamParams[L ~[]string] = struct {
	Name           string
	Url            string
	SealedKey      string
	KeyLast4       string
	Priority       int64
	Weight         int64
	MaxConcurrency int64
	Models         L
	Grp            string
	Enabled        bool
	DisabledReason string
	UpdatedAt      Time
	ID             string
	PrevUpdatedAt  Time
}

// upstreamSQL is an engine's sqlc queries on upstreams.
type upstreamSQL[L ~[]string, Row, Create, Insert ~upstreamRow[L], Update ~updateUpstreamParams[L]] interface {
	ListUpstreams(ctx context.Context) ([]Row, error)
	GetUpstream(ctx context.Context, id string) (Row, error)
	CreateUpstream(ctx context.Context, arg Create) error
	InsertUpstreamIfAbsent(ctx context.Context, arg Insert) error
	CountUpstreams(ctx context.Context) (int64, error)
	UpdateUpstream(ctx context.Context, arg Update) (int64, error)
	DeleteUpstream(ctx context.Context, id string) (int64, error)
}

// UpstreamQueries are an engine's upstreams queries in domain terms.
type UpstreamQueries struct {
	list           func(ctx context.Context) ([]ports.UpstreamRecord, error)
	get            func(ctx context.Context, id string) (ports.UpstreamRecord, error)
	create         func(ctx context.Context, u ports.UpstreamRecord) error
	insertIfAbsent func(ctx context.Context, u ports.UpstreamRecord) error
	count          func(ctx context.Context) (int64, error)
	update         func(ctx context.Context, u ports.UpstreamRecord, prev time.Time) (int64, error)
	delete         func(ctx context.Context, id string) (int64, error)
}

// BindUpstreams binds an engine's sqlc queries on upstreams.
func BindUpstreams[L ~[]string, Row, Create, Insert ~upstreamRow[L], Update ~updateUpstreamParams[L]](
	q upstreamSQL[L, Row, Create, Insert, Update],
) UpstreamQueries {
	one := func(r Row) (ports.UpstreamRecord, error) { return upstreamFromRow[L](r), nil }
	return UpstreamQueries{
		list: func(ctx context.Context) ([]ports.UpstreamRecord, error) {
			rows, err := q.ListUpstreams(ctx)
			return mapRows(rows, err, one)
		},
		get: func(ctx context.Context, id string) (ports.UpstreamRecord, error) {
			r, err := q.GetUpstream(ctx, id)
			if err != nil {
				return ports.UpstreamRecord{}, err
			}
			return upstreamFromRow[L](r), nil
		},
		create: func(ctx context.Context, u ports.UpstreamRecord) error {
			return q.CreateUpstream(ctx, Create(upstreamArgs[L](u)))
		},
		insertIfAbsent: func(ctx context.Context, u ports.UpstreamRecord) error {
			return q.InsertUpstreamIfAbsent(ctx, Insert(upstreamArgs[L](u)))
		},
		count: q.CountUpstreams,
		update: func(ctx context.Context, u ports.UpstreamRecord, prev time.Time) (int64, error) {
			r := upstreamArgs[L](u)
			return q.UpdateUpstream(ctx, Update(updateUpstreamParams[L]{
				Name: r.Name, Url: r.Url, SealedKey: r.SealedKey, KeyLast4: r.KeyLast4, Priority: r.Priority,
				Weight: r.Weight, MaxConcurrency: r.MaxConcurrency, Models: r.Models, Grp: r.Grp, Enabled: r.Enabled,
				DisabledReason: r.DisabledReason, UpdatedAt: r.UpdatedAt, ID: r.ID, PrevUpdatedAt: Time(prev),
			}))
		},
		delete: q.DeleteUpstream,
	}
}

// ListUpstreams returns every upstream, by priority then name.
func (s *Store) ListUpstreams(ctx context.Context) ([]ports.UpstreamRecord, error) {
	ups, err := s.read.Upstreams.list(ctx)
	if err != nil {
		return nil, fmt.Errorf("list upstreams: %w", err)
	}
	return ups, nil
}

// GetUpstream returns one upstream, ErrNotFound if absent.
func (s *Store) GetUpstream(ctx context.Context, id string) (ports.UpstreamRecord, error) {
	if !storable(id) {
		return ports.UpstreamRecord{}, notFound("upstream", nil)
	}
	u, err := s.read.Upstreams.get(ctx, id)
	if err != nil {
		return ports.UpstreamRecord{}, s.wrap("upstream", err)
	}
	return u, nil
}

// CreateUpstream inserts u. A duplicate id or name is an ErrConflict; a
// zero CreatedAt is now, a zero UpdatedAt is CreatedAt.
func (s *Store) CreateUpstream(ctx context.Context, u ports.UpstreamRecord) error {
	if err := validUpstream(u); err != nil {
		return err
	}
	return s.upstreamWriteErr("create upstream", s.write.Upstreams.create(ctx, stamped(u)))
}

// UpdateUpstream writes every mutable field of u if the stored upstream's
// updated_at still equals prev: otherwise nothing, and ports.ErrStale
// (wrapped; errors.Is works) while it exists, ErrNotFound when it does
// not. A zero UpdatedAt is now.
func (s *Store) UpdateUpstream(ctx context.Context, u ports.UpstreamRecord, prev time.Time) error {
	if err := validUpstream(u); err != nil {
		return err
	}
	if u.UpdatedAt.IsZero() {
		u.UpdatedAt = time.Now()
	}
	n, err := s.write.Upstreams.update(ctx, u, prev)
	if err != nil {
		return s.upstreamWriteErr("update upstream", err)
	}
	if n > 0 {
		return nil
	}
	if _, err := s.write.Upstreams.get(ctx, u.ID); err != nil {
		return s.wrap("upstream", err)
	}
	return fmt.Errorf("upstream %s: %w", u.ID, ports.ErrStale)
}

// DeleteUpstream removes one upstream; ErrNotFound if absent.
func (s *Store) DeleteUpstream(ctx context.Context, id string) error {
	if !storable(id) {
		return notFound("upstream", nil)
	}
	n, err := s.write.Upstreams.delete(ctx, id)
	if err != nil {
		return fmt.Errorf("delete upstream: %w", err)
	}
	if n == 0 {
		return notFound("upstream", nil)
	}
	return nil
}

// SeedUpstreams inserts ups only into an empty table, in a transaction that
// no other seeding runs beside (see Engine.SeedTx), so replicas starting
// together seed once. Of several in ups that share an id or a name, the
// first is kept.
func (s *Store) SeedUpstreams(ctx context.Context, ups []ports.UpstreamRecord) error {
	for _, u := range ups {
		if err := validUpstream(u); err != nil {
			return err
		}
	}
	return s.engine.SeedTx(ctx, func(q Queries) error {
		n, err := q.Upstreams.count(ctx)
		if err != nil {
			return fmt.Errorf("seed upstreams: %w", err)
		}
		if n > 0 {
			return nil
		}
		for _, u := range ups {
			if err := q.Upstreams.insertIfAbsent(ctx, stamped(u)); err != nil {
				return fmt.Errorf("seed upstream %q: %w", u.ID, err)
			}
		}
		return nil
	})
}

func (s *Store) upstreamWriteErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case s.is(err, ErrDBDuplicatedEntry):
		return &domain.Error{Kind: domain.KindConflict, Message: "an upstream with this id or name already exists", Err: err}
	case s.is(err, ErrDBCheck):
		return &domain.Error{Kind: domain.KindInvalid, Message: "upstream priority, weight and max_concurrency are out of range", Err: err}
	case s.is(err, ErrDBBadText):
		return &domain.Error{Kind: domain.KindInvalid, Message: "upstream text fields must be valid UTF-8 without NUL characters", Err: err}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// validUpstream refuses, on both engines alike, what PostgreSQL would not
// store: text it cannot hold and integers beyond its integer columns. The
// domain keeps far inside these bounds (pool.Upstream.Validate); this is
// the last line.
func validUpstream(u ports.UpstreamRecord) error {
	if u.ID == "" || !storable(u.ID) {
		return domain.Invalidf("an upstream id must be non-empty UTF-8 text without NUL characters")
	}
	texts := append([]string{u.Name, u.URL, u.SealedKey, u.KeyLast4, u.Group, u.DisabledReason}, u.Models...)
	for _, t := range texts {
		if !storable(t) {
			return domain.Invalidf("upstream %s: text fields must be valid UTF-8 without NUL characters", u.ID)
		}
	}
	if u.Priority < 0 || u.Priority > math.MaxInt32 || u.Weight < 1 || u.Weight > math.MaxInt32 ||
		u.MaxConcurrency < 0 || u.MaxConcurrency > math.MaxInt32 {
		return domain.Invalidf("upstream %s: priority, weight and max_concurrency are out of range", u.ID)
	}
	return nil
}

// stamped fills in the times of a new row.
func stamped(u ports.UpstreamRecord) ports.UpstreamRecord {
	if u.CreatedAt.IsZero() {
		u.CreatedAt = time.Now()
	}
	if u.UpdatedAt.IsZero() {
		u.UpdatedAt = u.CreatedAt
	}
	return u
}

func upstreamArgs[L ~[]string](u ports.UpstreamRecord) upstreamRow[L] {
	return upstreamRow[L]{
		ID:             u.ID,
		Name:           u.Name,
		Url:            u.URL,
		SealedKey:      u.SealedKey,
		KeyLast4:       u.KeyLast4,
		Priority:       int64(u.Priority),
		Weight:         int64(u.Weight),
		MaxConcurrency: int64(u.MaxConcurrency),
		Models:         nonNil[L](u.Models),
		Grp:            u.Group,
		Enabled:        u.Enabled,
		DisabledReason: u.DisabledReason,
		CreatedAt:      Time(u.CreatedAt),
		UpdatedAt:      Time(u.UpdatedAt),
	}
}

func upstreamFromRow[L ~[]string](r upstreamRow[L]) ports.UpstreamRecord {
	return ports.UpstreamRecord{
		Upstream: pool.Upstream{
			ID:             r.ID,
			Name:           r.Name,
			Priority:       int(r.Priority),
			Weight:         int(r.Weight),
			MaxConcurrency: int(r.MaxConcurrency),
			Models:         nilIfEmpty(r.Models),
			Group:          r.Grp,
			Enabled:        r.Enabled,
		},
		URL:            r.Url,
		SealedKey:      r.SealedKey,
		KeyLast4:       r.KeyLast4,
		DisabledReason: r.DisabledReason,
		CreatedAt:      time.Time(r.CreatedAt),
		UpdatedAt:      time.Time(r.UpdatedAt),
	}
}
