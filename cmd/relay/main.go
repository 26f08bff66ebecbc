// Command relay is Relay Station: a relay for the Anthropic Claude API with
// per-key quotas, rate limits and exact usage accounting.
//
//	relay [serve]                 start the relay (the default)
//	relay migrate up|down|version apply, roll back or show migrations
//	relay hash-password           read a password, print its argon2id hash
//	relay health [--url URL]      exit 0 when a relay answers /ready
//	relay keys ... / relay usage  admin CLI against a running relay
//	relay upstreams ...           the upstream pool of a running relay
//	relay version                 print the version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// env is the process environment, read once here and passed down: nothing
// outside main reads os.Getenv.
type env struct {
	environ []string
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
}

func (e env) get(name string) string {
	prefix := name + "="
	for i := len(e.environ) - 1; i >= 0; i-- {
		if len(e.environ[i]) >= len(prefix) && e.environ[i][:len(prefix)] == prefix {
			return e.environ[i][len(prefix):]
		}
	}
	return ""
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := env{environ: os.Environ(), stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}
	if err := run(ctx, os.Args[1:], e); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(os.Stderr, "relay:", err)
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "relay:", err)
		os.Exit(1)
	}
}

type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

const usageText = `usage: relay <command> [arguments]

commands:
  serve                     start the relay (default)
  migrate up|down|version   apply, roll back or show database migrations
  hash-password             read a password from stdin, print its argon2id hash
  health [--url URL]        exit 0 if the relay at URL answers /ready (default http://127.0.0.1:8000)
  keys <subcommand>         manage API keys on a running relay (relay keys --help)
  usage [reprice]           show usage totals, or reprice a range, on a running relay
  pricing <subcommand>      show or replace the price table of a running relay (show, versions, set)
  upstreams <subcommand>    manage the upstream pool of a running relay (relay upstreams --help)
  version                   print the version
`

func run(ctx context.Context, args []string, e env) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, e)
	case "migrate":
		return migrateCmd(ctx, args, e)
	case "hash-password":
		return hashPassword(args, e)
	case "health":
		return health(ctx, args, e)
	case "keys":
		return keysCmd(ctx, args, e)
	case "usage":
		return usageCmd(ctx, args, e)
	case "pricing":
		return pricingCmd(ctx, args, e)
	case "upstreams":
		return upstreamsCmd(ctx, args, e)
	case "version", "--version", "-v":
		fmt.Fprintln(e.stdout, "relay", version)
		return nil
	case "help", "--help", "-h":
		fmt.Fprint(e.stdout, usageText)
		return nil
	}
	return usageError{fmt.Sprintf("unknown command %q\n\n%s", cmd, usageText)}
}
