package admin

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
)

// Cursors are opaque to clients: base64url of "unix-nanos|id". They carry
// the sort position only, never a filter, so a forged cursor can only skip
// within what the caller may already see.

func encodeCursor(t time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(t.UnixNano(), 10) + "|" + id))
}

func decodeCursor(s string) (time.Time, string, error) {
	bad := domain.Invalidf("invalid cursor")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return time.Time{}, "", bad
	}
	ns, id, ok := strings.Cut(string(b), "|")
	if !ok || id == "" {
		return time.Time{}, "", bad
	}
	n, err := strconv.ParseInt(ns, 10, 64)
	if err != nil {
		return time.Time{}, "", bad
	}
	return time.Unix(0, n).UTC(), id, nil
}

func encodeKeyCursor(c domain.KeyCursor) string { return encodeCursor(c.CreatedAt, c.ID.String()) }

func decodeKeyCursor(s string) (domain.KeyCursor, error) {
	t, id, err := decodeCursor(s)
	if err != nil {
		return domain.KeyCursor{}, err
	}
	u, err := uuid.Parse(id)
	if err != nil {
		return domain.KeyCursor{}, domain.Invalidf("invalid cursor")
	}
	return domain.KeyCursor{CreatedAt: t, ID: u}, nil
}

func encodeLogCursor(c domain.LogCursor) string { return encodeCursor(c.Time, c.RequestID) }

func decodeLogCursor(s string) (domain.LogCursor, error) {
	t, id, err := decodeCursor(s)
	if err != nil {
		return domain.LogCursor{}, err
	}
	if !validRequestID(id) {
		// A forged id could hold NUL or invalid UTF-8, which PostgreSQL
		// refuses as text: answer 400 here rather than 500 there.
		return domain.LogCursor{}, domain.Invalidf("invalid cursor")
	}
	return domain.LogCursor{Time: t, RequestID: id}, nil
}

// maxRequestIDLen bounds the request id in a log cursor, as the HTTP
// adapter bounds the ids it issues or adopts.
const maxRequestIDLen = 128

// validRequestID reports whether id has the shape of the request ids the
// relay stores: 1-128 characters of A-Z, a-z, 0-9, '_', '.' or '-'.
func validRequestID(id string) bool {
	if len(id) < 1 || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
