package secretbox

import "github.com/relaystation/relay/ports"

// Sealer is a Box as the domain's ports.SecretSealer: plaintext strings in
// and out, for the one place (the upstream registry) that must hold a key
// in the clear to hand it to the transport.
type Sealer struct{ Box Box }

var _ ports.SecretSealer = Sealer{}

// Seal seals plaintext for upstreamID.
func (s Sealer) Seal(plaintext, upstreamID string) (string, error) {
	return s.Box.Seal(NewSecret(plaintext), upstreamID)
}

// Open opens a key sealed for upstreamID.
func (s Sealer) Open(sealed, upstreamID string) (string, error) {
	v, err := s.Box.Open(sealed, upstreamID)
	if err != nil {
		return "", err
	}
	return v.Reveal(), nil
}

// NeedsRotation reports whether sealed was sealed with a previous key.
func (s Sealer) NeedsRotation(sealed string) bool { return s.Box.NeedsRotation(sealed) }
