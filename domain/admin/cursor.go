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
	return domain.LogCursor{Time: t, RequestID: id}, nil
}
