// Command fakeanthropic serves the in-repo fake Anthropic API on a local
// port, so the relay can be tried end to end — with Claude Code, the SDKs or
// curl — without an Anthropic key:
//
//	go run ./internal/fakeanthropic/cmd/fakeanthropic -addr 127.0.0.1:9100
//	UPSTREAM_URL=http://127.0.0.1:9100 UPSTREAM_API_KEY=fake make run
package main

import (
	"flag"
	"log"
	"net/http"
	"time"

	"github.com/relaystation/relay/internal/fakeanthropic"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9100", "listen address")
	deltas := flag.Int("deltas", 10, "content deltas per stream")
	spacing := flag.Duration("spacing", 20*time.Millisecond, "pause before each delta")
	text := flag.String("text", "Hello from the fake upstream. ", "text of each delta")
	flag.Parse()
	fake := fakeanthropic.New(fakeanthropic.Options{Deltas: *deltas, Spacing: *spacing, DeltaText: *text, NoCapture: true})
	log.Printf("fake Anthropic API on http://%s", *addr)
	srv := &http.Server{Addr: *addr, Handler: fake, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
