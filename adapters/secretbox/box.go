// Package secretbox encrypts upstream API keys at rest, with AES-256-GCM.
//
// # Keys
//
// The encryption key is derived with HKDF-SHA256 (info "relay upstream api
// keys v1") from UPSTREAM_KEY_SECRET, or from SECRET_KEY when that is
// unset (KeyFromConfig). Deriving rather than using the secret directly
// accepts a secret of any form (hex, base64, a long phrase) and keeps the
// key apart from the JWT key, which SECRET_KEY is itself. A secret needs
// at least 16 bytes; 32 random bytes (openssl rand -hex 32) are best, as
// HKDF does not strengthen a weak one.
//
// # Format
//
// A ciphertext is one string: "v1:<key id>:<base64url(nonce||ciphertext||tag)>",
// with a random 96-bit nonce. The key id is the first 4 bytes of a SHA-256
// of the key, in hex: it says which key opens it and reveals nothing of the
// key. The associated data are the "v1:<key id>:" header and the
// upstream's id, so a ciphertext copied to another upstream's row, or
// relabelled, does not open.
//
// # Rotation
//
// A Box encrypts with its Current key and opens with it or any Previous
// one. To rotate: set UPSTREAM_KEY_SECRET to the new secret and give the
// old one as a previous secret (for a key derived from SECRET_KEY, the old
// SECRET_KEY); on start the relay re-encrypts every stored key for which
// NeedsRotation is true (Reseal); after that the previous secret can go.
// Changing SECRET_KEY while UPSTREAM_KEY_SECRET is unset changes the key
// too, so the old SECRET_KEY must then be given as a previous secret.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

const (
	version = "v1"
	// hkdfInfo must never change: every stored key depends on it.
	hkdfInfo = "relay upstream api keys v1"
	keyIDTag = "relay upstream key id v1\x00"
	// MinSecretLen is the shortest secret a key is derived from, as for
	// SECRET_KEY.
	MinSecretLen = 16
)

var b64 = base64.RawURLEncoding

// Errors, for errors.Is. None of their messages holds key or plaintext.
var (
	ErrNoKey      = errors.New("secretbox: the box has no current key")
	ErrMalformed  = errors.New("secretbox: malformed ciphertext")
	ErrUnknownKey = errors.New("secretbox: ciphertext is under a key the box does not hold")
	ErrOpen       = errors.New("secretbox: ciphertext does not authenticate (tampered with, or another upstream's)")
)

// Key is one AES-256-GCM key. Like Secret it prints as its id only.
type Key struct{ k *keyMaterial }

type keyMaterial struct {
	id   string
	aead cipher.AEAD
}

// DeriveKey derives the key from a configured secret.
func DeriveKey(secret string) (Key, error) {
	if len(secret) < MinSecretLen {
		return Key{}, fmt.Errorf("must be at least %d bytes", MinSecretLen)
	}
	raw, err := hkdf.Key(sha256.New, []byte(secret), nil, hkdfInfo, 32)
	if err != nil {
		return Key{}, fmt.Errorf("derive key: %w", err)
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return Key{}, fmt.Errorf("aes: %w", err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return Key{}, fmt.Errorf("gcm: %w", err)
	}
	sum := sha256.Sum256(append([]byte(keyIDTag), raw...))
	return Key{k: &keyMaterial{id: hex.EncodeToString(sum[:4]), aead: aead}}, nil
}

// KeyFromConfig derives the key from UPSTREAM_KEY_SECRET, or from
// SECRET_KEY when that is empty. The values come from the caller's config;
// nothing here reads the environment.
func KeyFromConfig(upstreamKeySecret, secretKey string) (Key, error) {
	if upstreamKeySecret != "" {
		k, err := DeriveKey(upstreamKeySecret)
		if err != nil {
			return Key{}, fmt.Errorf("upstream_key_secret (UPSTREAM_KEY_SECRET): %w", err)
		}
		return k, nil
	}
	k, err := DeriveKey(secretKey)
	if err != nil {
		return Key{}, fmt.Errorf("secret_key (SECRET_KEY), which upstream keys are encrypted with while UPSTREAM_KEY_SECRET is unset: %w", err)
	}
	return k, nil
}

// ID is the key's fingerprint, as it appears in its ciphertexts.
func (k Key) ID() string {
	if k.k == nil {
		return ""
	}
	return k.k.id
}

func (k Key) String() string { return "secretbox.Key(" + k.ID() + ")" }

// Format prints the id only, for every verb.
func (k Key) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// Box encrypts with Current and opens with Current or any of Previous.
type Box struct {
	Current  Key
	Previous []Key
}

// Seal encrypts plaintext for the upstream with id upstreamID.
func (b Box) Seal(plaintext Secret, upstreamID string) (string, error) {
	if b.Current.k == nil {
		return "", ErrNoKey
	}
	header := version + ":" + b.Current.k.id + ":"
	sealed := b.Current.k.aead.Seal(nil, nil, []byte(plaintext.Reveal()), []byte(header+upstreamID))
	return header + b64.EncodeToString(sealed), nil
}

// Open decrypts a ciphertext Seal made for the same upstream id.
func (b Box) Open(ciphertext, upstreamID string) (Secret, error) {
	v, id, body, ok := split(ciphertext)
	if !ok {
		return Secret{}, ErrMalformed
	}
	if v != version {
		return Secret{}, fmt.Errorf("%w: version %.8q", ErrMalformed, v)
	}
	sealed, err := b64.DecodeString(body)
	if err != nil {
		return Secret{}, ErrMalformed
	}
	aad := []byte(version + ":" + id + ":" + upstreamID)
	found := false
	for _, k := range b.keys() {
		if k.k == nil || k.k.id != id {
			continue
		}
		found = true // ids are 32 bits: on the rare collision, try every match
		if plain, err := k.k.aead.Open(nil, nil, sealed, aad); err == nil {
			return NewSecret(string(plain)), nil
		}
	}
	if !found {
		return Secret{}, fmt.Errorf("%w: key id %s", ErrUnknownKey, id)
	}
	return Secret{}, ErrOpen
}

// NeedsRotation reports whether ciphertext is not under the current key in
// the current format, so the caller should Reseal it and store the result.
func (b Box) NeedsRotation(ciphertext string) bool {
	v, id, _, ok := split(ciphertext)
	return !ok || v != version || id != b.Current.ID()
}

// Reseal opens ciphertext and seals it again under the current key.
func (b Box) Reseal(ciphertext, upstreamID string) (string, error) {
	plain, err := b.Open(ciphertext, upstreamID)
	if err != nil {
		return "", err
	}
	return b.Seal(plain, upstreamID)
}

func (b Box) keys() []Key { return append([]Key{b.Current}, b.Previous...) }

func split(ciphertext string) (version, keyID, body string, ok bool) {
	version, rest, ok1 := strings.Cut(ciphertext, ":")
	keyID, body, ok2 := strings.Cut(rest, ":")
	return version, keyID, body, ok1 && ok2 && keyID != "" && body != ""
}
