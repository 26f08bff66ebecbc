// Command bareproxy is the benchmark's baseline process: a bare
// httputil.ReverseProxy that swaps the key and nothing else.
//
//	bareproxy -listen 127.0.0.1:9001 -upstream http://127.0.0.1:9000 -key sk-ant-...
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/relaystation/relay/internal/bench/bareproxy"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bareproxy:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bareproxy", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8001", "address to listen on")
	upstream := fs.String("upstream", "", "upstream base URL")
	key := fs.String("key", "", "upstream API key")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := url.Parse(*upstream)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return fmt.Errorf("-upstream %q: want an absolute URL", *upstream)
	}
	srv := &http.Server{
		Addr:              *listen,
		Handler:           bareproxy.New(u, *key),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
