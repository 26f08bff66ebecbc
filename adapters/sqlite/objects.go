package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/relaystation/relay/adapters/sqlite/sqlitedb"
	"github.com/relaystation/relay/domain"
)

// PutObject records o; see ports.ObjectStore. The first owner of a kind and
// id stays: recording it again is a no-op for that key, a conflict for any
// other.
func (s *Store) PutObject(ctx context.Context, o domain.OwnedObject) error {
	if err := validObject(o.Kind, o.ID); err != nil {
		return err
	}
	n, err := s.wq.InsertObject(ctx, sqlitedb.InsertObjectParams{
		Kind:          string(o.Kind),
		ID:            o.ID,
		KeyID:         o.KeyID.String(),
		CreatedAt:     o.CreatedAt.UnixMicro(),
		ReservationID: clean(o.ReservationID),
		Reserved:      o.Reserved,
		SettledAt:     microPtr(o.SettledAt),
		PollAfter:     o.PollAfter.UnixMicro(),
	})
	if err != nil {
		return fmt.Errorf("record %s %s: %w", o.Kind, o.ID, err)
	}
	if n == 1 {
		return nil
	}
	// Already recorded (objects are never deleted, so it is still there):
	// read the owner on the writer, which saw the row that won.
	row, err := s.wq.GetObject(ctx, sqlitedb.GetObjectParams{Kind: string(o.Kind), ID: o.ID})
	if err != nil {
		return wrap(fmt.Sprintf("record %s %s", o.Kind, o.ID), err)
	}
	if row.KeyID != o.KeyID.String() {
		return &domain.Error{Kind: domain.KindConflict, Message: fmt.Sprintf("%s %s is owned by another key", o.Kind, o.ID)}
	}
	return nil
}

// GetObject returns the recorded object, ErrNotFound if there is none.
func (s *Store) GetObject(ctx context.Context, kind domain.ObjectKind, id string) (domain.OwnedObject, error) {
	if !kind.Valid() || !storable(id) {
		return domain.OwnedObject{}, notFound(objectName(kind), nil)
	}
	row, err := s.rq.GetObject(ctx, sqlitedb.GetObjectParams{Kind: string(kind), ID: id})
	if err != nil {
		return domain.OwnedObject{}, wrap(objectName(kind), err)
	}
	return objectFromRow(row)
}

// OwnedAmong returns those of ids that keyID owns.
func (s *Store) OwnedAmong(ctx context.Context, kind domain.ObjectKind, keyID uuid.UUID, ids []string) ([]string, error) {
	ids = slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return !storable(id) })
	if len(ids) == 0 {
		return nil, nil
	}
	// One JSON parameter, expanded by json_each, rather than an IN list
	// built to the length of ids.
	list, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("owned %s ids: %w", kind, err)
	}
	out, err := s.rq.OwnedAmong(ctx, sqlitedb.OwnedAmongParams{Kind: string(kind), KeyID: keyID.String(), Ids: string(list)})
	if err != nil {
		return nil, fmt.Errorf("owned %s ids: %w", kind, err)
	}
	return out, nil
}

// UnsettledBatches returns batches due for reconciliation, oldest first.
// A limit of 0 or less takes the default page size.
func (s *Store) UnsettledBatches(ctx context.Context, now time.Time, n int) ([]domain.OwnedObject, error) {
	rows, err := s.rq.UnsettledBatches(ctx, sqlitedb.UnsettledBatchesParams{Now: now.UnixMicro(), MaxRows: limit(n)})
	if err != nil {
		return nil, fmt.Errorf("unsettled batches: %w", err)
	}
	out := make([]domain.OwnedObject, 0, len(rows))
	for _, r := range rows {
		o, err := objectFromRow(r)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// SetBatchPollAfter sets when the reconciler next looks at the batch;
// ErrNotFound if no such batch is recorded.
func (s *Store) SetBatchPollAfter(ctx context.Context, id string, at time.Time) error {
	if !storable(id) {
		return notFound(string(domain.ObjectBatch), nil)
	}
	n, err := s.wq.SetBatchPollAfter(ctx, sqlitedb.SetBatchPollAfterParams{PollAfter: at.UnixMicro(), ID: id})
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
	us := at.UnixMicro()
	n, err := s.wq.MarkBatchSettled(ctx, sqlitedb.MarkBatchSettledParams{SettledAt: &us, ID: id})
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

// storable reports whether s can be an object id in both engines (the
// PostgreSQL adapter refuses NUL and invalid UTF-8). An id that is not was
// never recorded, so looking it up finds nothing on either engine.
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

func objectFromRow(r sqlitedb.OwnedObject) (domain.OwnedObject, error) {
	keyID, err := uuid.Parse(r.KeyID)
	if err != nil {
		return domain.OwnedObject{}, fmt.Errorf("%s %s: stored key id %q: %w", r.Kind, r.ID, r.KeyID, err)
	}
	return domain.OwnedObject{
		Kind:          domain.ObjectKind(r.Kind),
		ID:            r.ID,
		KeyID:         keyID,
		CreatedAt:     fromMicro(r.CreatedAt),
		ReservationID: r.ReservationID,
		Reserved:      r.Reserved,
		SettledAt:     timePtr(r.SettledAt),
		PollAfter:     fromMicro(r.PollAfter),
	}, nil
}
