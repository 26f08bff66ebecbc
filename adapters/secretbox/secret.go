package secretbox

import (
	"fmt"
	"log/slog"
)

// Secret holds a plaintext credential (an upstream API key) so that it
// cannot be printed by accident: every fmt verb, JSON, text marshalling and
// slog show "[REDACTED]". Only Reveal returns it, so each use is one grep
// away.
//
// It is a struct around a pointer rather than a string type: a string type
// converts back with string(s), and fmt's %p and reflection-based encoders
// print its bytes despite any String method. Here they can reach only an
// address. The zero Secret is empty.
type Secret struct{ p *string }

const redacted = "[REDACTED]"

// NewSecret wraps plaintext.
func NewSecret(plaintext string) Secret { return Secret{p: &plaintext} }

// Reveal returns the plaintext, for the one place that sends it upstream
// (or encrypts it).
func (s Secret) Reveal() string {
	if s.p == nil {
		return ""
	}
	return *s.p
}

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.Reveal() == "" }

// Last4 is what views show of the key: its last four characters, or
// nothing for a secret shorter than 12, where four would be a third of it.
func (s Secret) Last4() string {
	v := s.Reveal()
	if len(v) < 12 {
		return ""
	}
	return v[len(v)-4:]
}

func (s Secret) String() string   { return redacted }
func (s Secret) GoString() string { return "secretbox.Secret(" + redacted + ")" }

// Format redacts every verb, %d and %x included.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(s.GoString()))
		return
	}
	_, _ = f.Write([]byte(redacted))
}

func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
func (s Secret) LogValue() slog.Value         { return slog.StringValue(redacted) }

var (
	_ fmt.Formatter  = Secret{}
	_ fmt.GoStringer = Secret{}
	_ slog.LogValuer = Secret{}
)
