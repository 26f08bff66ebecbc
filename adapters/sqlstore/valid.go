package sqlstore

import (
	"strings"
	"unicode/utf8"
)

// defaultLimit applies when a listing asks for no particular page size.
const defaultLimit = 100

// maxLimit bounds a page; any real listing is far smaller.
const maxLimit = 1 << 30

// limit is the page size n asks for.
func limit(n int) int64 {
	if n <= 0 {
		return defaultLimit
	}
	return int64(min(n, maxLimit))
}

// storable reports whether s can be stored as text on both engines:
// PostgreSQL refuses NUL and invalid UTF-8. An id that is not storable was
// never recorded, so looking it up finds nothing instead of failing.
func storable(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// Clean makes s storable. Usage text comes from clients (a model name in a
// JSON body) and must never make a batch fail: the writer would retry it
// forever. Both engines store it cleaned, so both return the same records.
func Clean(s string) string {
	if storable(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}

// mapRows maps each of rows with f, failing on the first error (or at once
// on err, the query's).
func mapRows[R, D any](rows []R, err error, f func(R) (D, error)) ([]D, error) {
	if err != nil {
		return nil, err
	}
	out := make([]D, 0, len(rows))
	for _, r := range rows {
		d, err := f(r)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}
