package sqlstore

import (
	"errors"
	"fmt"

	"github.com/relaystation/relay/domain"
)

// The driver failures the Store gives a meaning to. A Dialect reports which
// of them a driver error is.
var (
	ErrDBNotFound        = errors.New("no rows")
	ErrDBDuplicatedEntry = errors.New("duplicated entry")
	ErrDBForeignKey      = errors.New("foreign key violation")
	ErrDBCheck           = errors.New("check constraint violation")
	// ErrDBBadText is text the column cannot hold: PostgreSQL refuses NUL
	// and invalid UTF-8, SQLite stores any bytes.
	ErrDBBadText = errors.New("text the column cannot hold")
)

// Dialect tells one driver's errors apart.
type Dialect interface {
	// Classify returns the ErrDB* value err stands for, or nil for any
	// other error.
	Classify(err error) error
}

// is reports whether err is the driver failure kind, one of the ErrDB*.
func (s *Store) is(err, kind error) bool {
	return err != nil && s.dialect.Classify(err) == kind
}

func notFound(what string, err error) error {
	return &domain.Error{Kind: domain.KindNotFound, Message: what + " not found", Err: err}
}

// wrap maps a missing row to ErrNotFound; anything else stays an internal
// error, wrapped with what was being done.
func (s *Store) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if s.is(err, ErrDBNotFound) {
		return notFound(op, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
