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
	h := sha256.New()
	for _, part := range [...]string{"relay session pin v1", proxyKeyID, src, id} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	var sum [sha256.Size]byte
	return src + "." + hex.EncodeToString(h.Sum(sum[:0])[:16])
}
