package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/billing"
	"github.com/relaystation/relay/domain/pricing"
	"github.com/relaystation/relay/ports"
)

const (
	maxVersionLen = 200
	maxCommentLen = 1000
)

// errNoPrices answers the pricing and repricing use cases of a relay built
// without a price table.
func errNoPrices() error {
	return &domain.Error{Kind: domain.KindUnavailable, Message: "this relay has no price table configured"}
}

// PricingView is the current price table, the policy for the models it does
// not price, and the models this replica saw requested without a price.
type PricingView struct {
	Table    *pricing.Table
	Policy   pricing.Policy
	Unpriced []billing.UnpricedModel
}

func (s *Service) pricingView() PricingView {
	return PricingView{Table: s.prices.Table(), Policy: s.prices.Policy(), Unpriced: s.prices.Unpriced()}
}

// Pricing shows the current price table.
func (s *Service) Pricing(context.Context) (PricingView, error) {
	if s.prices == nil {
		return PricingView{}, errNoPrices()
	}
	return s.pricingView(), nil
}

// PutPricesInput stores a whole new price table.
type PutPricesInput struct {
	// Table is the table as JSON (domain/pricing's format), with a version
	// not stored yet.
	Table   []byte
	Comment string
	// Actor is the admin storing it, recorded with the version.
	Actor string
}

// Validate checks the input's own fields; the table itself is validated
// when it is parsed.
func (in PutPricesInput) Validate() error {
	if strings.TrimSpace(in.Actor) == "" {
		return domain.Invalidf("the admin storing a price table must be named")
	}
	if len(in.Comment) > maxCommentLen || !validText(in.Comment) {
		return domain.Invalidf("comment must be at most %d bytes of valid UTF-8 without NUL", maxCommentLen)
	}
	return billing.PutInput{Table: in.Table, Actor: in.Actor, Comment: in.Comment}.Validate()
}

// PutPrices stores a new version of the price table, which becomes current
// at once on this replica (and within billing.DefaultPriceRefresh on the
// others). A version already stored is a conflict; an invalid table is
// refused with every problem listed.
func (s *Service) PutPrices(ctx context.Context, in PutPricesInput) (PricingView, error) {
	if err := in.Validate(); err != nil {
		return PricingView{}, err
	}
	if s.prices == nil {
		return PricingView{}, errNoPrices()
	}
	t, err := s.prices.Put(ctx, billing.PutInput{Table: in.Table, Actor: in.Actor, Comment: in.Comment})
	if err != nil {
		return PricingView{}, err
	}
	s.log.Info("price table stored", "version", t.Version, "actor", in.Actor, "models", len(t.Models))
	return s.pricingView(), nil
}

// ExtendPricesInput adds model entries to the current table, or replaces
// the entries of the same id, as a new version.
type ExtendPricesInput struct {
	// Version is the new table's version.
	Version string
	// BaseVersion, when set, must still be the current version: two
	// operators extending the same table at once cannot drop each other's
	// entries unnoticed.
	BaseVersion string
	// Models is a JSON array of entries in the price table's format.
	Models  []byte
	Comment string
	Actor   string
}

// Validate checks the version, the comment and that there are entries.
func (in ExtendPricesInput) Validate() error {
	if strings.TrimSpace(in.Version) == "" || len(in.Version) > maxVersionLen || !validText(in.Version) {
		return domain.Invalidf("version must be 1-%d bytes of valid UTF-8 without NUL", maxVersionLen)
	}
	if len(in.BaseVersion) > maxVersionLen || !validText(in.BaseVersion) {
		return domain.Invalidf("base_version must be at most %d bytes of valid UTF-8 without NUL", maxVersionLen)
	}
	if len(bytes.TrimSpace(in.Models)) == 0 {
		return domain.Invalidf("models is required")
	}
	return PutPricesInput{Table: in.Models, Comment: in.Comment, Actor: in.Actor}.Validate()
}

// ExtendPrices stores the current table with in's entries added or
// replaced by id, under in.Version; the rest of the table (its source,
// date, comment and other entries) is kept.
func (s *Service) ExtendPrices(ctx context.Context, in ExtendPricesInput) (PricingView, error) {
	if err := in.Validate(); err != nil {
		return PricingView{}, err
	}
	if s.prices == nil {
		return PricingView{}, errNoPrices()
	}
	// Another replica may have stored a newer version a moment ago.
	if err := s.prices.Refresh(ctx); err != nil {
		return PricingView{}, fmt.Errorf("refresh the price table: %w", err)
	}
	cur := s.prices.Table()
	if in.BaseVersion != "" && cur.Version != in.BaseVersion {
		return PricingView{}, domain.Errorf(domain.KindConflict,
			"the current price table is %q, not base_version %q: read it again and retry", cur.Version, in.BaseVersion)
	}
	entries, err := decodeEntries(in.Models)
	if err != nil {
		return PricingView{}, err
	}
	models := append([]pricing.Entry(nil), cur.Models...)
	at := make(map[string]int, len(models))
	for i, e := range models {
		at[e.ID] = i
	}
	for _, e := range entries {
		if i, ok := at[e.ID]; ok {
			models[i] = e
			continue
		}
		at[e.ID] = len(models)
		models = append(models, e)
	}
	next := pricing.Table{Version: in.Version, Source: cur.Source, Sources: cur.Sources, Retrieved: cur.Retrieved,
		Comment: cur.Comment, Models: models}
	b, err := json.Marshal(&next)
	if err != nil {
		return PricingView{}, fmt.Errorf("encode the extended price table: %w", err)
	}
	return s.PutPrices(ctx, PutPricesInput{Table: b, Comment: in.Comment, Actor: in.Actor})
}

// decodeEntries reads price table entries strictly: an unknown field is an
// error, not a price silently dropped.
func decodeEntries(raw []byte) ([]pricing.Entry, error) {
	bad := func(err error) error {
		return &domain.Error{Kind: domain.KindInvalid, Reason: domain.ReasonPriceTable, Err: err,
			Message: "models: " + err.Error()}
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	var entries []pricing.Entry
	if err := d.Decode(&entries); err != nil {
		return nil, bad(err)
	}
	if d.More() {
		return nil, bad(errors.New("trailing data after the list"))
	}
	if len(entries) == 0 {
		return nil, bad(errors.New("no entries"))
	}
	seen := make(map[string]bool, len(entries))
	for i, e := range entries {
		if strings.TrimSpace(e.ID) == "" {
			return nil, bad(fmt.Errorf("models[%d]: id is required", i))
		}
		if seen[e.ID] {
			return nil, bad(fmt.Errorf("models[%d]: %q is listed twice", i, e.ID))
		}
		seen[e.ID] = true
	}
	return entries, nil
}

// PriceVersions lists the stored versions of the price table, newest
// first, without their tables.
func (s *Service) PriceVersions(ctx context.Context) ([]ports.PriceTableVersion, error) {
	if s.prices == nil {
		return nil, errNoPrices()
	}
	vs, err := s.prices.Versions(ctx)
	if err != nil {
		return nil, fmt.Errorf("list price table versions: %w", err)
	}
	return vs, nil
}

// PriceVersion returns one stored version with its table, as it was stored.
func (s *Service) PriceVersion(ctx context.Context, version string) (ports.PriceTableVersion, error) {
	if version == "" || len(version) > maxVersionLen || !validText(version) {
		return ports.PriceTableVersion{}, domain.Invalidf("version must be 1-%d bytes of valid UTF-8 without NUL", maxVersionLen)
	}
	if s.prices == nil {
		return ports.PriceTableVersion{}, errNoPrices()
	}
	v, err := s.prices.Version(ctx, version)
	if errors.Is(err, domain.ErrNotFound) {
		return ports.PriceTableVersion{}, &domain.Error{Kind: domain.KindNotFound,
			Message: fmt.Sprintf("price table version %q not found", version), Err: err}
	}
	if err != nil {
		return ports.PriceTableVersion{}, fmt.Errorf("get price table version: %w", err)
	}
	return v, nil
}
