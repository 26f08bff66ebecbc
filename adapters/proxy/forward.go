package proxy

import (
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/relaystation/relay/domain"
)

// The relay's own proxy loop, on the upstream transport. It does what
// httputil.ReverseProxy did for it, minus the work the relay never needs:
// the outbound header is the client's map, edited in place (net/http lets
// a handler change the request's header; the server keeps what it needs
// of it before the handler runs), the answer's header values are shared,
// not copied one by one, no ProxyRequest, no 1xx trace, and the copy
// buffer is pooled. What it keeps, each pinned by a test: hop-by-hop
// rules both ways (RFC 9110 §7.6.1, with Connection-listed names), no
// client X-Forwarded-* or Forwarded, "Te: trailers" passed on, no Go
// default User-Agent, unparsable query parameters dropped, an event
// stream (or a body of unknown length) flushed on every write with its
// headers sent at once, trailers relayed, and a copy that fails midway
// aborting the response (http.ErrAbortHandler) so the client never takes a
// cut answer for a whole one.

// hopHeaders are the RFC 9110 hop-by-hop headers (and the de-facto ones
// httputil drops): they describe one connection, never the next.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// forwardedHeaders are the client's forwarding claims; the relay makes none
// upstream (the client's address is the relay's business, in its log).
var forwardedHeaders = []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"}

// removeHopByHop deletes the hop-by-hop headers of h, and the headers its
// Connection header names.
func removeHopByHop(h http.Header) {
	for _, f := range h["Connection"] {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = textproto.TrimString(sf); sf != "" {
				h.Del(sf)
			}
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
}

// outboundHeader applies the header rules to the client's header map, in
// place: hop-by-hop and forwarding headers go, and so do the client's
// credentials (the transport sets the upstream key); the answer is asked
// for uncompressed so that its usage can be read. Everything else passes
// through as an open list (anthropic-*, content-type, user-agent,
// X-Claude-Code-Session-Id, ...).
func outboundHeader(h http.Header) {
	te := tokenListed(h["Te"], "trailers")
	removeHopByHop(h)
	for _, k := range forwardedHeaders {
		delete(h, k)
	}
	for _, k := range proxyDropHeaders {
		delete(h, k)
	}
	if te {
		// Tell the upstream the relay relays trailers (it does).
		h["Te"] = []string{"trailers"}
	}
	h["Accept-Encoding"] = []string{"identity"}
	if _, ok := h["User-Agent"]; !ok {
		// No Go default User-Agent in the client's name.
		h["User-Agent"] = []string{""}
	}
}

// tokenListed reports whether a comma-separated header lists token
// (case-insensitively).
func tokenListed(values []string, token string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if t = textproto.TrimString(t); strings.EqualFold(t, token) {
				return true
			}
		}
	}
	return false
}

// maxQueryParams is net/url's default bound on query parameters.
const maxQueryParams = 10000

// cleanQuery drops query parameters that do not parse (a ';' separator, a
// bad escape), as httputil does: the upstream must not read a query
// differently from the relay.
func cleanQuery(s string) string {
	reencode := func(s string) string {
		v, _ := url.ParseQuery(s)
		return v.Encode()
	}
	if strings.Count(s, "&")+1 > maxQueryParams {
		return reencode(s)
	}
	for i := 0; i < len(s); {
		switch s[i] {
		case ';':
			return reencode(s)
		case '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return reencode(s)
			}
			i += 3
		default:
			i++
		}
	}
	return s
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// isEventStream reports whether a Content-Type is text/event-stream, with
// or without parameters, in any case.
func isEventStream(ct string) bool {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.EqualFold(strings.TrimSpace(ct), "text/event-stream")
}

// errSwitched refuses an upstream that switched protocols: the relay never
// asks for an upgrade (Upgrade and Connection are hop-by-hop).
var errSwitched = &domain.Error{Kind: domain.KindUpstream, Message: "the upstream switched protocols, which the relay never asks for"}

// forward sends out (the admitted request, its header already the
// outbound one) upstream and relays the answer to the client through
// c.pw. The call is settled by the answer body's Close, or by the error
// path.
func (p *Handler) forward(c *proxyCall, out *http.Request) {
	resp, err := p.transport.RoundTrip(out)
	if err != nil {
		p.failed(c, &c.pw, out, err)
		return
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		_ = resp.Body.Close()
		p.failed(c, &c.pw, out, errSwitched)
		return
	}
	removeHopByHop(resp.Header)
	if err := p.answer(c, resp); err != nil {
		_ = resp.Body.Close()
		p.failed(c, &c.pw, out, err)
		return
	}
	w := &c.pw
	h := w.Header()
	for k, vv := range resp.Header {
		if have, ok := h[k]; ok {
			h[k] = append(have, vv...)
		} else {
			h[k] = vv
		}
	}
	announced := len(resp.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		h.Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(resp.StatusCode)
	// An event stream, or a body of unknown length, is relayed as it
	// arrives: the headers now, then every chunk. A sized body is flushed
	// once, when it is complete (proxyBody.Close).
	flush := c.stream || resp.ContentLength == -1
	if flush {
		w.Flush()
	}
	bufs := &proxyBufs
	if c.stream {
		bufs = &streamBufs
	}
	buf := bufs.Get().(*[]byte)
	err = copyBody(w, resp.Body, *buf, flush)
	bufs.Put(buf)
	if err != nil {
		defer func() { _ = resp.Body.Close() }()
		if out.Context().Value(http.ServerContextKey) == nil {
			// Not under an http.Server (a handler test's recorder): nobody
			// would recover the abort.
			return
		}
		// The answer is cut: abort the response, so the client sees a
		// broken one rather than a short one that looks whole.
		panic(http.ErrAbortHandler)
	}
	_ = resp.Body.Close() // settles the call; fills resp.Trailer
	if len(resp.Trailer) > 0 {
		// Force chunking, so that the trailers can follow the body.
		w.Flush()
	}
	if len(resp.Trailer) == announced {
		for k, vv := range resp.Trailer {
			h[k] = append(h[k], vv...)
		}
		return
	}
	for k, vv := range resp.Trailer {
		k = http.TrailerPrefix + k
		h[k] = append(h[k], vv...)
	}
}

// copyBody copies src to dst through buf, flushing every write when
// flush is set. It returns write errors and read errors other than EOF.
func copyBody(dst *progressWriter, src io.Reader, buf []byte, flush bool) error {
	for {
		nr, rerr := src.Read(buf)
		if nr > 0 {
			nw, werr := dst.Write(buf[:nr])
			if werr != nil {
				return werr
			}
			if nw != nr {
				return io.ErrShortWrite
			}
			if flush {
				dst.Flush()
			}
		}
		if rerr != nil {
			if rerr == io.EOF {
				return nil
			}
			return rerr
		}
	}
}
