package httpx_test

import (
	"math/big"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/relaystation/relay/adapters/httpx"
)

// Request ids are unique, of one fixed shape, and ordered by creation: the
// usage writer's unique index relies on the order (see NewRequestID).
func TestNewRequestIDOrderedAndUnique(t *testing.T) {
	const n = 20000
	seen := make(map[string]bool, n)
	prev := ""
	for range n {
		id := httpx.NewRequestID()
		if len(id) != 26 || !strings.HasPrefix(id, "req_") {
			t.Fatalf("id %q: want req_ and 22 characters", id)
		}
		for _, c := range id[4:] {
			if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
				t.Fatalf("id %q: %q is not base62", id, c)
			}
		}
		if seen[id] {
			t.Fatalf("id %q made twice", id)
		}
		seen[id] = true
		if id <= prev {
			t.Fatalf("id %q made after %q sorts before it", id, prev)
		}
		prev = id
	}
}

// The encoding is the UUID's 128-bit value in fixed-width base62, checked
// against math/big: the digits decode back to a version-7 UUID.
func TestNewRequestIDIsBase62OfUUIDv7(t *testing.T) {
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	for range 100 {
		id := httpx.NewRequestID()
		v := new(big.Int)
		for _, c := range id[4:] {
			v.Mul(v, big.NewInt(62))
			v.Add(v, big.NewInt(int64(strings.IndexRune(digits, c))))
		}
		if v.BitLen() > 128 {
			t.Fatalf("id %q decodes to %d bits", id, v.BitLen())
		}
		var u uuid.UUID
		v.FillBytes(u[:])
		if u.Version() != 7 || u.Variant() != uuid.RFC4122 {
			t.Fatalf("id %q decodes to %s, version %d", id, u, u.Version())
		}
	}
}
