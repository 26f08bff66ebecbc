package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

// priceRow is a price_tables row as CurrentPriceTable and GetPriceTable
// read it, and InsertPriceTable's parameters.
type priceRow = struct {
	Version   string
	Body      string
	CreatedAt Time
	CreatedBy string
	Comment   string
}

// priceMetaRow is a price_tables row without its body, as
// ListPriceTables reads it.
type priceMetaRow = struct {
	Version   string
	CreatedAt Time
	CreatedBy string
	Comment   string
}

// priceSQL is an engine's sqlc queries on price_tables.
type priceSQL[Insert, Current, Get ~priceRow, Meta ~priceMetaRow] interface {
	InsertPriceTable(ctx context.Context, arg Insert) (int64, error)
	CurrentPriceTable(ctx context.Context) (Current, error)
	GetPriceTable(ctx context.Context, version string) (Get, error)
	ListPriceTables(ctx context.Context) ([]Meta, error)
}

// PriceQueries are an engine's price_tables queries in domain terms.
type PriceQueries struct {
	insert  func(ctx context.Context, v ports.PriceTableVersion) (int64, error)
	current func(ctx context.Context) (ports.PriceTableVersion, error)
	get     func(ctx context.Context, version string) (ports.PriceTableVersion, error)
	list    func(ctx context.Context) ([]ports.PriceTableVersion, error)
}

// BindPrices binds an engine's sqlc queries on price_tables.
func BindPrices[Insert, Current, Get ~priceRow, Meta ~priceMetaRow](q priceSQL[Insert, Current, Get, Meta]) PriceQueries {
	return PriceQueries{
		insert: func(ctx context.Context, v ports.PriceTableVersion) (int64, error) {
			return q.InsertPriceTable(ctx, priceRow{
				Version:   v.Version,
				Body:      string(v.Table),
				CreatedAt: Time(v.CreatedAt),
				CreatedBy: v.CreatedBy,
				Comment:   v.Comment,
			})
		},
		current: func(ctx context.Context) (ports.PriceTableVersion, error) {
			r, err := q.CurrentPriceTable(ctx)
			return priceFromRow(r), err
		},
		get: func(ctx context.Context, version string) (ports.PriceTableVersion, error) {
			r, err := q.GetPriceTable(ctx, version)
			return priceFromRow(r), err
		},
		list: func(ctx context.Context) ([]ports.PriceTableVersion, error) {
			rows, err := q.ListPriceTables(ctx)
			return mapRows(rows, err, func(r Meta) (ports.PriceTableVersion, error) {
				m := priceMetaRow(r)
				return ports.PriceTableVersion{Version: m.Version, CreatedAt: time.Time(m.CreatedAt), CreatedBy: m.CreatedBy, Comment: m.Comment}, nil
			})
		},
	}
}

// PutPriceTable stores a new version; see ports.PriceStore. A version
// already stored is an ErrConflict, whatever its table. A zero CreatedAt
// is now. The table must be JSON (the store does not read it: domain/pricing
// does), and every text must be valid UTF-8 without NUL characters, so
// both engines store the same bytes.
func (s *Store) PutPriceTable(ctx context.Context, v ports.PriceTableVersion) error {
	switch {
	case v.Version == "" || !storable(v.Version):
		return domain.Invalidf("a price table version must be non-empty UTF-8 text without NUL characters")
	case !storable(v.CreatedBy) || !storable(v.Comment):
		return domain.Invalidf("a price table's author and comment must be UTF-8 text without NUL characters")
	case len(v.Table) == 0 || !utf8.Valid(v.Table) || !json.Valid(v.Table):
		return domain.Invalidf("price table %s: the table must be JSON in UTF-8", v.Version)
	}
	if v.CreatedAt.IsZero() {
		v.CreatedAt = time.Now()
	}
	n, err := s.write.Prices.insert(ctx, v)
	if err != nil {
		return fmt.Errorf("store price table %s: %w", v.Version, err)
	}
	if n == 0 {
		return &domain.Error{Kind: domain.KindConflict, Message: fmt.Sprintf("price table version %s is already stored", v.Version)}
	}
	return nil
}

// CurrentPriceTable returns the newest version: the latest CreatedAt, the
// last stored among equals. ErrNotFound when none is stored.
func (s *Store) CurrentPriceTable(ctx context.Context) (ports.PriceTableVersion, error) {
	v, err := s.read.Prices.current(ctx)
	if err != nil {
		return ports.PriceTableVersion{}, s.wrap("price table", err)
	}
	return v, nil
}

// GetPriceTable returns one version, ErrNotFound if absent.
func (s *Store) GetPriceTable(ctx context.Context, version string) (ports.PriceTableVersion, error) {
	if !storable(version) {
		return ports.PriceTableVersion{}, notFound("price table", nil)
	}
	v, err := s.read.Prices.get(ctx, version)
	if err != nil {
		return ports.PriceTableVersion{}, s.wrap("price table", err)
	}
	return v, nil
}

// ListPriceTables returns every version's metadata, newest first as
// CurrentPriceTable orders them, Table nil. None is an empty list.
func (s *Store) ListPriceTables(ctx context.Context) ([]ports.PriceTableVersion, error) {
	vs, err := s.read.Prices.list(ctx)
	if err != nil {
		return nil, fmt.Errorf("list price tables: %w", err)
	}
	return vs, nil
}

func priceFromRow[R ~priceRow](row R) ports.PriceTableVersion {
	r := priceRow(row)
	v := ports.PriceTableVersion{Version: r.Version, CreatedAt: time.Time(r.CreatedAt), CreatedBy: r.CreatedBy, Comment: r.Comment}
	if r.Body != "" {
		v.Table = []byte(r.Body)
	}
	return v
}
