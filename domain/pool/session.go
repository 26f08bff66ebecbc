package pool

import (
	"crypto/sha256"
	"encoding/hex"
)

// SessionKey is the key a request's session is pinned under. The session
// is the first of these that is set: the X-Claude-Code-Session-Id header,
// the body's metadata.user_id, the proxy key's id.
//
// The key is a hash, scoped to the proxy key, so that a pin store holds no
// client identifiers, every entry has the same small size whatever a
// client sends, and one key's clients can neither share nor steer another
// key's pins. Its first byte says which source it came from, for debugging.
func SessionKey(proxyKeyID, claudeSessionID, userID string) string {
	src, id := "k", proxyKeyID
	switch {
	case claudeSessionID != "":
		src, id = "c", claudeSessionID
	case userID != "":
		src, id = "u", userID
	}
	// The hash of the parts, each followed by a NUL, built on the stack
	// (a session id longer than the buffer moves it to the heap, no more).
	var stack [256]byte
	buf := stack[:0]
	for _, part := range [...]string{"relay session pin v1", proxyKeyID, src, id} {
		buf = append(buf, part...)
		buf = append(buf, 0)
	}
	sum := sha256.Sum256(buf)
	var out [2 + 32]byte
	out[0], out[1] = src[0], '.'
	hex.Encode(out[2:], sum[:16])
	return string(out[:])
}
