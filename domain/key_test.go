package domain

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"sync"
	"testing"
	"time"
)

func TestKeyHasherMatchesHMACConcurrently(t *testing.T) {
	secret := []byte("s3cret-s3cret-s3cret")
	h := NewKeyHasher(secret)
	want := func(k string) string {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(k))
		return hex.EncodeToString(m.Sum(nil))
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				k := "sk-proxy-" + string(rune('a'+i%26)) + "0123456789abcdef0123456789"
				if got := h.Hash(k); got != want(k) {
					t.Errorf("Hash(%q) = %s, want %s", k, got, want(k))
					return
				}
			}
		}()
	}
	wg.Wait()
	var zero KeyHasher
	if zero.Hash("x") != hex.EncodeToString(func() []byte { m := hmac.New(sha256.New, nil); m.Write([]byte("x")); return m.Sum(nil) }()) {
		t.Error("zero KeyHasher differs from HMAC with an empty key")
	}
}

func BenchmarkKeyHasher(b *testing.B) {
	h := NewKeyHasher([]byte("s3cret-s3cret-s3cret"))
	b.ReportAllocs()
	for b.Loop() {
		h.Hash("sk-proxy-0123456789abcdef0123456789abcdef0123456")
	}
}

func TestNewKeySecret(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		key, display, err := NewKeySecret()
		if err != nil {
			t.Fatal(err)
		}
		if len(key) != len(KeyPrefix)+43 || key[:len(KeyPrefix)] != KeyPrefix || !LooksLikeProxyKey(key) {
			t.Fatalf("key %q has the wrong shape", key)
		}
		for _, c := range key[len(KeyPrefix):] {
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
				t.Fatalf("key %q is not base62", key)
			}
		}
		if display != key[:len(KeyPrefix)+4]+"…" {
			t.Fatalf("display %q for %q", display, key)
		}
		if seen[key] {
			t.Fatal("duplicate key")
		}
		seen[key] = true
	}
}

func TestKeyUsableAndAllowsIP(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	past, future := now.Add(-time.Second), now.Add(time.Hour)
	cases := []struct {
		name string
		k    APIKey
		ok   bool
		why  string
	}{
		{"active", APIKey{IsActive: true}, true, ""},
		{"disabled", APIKey{}, false, "disabled"},
		{"expired", APIKey{IsActive: true, ExpiresAt: &past}, false, "expired"},
		{"expires later", APIKey{IsActive: true, ExpiresAt: &future}, true, ""},
		{"deleted", APIKey{IsActive: true, DeletedAt: &past}, false, "deleted"},
	}
	for _, tc := range cases {
		if ok, why := tc.k.Usable(now); ok != tc.ok || why != tc.why {
			t.Errorf("%s: Usable = %v %q", tc.name, ok, why)
		}
	}
	prefixes, err := ParsePrefixes([]string{"10.0.0.0/8", "192.0.2.7", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	k := APIKey{AllowedIPs: prefixes}
	for addr, want := range map[string]bool{"10.1.2.3": true, "::ffff:10.1.2.3": true, "192.0.2.7": true, "192.0.2.8": false, "2001:db8::1": true, "2001:db9::1": false} {
		if got := k.AllowsIP(netip.MustParseAddr(addr)); got != want {
			t.Errorf("AllowsIP(%s) = %v", addr, got)
		}
	}
	if !(&APIKey{}).AllowsIP(netip.MustParseAddr("203.0.113.1")) {
		t.Error("an empty allow-list must allow any address")
	}
	if _, err := ParsePrefix("10.0.0.0/99"); KindOf(err) != KindInvalid {
		t.Errorf("bad CIDR: %v", err)
	}
}
