package fakeanthropic

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Endpoint is a Server listening on a TCP address of its own; see Start.
type Endpoint struct {
	s      *Server
	ln     net.Listener
	fastOK bool // the options allow the fast path at all
	wire   wire
	srv    *http.Server // serves what the fast path hands over
	slow   *connQueue

	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{} // every open connection, handed over or not
	closed bool
}

// Start serves s over HTTP/1.1 on addr ("127.0.0.1:0" for any port) until
// Close.
//
// Its fast path answers the requests a benchmark sends — POST /v1/messages
// (JSON or stream), POST /v1/messages/count_tokens and GET /v1/models, with
// an x-api-key and a Content-Length body — from bytes rendered once, written
// straight to the connection: a fraction of what net/http's server costs per
// request. It answers what ServeHTTP would, bar the Date header, so it is
// taken only when ServeHTTP would do nothing more: the fake has NoCapture, no
// Gzip or SlowHeaders, and no Step queued. Any other request is handed, with
// the rest of its connection, to net/http and ServeHTTP.
func (s *Server) Start(addr string) (*Endpoint, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("fake anthropic listen: %w", err)
	}
	o := s.opts
	e := &Endpoint{
		s:      s,
		ln:     ln,
		fastOK: o.NoCapture && !o.Gzip && o.SlowHeaders == 0,
		wire:   renderWire(s),
		srv:    &http.Server{Handler: s, ReadHeaderTimeout: time.Minute},
		slow:   &connQueue{addr: ln.Addr(), ch: make(chan net.Conn), done: make(chan struct{})},
		conns:  make(map[net.Conn]struct{}),
	}
	e.wg.Add(2)
	go func() {
		defer e.wg.Done()
		_ = e.srv.Serve(e.slow)
	}()
	go e.accept()
	return e, nil
}

// Server is the fake the endpoint serves.
func (e *Endpoint) Server() *Server { return e.s }

// Addr is the host:port the endpoint listens on.
func (e *Endpoint) Addr() string { return e.ln.Addr().String() }

// URL is the base URL to give a client or a relay as its upstream.
func (e *Endpoint) URL() string { return "http://" + e.Addr() }

// Close stops accepting, closes every connection (ending open streams) and
// waits for the fast path's goroutines to return.
func (e *Endpoint) Close() error {
	err := e.ln.Close()
	e.mu.Lock()
	e.closed = true
	for c := range e.conns {
		_ = c.Close()
	}
	e.mu.Unlock()
	_ = e.srv.Close()
	e.wg.Wait()
	return err
}

func (e *Endpoint) accept() {
	defer e.wg.Done()
	for {
		c, err := e.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			_ = c.Close()
			return
		}
		e.conns[c] = struct{}{}
		e.wg.Add(1)
		e.mu.Unlock()
		go e.serve(c)
	}
}

func (e *Endpoint) forget(c net.Conn) {
	e.mu.Lock()
	delete(e.conns, c)
	e.mu.Unlock()
}

// wire is what the fast path writes. A head ends in "Request-Id: req_fake_",
// for the request's number and the end of the head to follow.
type wire struct {
	json, countTokens, models reply
	streamHead                []byte
	start                     []byte // the first events, as one chunk
}

type reply struct{ head, body []byte }

func renderWire(s *Server) wire {
	head := func(extra string) []byte {
		b := []byte("HTTP/1.1 200 OK\r\n")
		for _, kv := range fixedHeaders {
			b = append(b, http.CanonicalHeaderKey(kv[0])+": "+kv[1]+"\r\n"...)
		}
		return append(b, extra+"Request-Id: req_fake_"...)
	}
	jsonReply := func(body []byte) reply {
		return reply{head(fmt.Sprintf("Content-Length: %d\r\nContent-Type: application/json\r\n", len(body))), body}
	}
	return wire{
		json:        jsonReply(s.rd.json),
		countTokens: jsonReply([]byte(countTokensBody)),
		models:      jsonReply([]byte(modelsBody)),
		streamHead:  head("Cache-Control: no-cache\r\nContent-Type: text/event-stream; charset=utf-8\r\nTransfer-Encoding: chunked\r\n"),
		start:       appendChunk(nil, s.rd.start),
	}
}

// conn is one connection on the fast path; its buffers serve every request
// on it.
type conn struct {
	c       net.Conn
	br      *bufio.Reader
	bw      *bufio.Writer
	head    []byte // the request head as read, for a hand-over
	body    []byte
	ev      []byte
	scratch []byte
}

// request is what the fast path needs of one request head.
type request struct {
	route       string // the path, one of the routes below
	contentLen  int64
	closeConn   bool
	hasKey      bool
	forceStream bool
	sh          shape
}

const (
	routeMessages    = "/v1/messages"
	routeCountTokens = "/v1/messages/count_tokens"
	routeModels      = "/v1/models"
)

const (
	maxFastHead = 64 << 10
	maxFastBody = 64 << 20
)

// errHandOver: the request is not for the fast path.
var errHandOver = errors.New("hand over to net/http")

func (e *Endpoint) serve(c net.Conn) {
	defer e.wg.Done()
	if !e.fastOK {
		e.handOver(c, nil)
		return
	}
	cn := &conn{c: c, br: bufio.NewReaderSize(c, 4<<10), bw: bufio.NewWriterSize(c, 4<<10)}
	for {
		req, err := e.readHead(cn)
		if errors.Is(err, errHandOver) {
			buffered, _ := cn.br.Peek(cn.br.Buffered())
			e.handOver(c, append(cn.head, buffered...))
			return
		}
		if err == nil {
			err = e.answer(cn, &req)
		}
		if err != nil || req.closeConn {
			_ = c.Close()
			e.forget(c)
			return
		}
	}
}

// handOver gives c to net/http, which reads prefix (what the fast path
// already took off the socket) first.
func (e *Endpoint) handOver(c net.Conn, prefix []byte) {
	e.slow.push(&prefixConn{Conn: c, prefix: prefix, e: e})
}

// readHead reads one request head. It returns errHandOver as soon as the
// request turns out not to be for the fast path, and io.EOF when the client
// closed an idle connection.
func (e *Endpoint) readHead(cn *conn) (request, error) {
	req := request{sh: shape{e.s.opts.Deltas, e.s.opts.Spacing}}
	cn.head = cn.head[:0]
	line, err := cn.br.ReadSlice('\n')
	cn.head = append(cn.head, line...)
	if err != nil {
		if len(line) == 0 {
			return req, io.EOF
		}
		return req, errHandOver
	}
	if e.s.pending.Load() > 0 {
		return req, errHandOver
	}
	method, rest, _ := bytes.Cut(trimCRLF(line), []byte(" "))
	target, proto, _ := bytes.Cut(rest, []byte(" "))
	if string(proto) != "HTTP/1.1" {
		return req, errHandOver
	}
	if i := bytes.IndexByte(target, '?'); i >= 0 {
		target = target[:i]
	}
	switch {
	case string(method) == "POST" && string(target) == routeMessages:
		req.route = routeMessages
	case string(method) == "POST" && string(target) == routeCountTokens:
		req.route = routeCountTokens
	case string(method) == "GET" && string(target) == routeModels:
		req.route = routeModels
	default:
		return req, errHandOver
	}
	for {
		h, err := cn.br.ReadSlice('\n')
		cn.head = append(cn.head, h...)
		if err != nil || len(cn.head) > maxFastHead {
			return req, errHandOver
		}
		h = trimCRLF(h)
		if len(h) == 0 {
			break
		}
		name, val, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return req, errHandOver
		}
		val = bytes.TrimSpace(val)
		switch {
		case asciiEqualFold(name, "content-length"):
			n, err := strconv.ParseInt(string(val), 10, 64)
			if err != nil || n < 0 || n > maxFastBody {
				return req, errHandOver
			}
			req.contentLen = n
		case asciiEqualFold(name, "transfer-encoding"), asciiEqualFold(name, "expect"):
			return req, errHandOver
		case asciiEqualFold(name, "connection"):
			req.closeConn = asciiEqualFold(val, "close")
		case asciiEqualFold(name, "x-api-key"):
			req.hasKey = len(val) > 0
		case asciiEqualFold(name, "x-fake-stream"):
			req.forceStream = string(val) == "true"
		case asciiEqualFold(name, HeaderDeltas):
			if n, ok := parseDeltas(string(val)); ok {
				req.sh.deltas = n
			}
		case asciiEqualFold(name, HeaderSpacingMS):
			if d, ok := parseSpacingMS(string(val)); ok {
				req.sh.spacing = d
			}
		}
	}
	if !req.hasKey {
		return req, errHandOver // for ServeHTTP's 401
	}
	return req, nil
}

// answer reads the request's body and writes the reply.
func (e *Endpoint) answer(cn *conn, req *request) error {
	if req.route == routeMessages {
		if int64(cap(cn.body)) < req.contentLen {
			cn.body = make([]byte, req.contentLen)
		}
		cn.body = cn.body[:req.contentLen]
		if _, err := io.ReadFull(cn.br, cn.body); err != nil {
			return err
		}
	} else if _, err := cn.br.Discard(int(req.contentLen)); err != nil {
		return err
	}
	n := e.s.seq.Add(1)
	e.s.countPath(req.route)
	var rep reply
	switch req.route {
	case routeMessages:
		if req.forceStream || bytes.Contains(cn.body, streamFlag) {
			return e.stream(cn, req, n)
		}
		rep = e.wire.json
	case routeCountTokens:
		rep = e.wire.countTokens
	case routeModels:
		rep = e.wire.models
	}
	cn.scratch = appendHeadEnd(cn.scratch[:0], n, req.closeConn)
	_, _ = cn.bw.Write(rep.head)
	_, _ = cn.bw.Write(cn.scratch)
	_, _ = cn.bw.Write(rep.body)
	if cn.br.Buffered() > 0 { // a pipelined request: answer it in the same write
		return nil
	}
	return cn.bw.Flush()
}

func appendHeadEnd(b []byte, n int64, closeConn bool) []byte {
	b = strconv.AppendInt(b, n, 10)
	if closeConn {
		b = append(b, "\r\nConnection: close"...)
	}
	return append(b, "\r\n\r\n"...)
}

// stream writes a whole SSE reply, flushing each event as ServeHTTP does.
// With a pause between deltas a watcher peeks at the connection, so that a
// client hanging up ends the pause at once; Peek leaves the bytes of a next
// request in the buffer, so the connection stays reusable.
func (e *Endpoint) stream(cn *conn, req *request, n int64) error {
	var gone chan struct{}
	var peeked chan error
	if req.sh.spacing > 0 {
		gone, peeked = make(chan struct{}), make(chan error, 1)
		go func() {
			_, err := cn.br.Peek(1)
			if err != nil {
				close(gone)
			}
			peeked <- err
		}()
	}
	fail := func(err error) error {
		_ = cn.c.Close()
		if peeked != nil {
			<-peeked
		}
		return err
	}
	bw := cn.bw
	cn.scratch = appendHeadEnd(cn.scratch[:0], n, req.closeConn)
	_, _ = bw.Write(e.wire.streamHead)
	_, _ = bw.Write(cn.scratch)
	_, _ = bw.Write(e.wire.start)
	if err := bw.Flush(); err != nil {
		return fail(err)
	}
	var timer *time.Timer
	if gone != nil {
		timer = time.NewTimer(req.sh.spacing)
		defer timer.Stop()
	}
	for i := range req.sh.deltas {
		if timer != nil {
			if i > 0 {
				timer.Reset(req.sh.spacing)
			}
			select {
			case <-timer.C:
			case <-gone:
				return fail(io.ErrUnexpectedEOF)
			}
		}
		cn.ev = e.s.appendDelta(cn.ev[:0], time.Now())
		cn.scratch = appendChunk(cn.scratch[:0], cn.ev)
		_, _ = bw.Write(cn.scratch)
		if err := bw.Flush(); err != nil {
			return fail(err)
		}
	}
	cn.ev = e.s.rd.appendFinal(cn.ev[:0], req.sh.deltas)
	cn.scratch = append(appendChunk(cn.scratch[:0], cn.ev), "0\r\n\r\n"...)
	_, _ = bw.Write(cn.scratch)
	if err := bw.Flush(); err != nil {
		return fail(err)
	}
	if peeked != nil {
		if req.closeConn {
			_ = cn.c.Close() // ends the watcher's Peek
		}
		if err := <-peeked; err != nil {
			return err
		}
	}
	return nil
}

func appendChunk(dst, data []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(data)), 16)
	dst = append(dst, '\r', '\n')
	dst = append(dst, data...)
	return append(dst, '\r', '\n')
}

func trimCRLF(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c, d := b[i], s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

// prefixConn is a connection handed to net/http: reads return prefix first.
// Its Close also drops it from the endpoint's set.
type prefixConn struct {
	net.Conn
	prefix []byte
	e      *Endpoint
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

func (c *prefixConn) Close() error {
	c.e.forget(c.Conn)
	return c.Conn.Close()
}

// connQueue is the net.Listener net/http serves: it yields the connections
// the fast path hands over.
type connQueue struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

var _ net.Listener = (*connQueue)(nil)

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.done) })
	return nil
}

func (q *connQueue) Addr() net.Addr { return q.addr }

func (q *connQueue) push(c net.Conn) {
	select {
	case q.ch <- c:
	case <-q.done:
		_ = c.Close()
	}
}
