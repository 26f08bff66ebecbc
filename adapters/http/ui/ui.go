// Package ui serves the operator dashboard: a single-page app whose source
// is in web/ (TypeScript, Preact, uPlot, a client generated from
// api/openapi.yaml) and whose built bundle, dist/, is committed and
// embedded, so the binary needs nothing external at run time and `make
// run` needs only Go. `make ui` rebuilds dist/; `make verify` fails when it
// is stale.
//
// Every answer carries a strict Content-Security-Policy ('self' only, no
// inline script or style, no framing). Hashed assets are cached for a
// year; index.html is revalidated every time, so a new release is picked
// up at once. Any page path under the prefix is answered with index.html
// and the app routes it.
package ui

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/relaystation/relay/adapters/httpx"
	"github.com/relaystation/relay/domain"
)

//go:embed all:dist
var dist embed.FS

// Prefix is where the dashboard is served.
const Prefix = "/ui/"

// ContentSecurityPolicy allows the page to load only its own scripts,
// styles and images and to call only its own origin (the management API).
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"font-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; " +
	"frame-ancestors 'none'"

const (
	cacheImmutable  = "public, max-age=31536000, immutable"
	cacheRevalidate = "no-cache"
)

type file struct {
	body, gz    []byte // gz is nil when compression does not pay
	ctype, etag string
	cache       string
}

// Handler serves the embedded dashboard under Prefix.
type Handler struct {
	files map[string]*file // by path below Prefix: "index.html", "assets/x-1a2b.js"
	index *file
}

var _ http.Handler = (*Handler)(nil)

// New loads the embedded bundle. It fails if the bundle has no index.html
// (a build that was never run).
func New() (*Handler, error) {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		return nil, fmt.Errorf("ui: %w", err)
	}
	return newFromFS(sub)
}

func newFromFS(fsys fs.FS) (*Handler, error) {
	h := &Handler{files: map[string]*file{}}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		f := &file{body: b, ctype: contentType(p), cache: cacheRevalidate}
		if strings.HasPrefix(p, "assets/") {
			f.cache = cacheImmutable
		}
		sum := sha256.Sum256(b)
		f.etag = `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
		if compressible(f.ctype) && len(b) > 1024 {
			f.gz = gzipped(b)
		}
		h.files[p] = f
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ui: read the embedded bundle: %w", err)
	}
	h.index = h.files["index.html"]
	if h.index == nil {
		return nil, fmt.Errorf("ui: the embedded bundle has no index.html; run 'make ui'")
	}
	return h, nil
}

// IsPublic reports whether a request path is open to everyone, outside the
// admin IP allow-list: the key holder's page (/ui/me) and the static
// assets that every page, that one included, loads. The assets are the
// same for every visitor and hold no data; all data comes from the API,
// which authenticates each call.
func IsPublic(p string) bool {
	return p == "/ui/me" || strings.HasPrefix(p, "/ui/me/") || strings.HasPrefix(p, "/ui/assets/")
}

// SetSecurityHeaders sets the headers every dashboard answer carries,
// errors included.
func SetSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}

// ServeHTTP answers GET and HEAD for paths under Prefix (and Prefix
// without its slash, redirected).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	SetSecurityHeaders(hdr)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		httpx.WriteError(w, r, nil, &domain.Error{Kind: domain.KindMethodNotAllowed, Reason: domain.ReasonMethod,
			Message: fmt.Sprintf("method %s is not allowed on %s", r.Method, r.URL.Path)})
		return
	}
	p := r.URL.Path
	if p == strings.TrimSuffix(Prefix, "/") {
		target := Prefix
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, target, http.StatusMovedPermanently)
		return
	}
	name, ok := strings.CutPrefix(p, Prefix)
	if !ok {
		h.notFound(w, r)
		return
	}
	f := h.files[name]
	switch {
	case f != nil:
	case name == "" || !strings.Contains(path.Base(name), ".") && !strings.HasPrefix(name, "assets/"):
		// A page of the app: its router picks the page from the path.
		f = h.index
	default:
		// A missing file is a 404, never index.html: a stale page asking
		// for an asset of an older release must not get HTML as script.
		h.notFound(w, r)
		return
	}
	h.serve(w, r, f)
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, f *file) {
	hdr := w.Header()
	hdr.Set("Content-Type", f.ctype)
	hdr.Set("Cache-Control", f.cache)
	body, etag := f.body, f.etag
	if f.gz != nil {
		hdr.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r) {
			body, etag = f.gz, strings.TrimSuffix(f.etag, `"`)+`-gz"`
			hdr.Set("Content-Encoding", "gzip")
		}
	}
	hdr.Set("ETag", etag)
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatches(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	httpx.WriteError(w, r, nil, &domain.Error{Kind: domain.KindNotFound, Reason: domain.ReasonPath,
		Message: "no such dashboard file: " + r.URL.Path})
}

func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

// acceptsGzip reports whether Accept-Encoding lists gzip with a non-zero q.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, params, _ := strings.Cut(part, ";")
		if !strings.EqualFold(strings.TrimSpace(enc), "gzip") {
			continue
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return err == nil && q > 0
		}
		return true
	}
	return false
}

// contentType is fixed per extension, not read from the system's MIME
// tables, so every machine answers the same.
func contentType(p string) string {
	switch path.Ext(p) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	case ".ico":
		return "image/x-icon"
	case ".json", ".webmanifest":
		return "application/json"
	case ".woff2":
		return "font/woff2"
	case ".txt":
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}

func compressible(ctype string) bool {
	return strings.HasPrefix(ctype, "text/") || strings.HasPrefix(ctype, "application/json") || ctype == "image/svg+xml"
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(b)
	_ = zw.Close()
	if buf.Len() >= len(b) {
		return nil
	}
	return buf.Bytes()
}
