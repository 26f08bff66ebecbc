package admin

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
)

// BulkAction is what BulkKeys does to each key.
type BulkAction string

const (
	BulkDisable BulkAction = "disable"
	BulkEnable  BulkAction = "enable"
)

// MaxBulkKeys bounds the ids of one bulk call.
const MaxBulkKeys = 500

// BulkKeysInput disables or enables many keys. A repeated id is acted on,
// and answered, once.
type BulkKeysInput struct {
	Action BulkAction
	IDs    []uuid.UUID
	// Actor is the admin asking, for the audit log.
	Actor string
}

// Validate checks the action and the ids (1 to MaxBulkKeys, none nil).
func (in BulkKeysInput) Validate() error {
	if in.Action != BulkDisable && in.Action != BulkEnable {
		return domain.Invalidf("action must be disable or enable")
	}
	if len(in.IDs) == 0 || len(in.IDs) > MaxBulkKeys {
		return domain.Invalidf("ids must hold 1 to %d key ids, got %d", MaxBulkKeys, len(in.IDs))
	}
	for i, id := range in.IDs {
		if id == uuid.Nil {
			return domain.Invalidf("ids[%d] is the nil UUID", i)
		}
	}
	return nil
}

// BulkOutcome is what became of one key of a bulk call.
type BulkOutcome string

const (
	BulkOK       BulkOutcome = "ok"        // the key is in the asked state
	BulkNotFound BulkOutcome = "not_found" // no such key, or a deleted one
)

// BulkKeyResult is one key's outcome; Changed is false when it was already
// in the asked state (or not found).
type BulkKeyResult struct {
	ID      uuid.UUID
	Outcome BulkOutcome
	Changed bool
}

// BulkKeysReport is a bulk call's outcome per distinct id, in the order
// given, with the counts of each outcome.
type BulkKeysReport struct {
	Action       BulkAction
	Results      []BulkKeyResult
	OK, NotFound int
}

// BulkKeys disables or enables each key as DisableKey and EnableKey do (a
// change that loses a race with another writer is re-applied on the latest
// key; the key cache is invalidated), skipping the keys already in the
// asked state. Each change is logged with the admin who asked. An error
// other than a missing key stops the call there: the keys before it are
// changed, and since acting again changes nothing, the caller may repeat
// the whole call.
func (s *Service) BulkKeys(ctx context.Context, in BulkKeysInput) (BulkKeysReport, error) {
	if err := in.Validate(); err != nil {
		return BulkKeysReport{}, err
	}
	active := in.Action == BulkEnable
	r := BulkKeysReport{Action: in.Action, Results: make([]BulkKeyResult, 0, len(in.IDs))}
	seen := make(map[uuid.UUID]bool, len(in.IDs))
	changed := 0
	for _, id := range in.IDs {
		if seen[id] {
			continue
		}
		seen[id] = true
		res, err := s.bulkOne(ctx, id, active, in.Actor)
		if err != nil {
			s.log.Warn("bulk key action stopped", "action", string(in.Action), "by", in.Actor,
				"done", len(r.Results), "changed", changed, "key_id", id.String(), "error", err.Error())
			return BulkKeysReport{}, err
		}
		r.Results = append(r.Results, res)
		switch res.Outcome {
		case BulkOK:
			r.OK++
		case BulkNotFound:
			r.NotFound++
		}
		if res.Changed {
			changed++
		}
	}
	s.log.Info("bulk key action", "action", string(in.Action), "by", in.Actor,
		"keys", len(r.Results), "changed", changed, "not_found", r.NotFound)
	return r, nil
}

func (s *Service) bulkOne(ctx context.Context, id uuid.UUID, active bool, actor string) (BulkKeyResult, error) {
	res := BulkKeyResult{ID: id}
	k, err := s.GetKey(ctx, id)
	if domain.KindOf(err) == domain.KindNotFound {
		res.Outcome = BulkNotFound
		return res, nil
	}
	if err != nil {
		return BulkKeyResult{}, err
	}
	res.Outcome = BulkOK
	if k.IsActive == active {
		return res, nil
	}
	k, err = s.mutate(ctx, id, func(k *domain.APIKey) error {
		// mutate may run this more than once: decide from the key read.
		res.Changed = k.IsActive != active
		k.IsActive = active
		return nil
	})
	if domain.KindOf(err) == domain.KindNotFound {
		// Deleted since it was read.
		return BulkKeyResult{ID: id, Outcome: BulkNotFound}, nil
	}
	if err != nil {
		return BulkKeyResult{}, fmt.Errorf("bulk key action on %s: %w", id, err)
	}
	if res.Changed {
		msg := "api key disabled"
		if active {
			msg = "api key enabled"
		}
		s.log.Info(msg, "key_id", id.String(), "name", k.Name, "by", actor, "via", "bulk")
	}
	return res, nil
}
