package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
)

// objectRow is an owned_objects row, and InsertObject's parameters.
type objectRow = struct {
	Kind          string
	ID            string
	KeyID         uuid.UUID
	CreatedAt     Time
	ReservationID string
	Reserved      int64
	SettledAt     *Time
	PollAfter     Time
	ReservedCost  int64
	Upstream      string
}

type objectKeyParams = struct {
	Kind string
	ID   string
}

type ownedAmongParams[L ~[]string] = struct {
	Kind  string
	KeyID uuid.UUID
	Ids   L
}

type unsettledParams = struct {
	Now     Time
	MaxRows int64
}

type pollAfterParams = struct {
	PollAfter Time
	ID        string
}

type settledParams = struct {
	SettledAt *Time
	ID        string
}

// objectSQL is an engine's sqlc queries on owned_objects.
type objectSQL[L ~[]string, Row, Insert ~objectRow, Get ~objectKeyParams, Among ~ownedAmongParams[L], Due ~unsettledParams, Poll ~pollAfterParams, Settle ~settledParams] interface {
	InsertObject(ctx context.Context, arg Insert) (int64, error)
	GetObject(ctx context.Context, arg Get) (Row, error)
	OwnedAmong(ctx context.Context, arg Among) ([]string, error)
	UnsettledBatches(ctx context.Context, arg Due) ([]Row, error)
	SetBatchPollAfter(ctx context.Context, arg Poll) (int64, error)
	MarkBatchSettled(ctx context.Context, arg Settle) (int64, error)
}

// ObjectQueries are an engine's owned_objects queries in domain terms.
type ObjectQueries struct {
	insert       func(ctx context.Context, o domain.OwnedObject) (int64, error)
	get          func(ctx context.Context, kind domain.ObjectKind, id string) (domain.OwnedObject, error)
	ownedAmong   func(ctx context.Context, kind domain.ObjectKind, keyID uuid.UUID, ids []string) ([]string, error)
	unsettled    func(ctx context.Context, now time.Time, n int) ([]domain.OwnedObject, error)
	setPollAfter func(ctx context.Context, id string, at time.Time) (int64, error)
	markSettled  func(ctx context.Context, id string, at time.Time) (int64, error)
}

// BindObjects binds an engine's sqlc queries on owned_objects.
func BindObjects[L ~[]string, Row, Insert ~objectRow, Get ~objectKeyParams, Among ~ownedAmongParams[L], Due ~unsettledParams, Poll ~pollAfterParams, Settle ~settledParams](
	q objectSQL[L, Row, Insert, Get, Among, Due, Poll, Settle],
) ObjectQueries {
	return ObjectQueries{
		insert: func(ctx context.Context, o domain.OwnedObject) (int64, error) {
			return q.InsertObject(ctx, objectRow{
				Kind:          string(o.Kind),
				ID:            o.ID,
				KeyID:         o.KeyID,
				CreatedAt:     Time(o.CreatedAt),
				ReservationID: Clean(o.ReservationID),
				Reserved:      o.Reserved,
				ReservedCost:  int64(o.ReservedCost),
				SettledAt:     (*Time)(o.SettledAt),
				PollAfter:     Time(o.PollAfter),
				Upstream:      Clean(o.Upstream),
			})
		},
		get: func(ctx context.Context, kind domain.ObjectKind, id string) (domain.OwnedObject, error) {
			r, err := q.GetObject(ctx, objectKeyParams{Kind: string(kind), ID: id})
			return objectFromRow(r), err
		},
		ownedAmong: func(ctx context.Context, kind domain.ObjectKind, keyID uuid.UUID, ids []string) ([]string, error) {
			return q.OwnedAmong(ctx, ownedAmongParams[L]{Kind: string(kind), KeyID: keyID, Ids: L(ids)})
		},
		unsettled: func(ctx context.Context, now time.Time, n int) ([]domain.OwnedObject, error) {
			rows, err := q.UnsettledBatches(ctx, unsettledParams{Now: Time(now), MaxRows: limit(n)})
			return mapRows(rows, err, func(r Row) (domain.OwnedObject, error) { return objectFromRow(r), nil })
		},
		setPollAfter: func(ctx context.Context, id string, at time.Time) (int64, error) {
			return q.SetBatchPollAfter(ctx, pollAfterParams{PollAfter: Time(at), ID: id})
		},
		markSettled: func(ctx context.Context, id string, at time.Time) (int64, error) {
			return q.MarkBatchSettled(ctx, settledParams{SettledAt: (*Time)(&at), ID: id})
		},
	}
}

// PutObject records o; see ports.ObjectStore. The first owner of a kind and
// id stays: recording it again is a no-op for that key, a conflict for any
// other.
func (s *Store) PutObject(ctx context.Context, o domain.OwnedObject) error {
	if err := validObject(o.Kind, o.ID); err != nil {
		return err
	}
	n, err := s.write.Objects.insert(ctx, o)
	if err != nil {
		return fmt.Errorf("record %s %s: %w", o.Kind, o.ID, err)
	}
	if n == 1 {
		return nil
	}
	// Already recorded (objects are never deleted, so it is still there).
	// The read goes where the insert went, so it sees the row that won: on
	// PostgreSQL a new statement under READ COMMITTED sees a row that a
	// concurrent writer committed, even one the insert waited for; on
	// SQLite the writer is the one connection that wrote it.
	prev, err := s.write.Objects.get(ctx, o.Kind, o.ID)
	if err != nil {
		return s.wrap(fmt.Sprintf("record %s %s", o.Kind, o.ID), err)
	}
	if prev.KeyID != o.KeyID {
		return &domain.Error{Kind: domain.KindConflict, Message: fmt.Sprintf("%s %s is owned by another key", o.Kind, o.ID)}
	}
	return nil
}

// GetObject returns the recorded object, ErrNotFound if there is none.
func (s *Store) GetObject(ctx context.Context, kind domain.ObjectKind, id string) (domain.OwnedObject, error) {
	if !kind.Valid() || !storable(id) {
		return domain.OwnedObject{}, notFound(objectName(kind), nil)
	}
	o, err := s.read.Objects.get(ctx, kind, id)
	if err != nil {
		return domain.OwnedObject{}, s.wrap(objectName(kind), err)
	}
	return o, nil
}

// OwnedAmong returns those of ids that keyID owns.
func (s *Store) OwnedAmong(ctx context.Context, kind domain.ObjectKind, keyID uuid.UUID, ids []string) ([]string, error) {
	ids = slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return !storable(id) })
	if len(ids) == 0 {
		return nil, nil
	}
	out, err := s.read.Objects.ownedAmong(ctx, kind, keyID, ids)
	if err != nil {
		return nil, fmt.Errorf("owned %s ids: %w", kind, err)
	}
	return out, nil
}

// UnsettledBatches returns batches due for reconciliation, oldest first.
// A limit of 0 or less takes the default page size.
func (s *Store) UnsettledBatches(ctx context.Context, now time.Time, n int) ([]domain.OwnedObject, error) {
	out, err := s.read.Objects.unsettled(ctx, now, n)
	if err != nil {
		return nil, fmt.Errorf("unsettled batches: %w", err)
	}
	return out, nil
}

// SetBatchPollAfter sets when the reconciler next looks at the batch;
// ErrNotFound if no such batch is recorded.
func (s *Store) SetBatchPollAfter(ctx context.Context, id string, at time.Time) error {
	return updateBatch(id, "set poll time of batch", func() (int64, error) {
		return s.write.Objects.setPollAfter(ctx, id, at)
	})
}

// MarkBatchSettled sets the batch's SettledAt; ErrNotFound if absent.
func (s *Store) MarkBatchSettled(ctx context.Context, id string, at time.Time) error {
	return updateBatch(id, "settle batch", func() (int64, error) {
		return s.write.Objects.markSettled(ctx, id, at)
	})
}

// updateBatch runs update, a write to the recorded batch id; ErrNotFound
// if there is none.
func updateBatch(id, op string, update func() (int64, error)) error {
	if !storable(id) {
		return notFound(string(domain.ObjectBatch), nil)
	}
	n, err := update()
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, id, err)
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

// objectName names kind in a caller-safe message.
func objectName(kind domain.ObjectKind) string {
	if kind.Valid() {
		return string(kind)
	}
	return "object"
}

func objectFromRow(r objectRow) domain.OwnedObject {
	return domain.OwnedObject{
		Kind:          domain.ObjectKind(r.Kind),
		ID:            r.ID,
		KeyID:         r.KeyID,
		CreatedAt:     time.Time(r.CreatedAt),
		ReservationID: r.ReservationID,
		Reserved:      r.Reserved,
		ReservedCost:  domain.Nanodollars(r.ReservedCost),
		SettledAt:     (*time.Time)(r.SettledAt),
		PollAfter:     time.Time(r.PollAfter),
		Upstream:      r.Upstream,
	}
}
