package sqlstore

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"time"
)

// Time is a timestamp column, kept to the microsecond by both engines:
// timestamptz on PostgreSQL, integer microseconds since the Unix epoch on
// SQLite. Both drivers go through Scan and Value. Value hands over a
// time.Time, which pgx encodes natively and which the SQLite driver, opened
// with _time_integer_format=unix_micro, binds as microseconds.
type Time time.Time

// Scan reads a PostgreSQL time or SQLite microseconds, in UTC.
func (t *Time) Scan(src any) error {
	switch v := src.(type) {
	case time.Time:
		*t = Time(v.UTC())
	case int64:
		*t = Time(time.UnixMicro(v).UTC())
	default:
		return fmt.Errorf("scan %T into a timestamp", src)
	}
	return nil
}

// Value implements driver.Valuer.
func (t Time) Value() (driver.Value, error) { return time.Time(t), nil }

// JSONList is a list of strings held as a JSON array in a TEXT column:
// SQLite's stand-in for PostgreSQL's text[]. A nil list is stored as "[]".
type JSONList []string

// Scan reads a JSON array of strings.
func (l *JSONList) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("scan %T into a JSON list", src)
	}
	var out []string
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Errorf("stored JSON list: %w", err)
	}
	*l = out
	return nil
}

// Value implements driver.Valuer.
func (l JSONList) Value() (driver.Value, error) {
	if l == nil {
		return "[]", nil
	}
	b, err := json.Marshal([]string(l))
	if err != nil {
		return nil, fmt.Errorf("encode JSON list: %w", err)
	}
	return string(b), nil
}
