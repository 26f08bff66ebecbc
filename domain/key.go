package domain

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// KeyPrefix starts every proxy key the relay issues.
const KeyPrefix = "sk-proxy-"

// keySecretBytes is the entropy of a proxy key: 32 random bytes, base62.
const keySecretBytes = 32

// displayChars is how many characters of the secret part a key_prefix shows.
const displayChars = 4

// APIKey is a proxy key as the relay knows it. The secret itself is never
// stored: only KeyHash, a keyed HMAC of it.
type APIKey struct {
	ID             uuid.UUID
	Name           string
	Description    string
	KeyHash        string // hex HMAC-SHA256 of the full key
	KeyPrefix      string // e.g. "sk-proxy-AbC1…", safe to display
	TokenLimit     *int64 // nil = unlimited
	TokensUsed     int64
	RateLimitTier  string
	IsActive       bool
	ExpiresAt      *time.Time
	AllowedIPs     []netip.Prefix // empty = any address
	AllowedDomains []string       // empty = any origin
	// AllowedModels are model ids or path.Match globs the key may use;
	// empty = any model.
	AllowedModels []string
	// Budgets are the key's money budgets (at most 8; domain/budget
	// measures and enforces them).
	Budgets []KeyBudget
	// UpstreamGroup names the upstream group the key's traffic goes to;
	// "" is the default group.
	UpstreamGroup string
	CreatedAt     time.Time
	UpdatedAt     time.Time
	LastUsedAt    *time.Time
	DeletedAt     *time.Time
}

// Usable reports whether the key may authenticate at time now, and if not,
// a caller-safe reason: "deleted", "disabled" or "expired".
func (k *APIKey) Usable(now time.Time) (bool, string) {
	why := k.Unusable(now)
	return why == ReasonNone, string(why)
}

// Unusable is why the key may not authenticate at time now: one of
// ReasonKeyDeleted, ReasonKeyDisabled and ReasonKeyExpired, or ReasonNone.
func (k *APIKey) Unusable(now time.Time) Reason {
	switch {
	case k.DeletedAt != nil:
		return ReasonKeyDeleted
	case !k.IsActive:
		return ReasonKeyDisabled
	case k.ExpiresAt != nil && !now.Before(*k.ExpiresAt):
		return ReasonKeyExpired
	}
	return ReasonNone
}

// AllowsIP reports whether addr is inside the key's allow-list. An empty
// list allows every address.
func (k *APIKey) AllowsIP(addr netip.Addr) bool {
	if len(k.AllowedIPs) == 0 {
		return true
	}
	addr = addr.Unmap()
	for _, p := range k.AllowedIPs {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// KeyHasher computes the keyed hash under which proxy keys are stored and
// looked up. HMAC-SHA256 suits 256-bit random tokens: brute force is
// hopeless, so a slow KDF would only cost latency on every request.
type KeyHasher struct {
	secret []byte
	macs   *sync.Pool // of hash.Hash keyed with secret: one per request is garbage
}

// NewKeyHasher returns a hasher keyed with secret.
func NewKeyHasher(secret []byte) KeyHasher {
	secret = append([]byte(nil), secret...)
	return KeyHasher{secret: secret, macs: &sync.Pool{New: func() any { return hmac.New(sha256.New, secret) }}}
}

// Hash returns the hex HMAC-SHA256 of key.
func (h KeyHasher) Hash(key string) string {
	var m hash.Hash
	if h.macs != nil {
		m = h.macs.Get().(hash.Hash)
		m.Reset()
		defer h.macs.Put(m)
	} else {
		m = hmac.New(sha256.New, h.secret)
	}
	m.Write([]byte(key))
	var sum [sha256.Size]byte
	return hex.EncodeToString(m.Sum(sum[:0]))
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// NewKeySecret returns a fresh proxy key ("sk-proxy-" + 43 base62 chars,
// from 32 random bytes) and its display prefix.
func NewKeySecret() (key, display string, err error) {
	var b [keySecretBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	key = KeyPrefix + encodeBase62(b[:])
	return key, DisplayPrefix(key), nil
}

// DisplayPrefix is the part of a key that may be shown after creation.
func DisplayPrefix(key string) string {
	n := len(KeyPrefix) + displayChars
	if len(key) < n {
		n = len(key)
	}
	return key[:n] + "…"
}

// LooksLikeProxyKey is a cheap syntactic check before any lookup.
func LooksLikeProxyKey(s string) bool {
	return strings.HasPrefix(s, KeyPrefix) && len(s) > len(KeyPrefix)+16 && len(s) < 256
}

// encodeBase62 encodes b as a fixed-width base62 string (43 chars for 32 bytes).
func encodeBase62(b []byte) string {
	// Big-endian long division; 32 bytes -> 43 base62 digits.
	num := append([]byte(nil), b...)
	const width = 43
	out := make([]byte, width)
	for i := width - 1; i >= 0; i-- {
		var rem uint
		for j := range num {
			acc := rem<<8 | uint(num[j])
			num[j] = byte(acc / 62)
			rem = acc % 62
		}
		out[i] = base62[rem]
	}
	return string(out)
}

// KeyBudget is one money budget of a key as it is stored: a limit over a
// window. domain/budget gives it meaning (budget.FromKey); it is spelled
// here because a key carries it and domain/budget imports this package.
type KeyBudget struct {
	// Window is "5h", "day", "week", "month" or "total".
	Window string
	Limit  Nanodollars
	// TimeZone is the IANA zone of a day, week or month window; "" means
	// the relay's default.
	TimeZone string
}

// KeyFilter selects keys for the admin list. Cursor pagination is by
// (CreatedAt, ID) descending: newest first.
type KeyFilter struct {
	Active       *bool
	NameContains string
	After        *KeyCursor
	Limit        int
}

// KeyCursor is the position after which a key listing continues.
type KeyCursor struct {
	CreatedAt time.Time
	ID        uuid.UUID
}
