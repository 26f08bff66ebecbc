package main

import (
	"bufio"
	"errors"
	"fmt"
	"strings"

	"github.com/alexedwards/argon2id"
)

// argonParams are the argon2id parameters for the admin password (RFC 9106's
// second recommended option, scaled to a small server).
var argonParams = &argon2id.Params{Memory: 64 * 1024, Iterations: 3, Parallelism: 2, SaltLength: 16, KeyLength: 32}

// hashPassword reads one line (the password) from stdin and prints its hash.
func hashPassword(args []string, e env) error {
	if len(args) > 0 {
		return usageError{"hash-password reads the password from stdin; it takes no arguments (arguments end up in shell history)"}
	}
	line, err := bufio.NewReader(e.stdin).ReadString('\n')
	if err != nil && line == "" {
		return errors.New("hash-password: no password on stdin; try: printf '%s\\n' \"$PASSWORD\" | relay hash-password")
	}
	pw := strings.TrimRight(line, "\r\n")
	if len(pw) < 8 {
		return errors.New("hash-password: the password must be at least 8 characters")
	}
	h, err := argon2id.CreateHash(pw, argonParams)
	if err != nil {
		return fmt.Errorf("hash-password: %w", err)
	}
	fmt.Fprintln(e.stdout, h)
	return nil
}
