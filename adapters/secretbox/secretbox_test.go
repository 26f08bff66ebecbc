package secretbox_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/relaystation/relay/adapters/secretbox"
)

const apiKey = "sk-ant-api03-Zx9yW8vU7tS6rQ5pO4nM3lK2jI1hG0fE-abcd"

func MustKey(tb testing.TB, secret string) secretbox.Key {
	tb.Helper()
	k, err := secretbox.DeriveKey(secret)
	if err != nil {
		tb.Fatalf("DeriveKey: %v", err)
	}
	return k
}

var (
	oldSecret = strings.Repeat("o", 32)
	newSecret = strings.Repeat("n", 32)
)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	box := secretbox.Box{Current: MustKey(t, newSecret)}
	ct, err := box.Seal(secretbox.NewSecret(apiKey), "upstream-1")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(ct, apiKey) || strings.Contains(ct, "abcd") {
		t.Fatalf("ciphertext %q shows the plaintext", ct)
	}
	if want := "v1:" + box.Current.ID() + ":"; !strings.HasPrefix(ct, want) {
		t.Fatalf("ciphertext %q, want the prefix %q", ct, want)
	}
	got, err := box.Open(ct, "upstream-1")
	if err != nil || got.Reveal() != apiKey {
		t.Fatalf("Open = %q, %v", got.Reveal(), err)
	}
	again, _ := box.Seal(secretbox.NewSecret(apiKey), "upstream-1")
	if again == ct {
		t.Fatal("two seals of one key are equal: the nonce is not fresh")
	}
}

func TestTamperingIsDetected(t *testing.T) {
	t.Parallel()
	box := secretbox.Box{Current: MustKey(t, newSecret)}
	ct, _ := box.Seal(secretbox.NewSecret(apiKey), "u1")
	head, body := ct[:strings.LastIndex(ct, ":")+1], ct[strings.LastIndex(ct, ":")+1:]
	raw, _ := base64.RawURLEncoding.DecodeString(body)
	for i := range raw {
		flipped := bytes.Clone(raw)
		flipped[i] ^= 0x01
		if _, err := box.Open(head+base64.RawURLEncoding.EncodeToString(flipped), "u1"); !errors.Is(err, secretbox.ErrOpen) {
			t.Fatalf("byte %d flipped: err %v, want ErrOpen", i, err)
		}
	}
	for name, bad := range map[string]string{
		"truncated":      ct[:len(ct)-4],
		"empty":          "",
		"no body":        head,
		"not base64":     head + "!!!",
		"future version": "v2" + ct[2:],
		"plaintext":      apiKey,
	} {
		if _, err := box.Open(bad, "u1"); err == nil {
			t.Errorf("%s: opened", name)
		} else if strings.Contains(err.Error(), apiKey) {
			t.Errorf("%s: error %q shows the plaintext", name, err)
		}
	}
}

// TestBoundToItsUpstream: the ciphertext of one upstream's key, copied to
// another upstream's row, does not open there.
func TestBoundToItsUpstream(t *testing.T) {
	t.Parallel()
	box := secretbox.Box{Current: MustKey(t, newSecret)}
	ct, _ := box.Seal(secretbox.NewSecret(apiKey), "u1")
	if _, err := box.Open(ct, "u2"); !errors.Is(err, secretbox.ErrOpen) {
		t.Fatalf("opened as another upstream's: err %v, want ErrOpen", err)
	}
}

func TestRotation(t *testing.T) {
	t.Parallel()
	oldKey, newKey := MustKey(t, oldSecret), MustKey(t, newSecret)
	if oldKey.ID() == newKey.ID() {
		t.Fatal("two secrets gave one key id")
	}
	oldCT, _ := secretbox.Box{Current: oldKey}.Seal(secretbox.NewSecret(apiKey), "u1")

	rotated := secretbox.Box{Current: newKey, Previous: []secretbox.Key{oldKey}}
	if got, err := rotated.Open(oldCT, "u1"); err != nil || got.Reveal() != apiKey {
		t.Fatalf("previous key's ciphertext: %q, %v", got.Reveal(), err)
	}
	if !rotated.NeedsRotation(oldCT) {
		t.Fatal("a ciphertext under a previous key does not need rotation")
	}
	newCT, err := rotated.Reseal(oldCT, "u1")
	if err != nil {
		t.Fatal(err)
	}
	if rotated.NeedsRotation(newCT) || !strings.HasPrefix(newCT, "v1:"+newKey.ID()+":") {
		t.Fatalf("resealed %q still needs rotation", newCT)
	}
	// Once every row is resealed, the previous secret can go.
	done := secretbox.Box{Current: newKey}
	if got, err := done.Open(newCT, "u1"); err != nil || got.Reveal() != apiKey {
		t.Fatalf("resealed ciphertext without the previous key: %v", err)
	}
	if _, err := done.Open(oldCT, "u1"); !errors.Is(err, secretbox.ErrUnknownKey) {
		t.Fatalf("old ciphertext without the previous key: err %v, want ErrUnknownKey", err)
	}
	if _, err := (secretbox.Box{}).Seal(secretbox.NewSecret(apiKey), "u1"); !errors.Is(err, secretbox.ErrNoKey) {
		t.Fatalf("Seal without a key: %v", err)
	}
}

func TestKeyFromConfig(t *testing.T) {
	t.Parallel()
	secretKey := strings.Repeat("s", 24)
	fromSecretKey, err := secretbox.KeyFromConfig("", secretKey)
	if err != nil {
		t.Fatal(err)
	}
	if fromSecretKey.ID() != MustKey(t, secretKey).ID() {
		t.Error("the key derived from SECRET_KEY is not stable")
	}
	dedicated, err := secretbox.KeyFromConfig(newSecret, secretKey)
	if err != nil {
		t.Fatal(err)
	}
	if dedicated.ID() == fromSecretKey.ID() {
		t.Error("UPSTREAM_KEY_SECRET is ignored when SECRET_KEY is set")
	}
	if _, err := secretbox.KeyFromConfig("short", secretKey); err == nil || !strings.Contains(err.Error(), "UPSTREAM_KEY_SECRET") {
		t.Errorf("a short UPSTREAM_KEY_SECRET: %v", err)
	}
	if _, err := secretbox.KeyFromConfig("", ""); err == nil || !strings.Contains(err.Error(), "SECRET_KEY") {
		t.Errorf("no secret at all: %v", err)
	}
	for _, s := range []string{fmt.Sprint(dedicated), fmt.Sprintf("%+v %#v %x %p", dedicated, dedicated, dedicated, dedicated)} {
		if strings.Contains(s, newSecret) || strings.Contains(s, "aead") {
			t.Errorf("a Key printed as %q", s)
		}
	}
}

func TestSecretNeverPrints(t *testing.T) {
	t.Parallel()
	s := secretbox.NewSecret(apiKey)
	type row struct {
		Name   string
		APIKey secretbox.Secret
		hidden secretbox.Secret
	}
	r := row{Name: "primary", APIKey: s, hidden: s}
	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%p", "%T", "%10.3s"} {
		out = append(out, fmt.Sprintf(verb, s), fmt.Sprintf(verb, r), fmt.Sprintf(verb, &r), fmt.Sprintf(verb, []secretbox.Secret{s}),
			fmt.Sprintf(verb, map[string]secretbox.Secret{"k": s}))
	}
	out = append(out, fmt.Sprint(s), fmt.Sprintln(r), s.String(), s.GoString())
	j, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, string(j))
	txt, _ := s.MarshalText()
	out = append(out, string(txt))
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		slog.New(h).Info("upstream", "api_key", s, "row", r, "any", any(s))
	}
	out = append(out, buf.String())
	for _, o := range out {
		if strings.Contains(o, apiKey) || strings.Contains(o, "sk-ant") {
			t.Errorf("the plaintext leaked: %q", o)
		}
	}
	if !strings.Contains(string(j), `"APIKey":"[REDACTED]"`) {
		t.Errorf("json %s, want the key shown as [REDACTED]", j)
	}
}

func TestLast4(t *testing.T) {
	t.Parallel()
	if got := secretbox.NewSecret(apiKey).Last4(); got != "abcd" {
		t.Errorf("Last4 = %q, want abcd", got)
	}
	if got := secretbox.NewSecret("short-key").Last4(); got != "" {
		t.Errorf("Last4 of a 9-byte secret = %q, want nothing", got)
	}
	var zero secretbox.Secret
	if !zero.IsZero() || zero.Reveal() != "" || zero.Last4() != "" {
		t.Error("the zero Secret is not empty")
	}
}
