package ui

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func NewTestHandler(t testing.TB) *Handler {
	t.Helper()
	h, err := newFromFS(fstest.MapFS{
		"index.html":            {Data: []byte(`<!doctype html><script type="module" src="/ui/assets/index-abc.js"></script>`)},
		"assets/index-abc.js":   {Data: bytes.Repeat([]byte("console.log(1);\n"), 200)},
		"assets/index-abc.css":  {Data: []byte("body{}")},
		"assets/favicon-ab.svg": {Data: []byte("<svg/>")},
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func get(t *testing.T, h http.Handler, method, target string, hdr ...string) *http.Response {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

func TestEmbeddedBundle(t *testing.T) {
	t.Parallel()
	h, err := New()
	if err != nil {
		t.Fatalf("the committed bundle does not load (run 'make ui'): %v", err)
	}
	resp := get(t, h, http.MethodGet, "/ui/")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`<div id="app">`)) {
		t.Fatalf("index: %d %q", resp.StatusCode, body)
	}
	// The CSP forbids inline scripts and styles: the built page has none.
	if bytes.Contains(body, []byte("<script>")) || bytes.Contains(body, []byte("<style")) || bytes.Contains(body, []byte(" style=")) {
		t.Errorf("index.html has inline script or style: %s", body)
	}
	for name := range h.files {
		if strings.HasPrefix(name, "assets/") {
			if r := get(t, h, http.MethodGet, "/ui/"+name); r.StatusCode != 200 {
				t.Errorf("%s: %d", name, r.StatusCode)
			}
		}
	}
}

func TestHeadersAndCaching(t *testing.T) {
	t.Parallel()
	h := NewTestHandler(t)
	for _, tc := range []struct {
		path, ctype, cache string
	}{
		{"/ui/", "text/html; charset=utf-8", "no-cache"},
		{"/ui/keys", "text/html; charset=utf-8", "no-cache"},
		{"/ui/keys/0b7c6a55-2d7e-4c36-9a0c-4bb0b9c3e7c1", "text/html; charset=utf-8", "no-cache"},
		{"/ui/me", "text/html; charset=utf-8", "no-cache"},
		{"/ui/assets/index-abc.js", "text/javascript; charset=utf-8", "public, max-age=31536000, immutable"},
		{"/ui/assets/index-abc.css", "text/css; charset=utf-8", "public, max-age=31536000, immutable"},
		{"/ui/assets/favicon-ab.svg", "image/svg+xml", "public, max-age=31536000, immutable"},
	} {
		resp := get(t, h, http.MethodGet, tc.path)
		if resp.StatusCode != 200 {
			t.Errorf("%s: status %d", tc.path, resp.StatusCode)
			continue
		}
		hd := resp.Header
		if hd.Get("Content-Type") != tc.ctype || hd.Get("Cache-Control") != tc.cache {
			t.Errorf("%s: content-type %q cache %q", tc.path, hd.Get("Content-Type"), hd.Get("Cache-Control"))
		}
		csp := hd.Get("Content-Security-Policy")
		for _, want := range []string{"script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "default-src 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", tc.path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: CSP allows inline code: %q", tc.path, csp)
		}
		if hd.Get("X-Content-Type-Options") != "nosniff" || hd.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: headers %v", tc.path, hd)
		}
	}
}

func TestMissingFilesAndMethods(t *testing.T) {
	t.Parallel()
	h := NewTestHandler(t)
	for _, p := range []string{"/ui/assets/index-old.js", "/ui/assets/nope", "/ui/robots.txt", "/elsewhere"} {
		resp := get(t, h, http.MethodGet, p)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 404 || !bytes.Contains(body, []byte(`"not_found_error"`)) {
			t.Errorf("%s: %d %s", p, resp.StatusCode, body)
		}
		if resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("%s: an error lacks the CSP", p)
		}
	}
	resp := get(t, h, http.MethodPost, "/ui/keys")
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	resp = get(t, h, http.MethodGet, "/ui?x=1")
	if resp.StatusCode != 301 || resp.Header.Get("Location") != "/ui/?x=1" {
		t.Errorf("/ui: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp = get(t, h, http.MethodHead, "/ui/")
	if body, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || len(body) != 0 {
		t.Errorf("HEAD: %d, %d bytes", resp.StatusCode, len(body))
	}
}

func TestGzipAndETag(t *testing.T) {
	t.Parallel()
	h := NewTestHandler(t)
	plain := get(t, h, http.MethodGet, "/ui/assets/index-abc.js")
	pb, _ := io.ReadAll(plain.Body)
	gz := get(t, h, http.MethodGet, "/ui/assets/index-abc.js", "Accept-Encoding", "br, gzip")
	if gz.Header.Get("Content-Encoding") != "gzip" || gz.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("no gzip: %v", gz.Header)
	}
	zr, err := gzip.NewReader(gz.Body)
	if err != nil {
		t.Fatal(err)
	}
	ub, _ := io.ReadAll(zr)
	if !bytes.Equal(ub, pb) {
		t.Fatal("gzip body differs from the plain one")
	}
	if gz.Header.Get("ETag") == plain.Header.Get("ETag") {
		t.Error("the encodings share an ETag")
	}
	if r := get(t, h, http.MethodGet, "/ui/assets/index-abc.js", "Accept-Encoding", "gzip;q=0"); r.Header.Get("Content-Encoding") != "" {
		t.Error("gzip sent though refused")
	}
	nm := get(t, h, http.MethodGet, "/ui/assets/index-abc.js", "If-None-Match", plain.Header.Get("ETag"))
	if nm.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", nm.StatusCode)
	}
}

func TestIsPublic(t *testing.T) {
	t.Parallel()
	for p, want := range map[string]bool{
		"/ui/me": true, "/ui/me/": true, "/ui/assets/index-abc.js": true,
		"/ui/": false, "/ui": false, "/ui/keys": false, "/ui/meh": false, "/ui/login": false, "/ui/logs": false,
	} {
		if got := IsPublic(p); got != want {
			t.Errorf("IsPublic(%q) = %v", p, got)
		}
	}
}
