// Package bareproxy is the benchmark's baseline: the least a Go relay can do,
// an httputil.ReverseProxy that only swaps the client's key for the upstream
// key. The relay is measured against it.
package bareproxy

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

// New returns a reverse proxy to upstream that authenticates with apiKey.
func New(upstream *url.URL, apiKey string) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(upstream)
			r.Out.Header.Del("Authorization")
			r.Out.Header.Set("X-Api-Key", apiKey)
		},
		Transport: NewTransport(),
	}
}

// NewTransport is a Transport tuned for many keep-alive connections to one
// upstream, as a production relay would configure it.
func NewTransport() *http.Transport {
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		DisableCompression:    true,
	}
}
