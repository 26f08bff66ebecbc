package domain

import (
	"time"

	"github.com/google/uuid"
)

// ObjectKind names the upstream objects the relay tracks ownership of.
// Batches and files live in the upstream workspace that every proxy key
// shares, so the relay records which key created each one and hides it from
// all others.
type ObjectKind string

const (
	ObjectBatch ObjectKind = "batch"
	ObjectFile  ObjectKind = "file"
)

// Valid reports whether k is a known kind.
func (k ObjectKind) Valid() bool { return k == ObjectBatch || k == ObjectFile }

// OwnedObject is an upstream object created through the relay.
type OwnedObject struct {
	Kind      ObjectKind
	ID        string // the upstream's id, e.g. msgbatch_..., file_...
	KeyID     uuid.UUID
	CreatedAt time.Time
	// Batches only. ReservationID names the batch's quota reservation in
	// the ledger and Reserved its size (the upper bound of all its
	// requests); SettledAt is set once the reconciler has recorded the
	// batch's actual usage and settled the reservation.
	ReservationID string
	Reserved      int64
	// ReservedCost is the batch's money reservation (keys with budgets).
	ReservedCost Nanodollars
	SettledAt    *time.Time
	// PollAfter: the reconciler does not look at the batch again before.
	PollAfter time.Time
	// Upstream is the id of the upstream that created the object: every
	// later request naming it must go there ("" for objects recorded
	// before the upstream pool, which any upstream is tried for).
	Upstream string
}
