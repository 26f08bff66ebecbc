package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/relaystation/relay/adapters/postgres/pgdb"
	"github.com/relaystation/relay/domain"
)

// PutObject records o; see ports.ObjectStore. The first owner of a kind and
// id stays: recording it again is a no-op for that key, a conflict for any
// other.
func (s *Store) PutObject(ctx context.Context, o domain.OwnedObject) error {
	if err := validObject(o.Kind, o.ID); err != nil {
		return err
	}
	n, err := s.q.InsertObject(ctx, pgdb.InsertObjectParams{
		Kind:          string(o.Kind),
		ID:            o.ID,
		KeyID:         o.KeyID,
		CreatedAt:     o.CreatedAt,
		ReservationID: clean(o.ReservationID),
		Reserved:      o.Reserved,
		SettledAt:     o.SettledAt,
		PollAfter:     o.PollAfter,
	})
	if err != nil {
		return fmt.Errorf("record %s %s: %w", o.Kind, o.ID, err)
	}
	if n == 1 {
		return nil
	}
	// Already recorded (objects are never deleted, so it is still there).
	// This is a new statement, so under READ COMMITTED it sees the row a
	// concurrent writer committed, even one the insert waited for.
	row, err := s.q.GetObject(ctx, pgdb.GetObjectParams{Kind: string(o.Kind), ID: o.ID})
	if err != nil {
		return wrap(fmt.Sprintf("record %s %s", o.Kind, o.ID), err)
	}
	if row.KeyID != o.KeyID {
		return &domain.Error{Kind: domain.KindConflict, Message: fmt.Sprintf("%s %s is owned by another key", o.Kind, o.ID)}
	}
	return nil
}

// GetObject returns the recorded object, ErrNotFound if there is none.
func (s *Store) GetObject(ctx context.Context, kind domain.ObjectKind, id string) (domain.OwnedObject, error) {
	if !kind.Valid() || !storable(id) {
		return domain.OwnedObject{}, notFound(objectName(kind), nil)
	}
	row, err := s.q.GetObject(ctx, pgdb.GetObjectParams{Kind: string(kind), ID: id})
	if err != nil {
		return domain.OwnedObject{}, wrap(objectName(kind), err)
	}
	return objectFromRow(row), nil
}

// OwnedAmong returns those of ids that keyID owns.
func (s *Store) OwnedAmong(ctx context.Context, kind domain.ObjectKind, keyID uuid.UUID, ids []string) ([]string, error) {
	ids = slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return !storable(id) })
	if len(ids) == 0 {
		return nil, nil
	}
	out, err := s.q.OwnedAmong(ctx, pgdb.OwnedAmongParams{Kind: string(kind), KeyID: keyID, Ids: ids})
	if err != nil {
		return nil, fmt.Errorf("owned %s ids: %w", kind, err)
	}
	return out, nil
}

// UnsettledBatches returns batches due for reconciliation, oldest first.
// A limit of 0 or less takes the default page size.
func (s *Store) UnsettledBatches(ctx context.Context, now time.Time, n int) ([]domain.OwnedObject, error) {
	rows, err := s.q.UnsettledBatches(ctx, pgdb.UnsettledBatchesParams{Now: now, MaxRows: limit(n)})
	if err != nil {
		return nil, fmt.Errorf("unsettled batches: %w", err)
	}
	out := make([]domain.OwnedObject, 0, len(rows))
	for _, r := range rows {
		out = append(out, objectFromRow(r))
	}
	return out, nil
}

// SetBatchPollAfter sets when the reconciler next looks at the batch;
// ErrNotFound if no such batch is recorded.
func (s *Store) SetBatchPollAfter(ctx context.Context, id string, at time.Time) error {
	if !storable(id) {
		return notFound(string(domain.ObjectBatch), nil)
	}
	n, err := s.q.SetBatchPollAfter(ctx, pgdb.SetBatchPollAfterParams{PollAfter: at, ID: id})
	if err != nil {
		return fmt.Errorf("set poll time of batch %s: %w", id, err)
	}
	if n == 0 {
		return notFound(string(domain.ObjectBatch), nil)
	}
	return nil
}

// MarkBatchSettled sets the batch's SettledAt; ErrNotFound if absent.
func (s *Store) MarkBatchSettled(ctx context.Context, id string, at time.Time) error {
	if !storable(id) {
		return notFound(string(domain.ObjectBatch), nil)
	}
	n, err := s.q.MarkBatchSettled(ctx, pgdb.MarkBatchSettledParams{SettledAt: &at, ID: id})
	if err != nil {
		return fmt.Errorf("settle batch %s: %w", id, err)
	}
	if n == 0 {
		return notFound(string(domain.ObjectBatch), nil)
	}
	return nil
}

func validObject(kind domain.ObjectKind, id string) error {
	if !kind.Valid() {
		return domain.Invalidf("unknown object kind %q", kind)
	}
	if id == "" || !storable(id) {
		return domain.Invalidf("a %s id must be non-empty UTF-8 text without NUL characters", kind)
	}
	return nil
}

// storable reports whether s can be PostgreSQL text (no NUL, valid UTF-8).
// An id that is not was never recorded, so looking it up finds nothing,
// as on SQLite, instead of failing the query.
func storable(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// objectName names kind in a caller-safe message.
func objectName(kind domain.ObjectKind) string {
	if kind.Valid() {
		return string(kind)
	}
	return "object"
}

func objectFromRow(r pgdb.OwnedObject) domain.OwnedObject {
	return domain.OwnedObject{
		Kind:          domain.ObjectKind(r.Kind),
		ID:            r.ID,
		KeyID:         r.KeyID,
		CreatedAt:     r.CreatedAt.UTC(),
		ReservationID: r.ReservationID,
		Reserved:      r.Reserved,
		SettledAt:     utcPtr(r.SettledAt),
		PollAfter:     r.PollAfter.UTC(),
	}
}
