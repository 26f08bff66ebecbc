package main

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/alexedwards/argon2id"

	"github.com/relaystation/relay/config"
)

// secrets are what the relay needs to sign JWTs, hash keys and check the
// admin password. bootstrapSecrets fills in whatever the configuration does
// not give, persisting it in the data folder (mode 0600) so restarts and
// upgrades keep working with zero setup.
type secrets struct {
	jwtKey        []byte
	keyHashSecret []byte
	adminHash     string
}

const (
	secretKeyFile = "secret_key"
	adminHashFile = "admin_password_hash"
)

func bootstrapSecrets(cfg config.Config, out io.Writer) (secrets, error) {
	var s secrets
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return s, fmt.Errorf("data_dir %s: %w", cfg.DataDir, err)
	}
	secret := cfg.SecretKey
	if secret == "" {
		v, created, err := readOrCreate(filepath.Join(cfg.DataDir, secretKeyFile), func() (string, error) {
			return randomHex(32)
		})
		if err != nil {
			return s, fmt.Errorf("secret_key: %w", err)
		}
		if created {
			fmt.Fprintf(out, "relay: generated SECRET_KEY into %s (mode 0600)\n", filepath.Join(cfg.DataDir, secretKeyFile))
		}
		secret = v
	}
	if len(secret) < 16 {
		return s, errors.New("secret_key (SECRET_KEY): must be at least 16 characters")
	}
	s.jwtKey = []byte(secret)
	if cfg.KeyHashSecret != "" {
		s.keyHashSecret = []byte(cfg.KeyHashSecret)
	} else {
		// Derived, so the JWT key itself never doubles as the HMAC key.
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte("relay-station proxy-key hashing v1"))
		s.keyHashSecret = m.Sum(nil)
	}

	switch {
	case cfg.Admin.PasswordHash != "":
		s.adminHash = cfg.Admin.PasswordHash
	case cfg.Admin.Password != "":
		h, err := argon2id.CreateHash(cfg.Admin.Password, argonParams)
		if err != nil {
			return s, fmt.Errorf("admin.password: %w", err)
		}
		s.adminHash = h
	default:
		var generated string
		h, created, err := readOrCreate(filepath.Join(cfg.DataDir, adminHashFile), func() (string, error) {
			pw, err := randomPassword()
			if err != nil {
				return "", err
			}
			generated = pw
			return argon2id.CreateHash(pw, argonParams)
		})
		if err != nil {
			return s, fmt.Errorf("admin password: %w", err)
		}
		if created {
			// Printed once, to the terminal, never through the logger.
			fmt.Fprintf(out, "\n"+
				"  ┌──────────────────────────────────────────────────────────┐\n"+
				"  │ Relay Station generated an admin password (shown once):  │\n"+
				"  │   user:     %-44s │\n"+
				"  │   password: %-44s │\n"+
				"  │ Only its argon2id hash is kept, in %-21s │\n"+
				"  └──────────────────────────────────────────────────────────┘\n\n",
				cfg.Admin.Username, generated, adminHashFile)
		}
		s.adminHash = strings.TrimSpace(h)
	}
	return s, nil
}

// readOrCreate returns the trimmed content of path, creating it with mk()
// (mode 0600, exclusively) when absent.
func readOrCreate(path string, mk func() (string, error)) (string, bool, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	v, err := mk()
	if err != nil {
		return "", false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return readOrCreate(path, mk) // lost a race with another process
	}
	if err != nil {
		return "", false, err
	}
	if _, err := f.WriteString(v + "\n"); err != nil {
		f.Close()
		return "", false, err
	}
	return v, true, f.Close()
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func randomPassword() (string, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
