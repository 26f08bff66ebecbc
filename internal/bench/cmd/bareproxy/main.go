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
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"runtime"
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
	metrics := fs.String("metrics-listen", "", "if set, serve Go memory figures as Prometheus text at http://ADDR/metrics, and /debug/pprof/heap and /debug/pprof/profile")
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
	errc := make(chan error, 2)
	go func() { errc <- srv.ListenAndServe() }()
	if *metrics != "" {
		// On its own port, so that every path of the proxy stays a proxy.
		mux := http.NewServeMux()
		mux.HandleFunc("/metrics", serveMetrics)
		mux.Handle("/debug/pprof/heap", pprof.Handler("heap"))
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		ms := &http.Server{Addr: *metrics, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- ms.ListenAndServe() }()
		defer ms.Close()
	}
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

// serveMetrics answers with the two figures the benchmark reads, under the
// names Prometheus's Go collector gives them, as the relay exports them.
func serveMetrics(w http.ResponseWriter, _ *http.Request) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprintf(w, "go_memstats_heap_inuse_bytes %d\ngo_memstats_stack_inuse_bytes %d\ngo_goroutines %d\n",
		m.HeapInuse, m.StackInuse, runtime.NumGoroutine())
}
