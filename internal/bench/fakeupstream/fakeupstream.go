// Package fakeupstream is the benchmark's fake Anthropic API. It speaks
// HTTP/1.1 straight on the socket with pre-rendered responses, so that a
// request costs it a few microseconds: it must never be the bottleneck when
// the systems under test are measured.
//
// Endpoints:
//
//	POST /v1/messages               ~1 KB JSON message, or with "stream": true
//	                                a real SSE sequence (usage in message_start
//	                                and message_delta, cache fields included)
//	POST /v1/messages/count_tokens  {"input_tokens": 25}
//	GET  /v1/models, /v1/models/ID  a short model list / one model
//
// A streaming request chooses its shape with headers (relays forward them) or
// the same names as query parameters:
//
//	x-bench-events      number of content_block_delta events (default 10)
//	x-bench-spacing-ms  pause before each delta, in milliseconds (default 0)
//
// Each delta's text is "t<unix-nanos> ", the moment it was written, so a
// client in the same process can compute per-event delay exactly.
package fakeupstream

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// Defaults for a streaming request that names no shape.
const (
	DefaultEvents  = 10
	maxEvents      = 100_000
	maxHeaderBytes = 64 << 10
	maxBodyBytes   = 64 << 20
)

// Header names a client uses to shape a streaming response.
const (
	HeaderEvents    = "x-bench-events"
	HeaderSpacingMS = "x-bench-spacing-ms"
)

// Server is a running fake upstream.
type Server struct {
	ln     net.Listener
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// Start listens on addr ("127.0.0.1:0" for any port) and serves until Close.
func Start(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("fake upstream listen: %w", err)
	}
	s := &Server{ln: ln, conns: make(map[net.Conn]struct{})}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the base URL to give a client or a relay as its upstream.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Close stops accepting, closes every connection (ending open streams) and
// waits for the connection goroutines to return.
func (s *Server) Close() error {
	err := s.ln.Close()
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(c)
	}
}

// request is what the fake needs from one parsed request; its buffers are
// reused across the requests of a connection.
type request struct {
	method, path []byte
	query        []byte
	body         []byte
	contentLen   int64
	chunked      bool
	closeConn    bool
	events       int
	spacing      time.Duration
}

func (s *Server) serve(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		_ = c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	br := bufio.NewReaderSize(c, 16<<10)
	bw := bufio.NewWriterSize(c, 16<<10)
	var req request
	var scratch []byte
	for {
		if err := readRequest(br, &req); err != nil {
			if !errors.Is(err, io.EOF) {
				_, _ = bw.Write(respBadRequest)
				_ = bw.Flush()
			}
			return
		}
		var err error
		switch {
		case string(req.method) == "POST" && string(req.path) == "/v1/messages":
			if isStream(req.body) {
				scratch, err = s.stream(c, br, bw, &req, scratch)
				if err != nil {
					return
				}
				continue
			}
			_, err = bw.Write(respMessage)
		case string(req.method) == "POST" && string(req.path) == "/v1/messages/count_tokens":
			_, err = bw.Write(respCountTokens)
		case string(req.method) == "GET" && string(req.path) == "/v1/models":
			_, err = bw.Write(respModels)
		case string(req.method) == "GET" && bytes.HasPrefix(req.path, []byte("/v1/models/")):
			_, err = bw.Write(respModel)
		default:
			_, err = bw.Write(respNotFound)
		}
		if err == nil && br.Buffered() == 0 {
			err = bw.Flush()
		}
		if err != nil || req.closeConn {
			_ = bw.Flush()
			return
		}
	}
}

// stream writes the SSE sequence. A watcher peeks at the connection so that
// a client hanging up ends a long pause at once; Peek leaves any bytes of a
// next request in the buffer, so the connection stays reusable.
func (s *Server) stream(c net.Conn, br *bufio.Reader, bw *bufio.Writer, req *request, scratch []byte) ([]byte, error) {
	gone := make(chan struct{})
	peeked := make(chan error, 1)
	go func() {
		_, err := br.Peek(1)
		if err != nil {
			close(gone)
		}
		peeked <- err
	}()
	fail := func(err error) ([]byte, error) {
		_ = c.Close()
		<-peeked
		return scratch, err
	}
	if _, err := bw.Write(respStreamHead); err != nil {
		return fail(err)
	}
	for _, ev := range streamPrefix {
		scratch = appendChunk(scratch[:0], ev)
		if _, err := bw.Write(scratch); err != nil {
			return fail(err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fail(err)
	}
	var timer *time.Timer
	if req.spacing > 0 {
		timer = time.NewTimer(time.Hour)
		defer timer.Stop()
	}
	var ev []byte
	for i := 0; i < req.events; i++ {
		if timer != nil {
			timer.Reset(req.spacing)
			select {
			case <-timer.C:
			case <-gone:
				return fail(io.ErrUnexpectedEOF)
			}
		}
		ev = append(ev[:0], deltaHead...)
		ev = strconv.AppendInt(ev, time.Now().UnixNano(), 10)
		ev = append(ev, deltaTail...)
		scratch = appendChunk(scratch[:0], ev)
		if _, err := bw.Write(scratch); err != nil {
			return fail(err)
		}
		if err := bw.Flush(); err != nil {
			return fail(err)
		}
	}
	scratch = appendChunk(scratch[:0], evBlockStop)
	ev = append(ev[:0], msgDeltaHead...)
	ev = strconv.AppendInt(ev, int64(req.events+1), 10)
	ev = append(ev, msgDeltaTail...)
	scratch = appendChunk(scratch, ev)
	scratch = appendChunk(scratch, evMessageStop)
	scratch = append(scratch, "0\r\n\r\n"...)
	if _, err := bw.Write(scratch); err != nil {
		return fail(err)
	}
	if err := bw.Flush(); err != nil {
		return fail(err)
	}
	if err := <-peeked; err != nil || req.closeConn {
		return scratch, io.EOF
	}
	return scratch, nil
}

func appendChunk(dst, data []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(data)), 16)
	dst = append(dst, '\r', '\n')
	dst = append(dst, data...)
	return append(dst, '\r', '\n')
}

var errMalformed = errors.New("malformed request")

// readRequest parses one HTTP/1.1 request into req, reading its body fully.
func readRequest(br *bufio.Reader, req *request) error {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if len(line) == 0 && (errors.Is(err, io.EOF) || isClosed(err)) {
			return io.EOF
		}
		return errMalformed
	}
	line = trimCRLF(line)
	sp1 := bytes.IndexByte(line, ' ')
	sp2 := bytes.LastIndexByte(line, ' ')
	if sp1 <= 0 || sp2 <= sp1 {
		return errMalformed
	}
	req.method = append(req.method[:0], line[:sp1]...)
	target := line[sp1+1 : sp2]
	req.query = req.query[:0]
	if q := bytes.IndexByte(target, '?'); q >= 0 {
		req.query = append(req.query, target[q+1:]...)
		target = target[:q]
	}
	req.path = append(req.path[:0], target...)
	req.contentLen, req.chunked, req.closeConn = 0, false, false
	req.events, req.spacing = DefaultEvents, 0
	total := len(line)
	for {
		h, err := br.ReadSlice('\n')
		if err != nil {
			return errMalformed
		}
		total += len(h)
		if total > maxHeaderBytes {
			return errMalformed
		}
		h = trimCRLF(h)
		if len(h) == 0 {
			break
		}
		colon := bytes.IndexByte(h, ':')
		if colon <= 0 {
			return errMalformed
		}
		name, val := h[:colon], bytes.TrimSpace(h[colon+1:])
		switch {
		case asciiEqualFold(name, "content-length"):
			n, err := strconv.ParseInt(string(val), 10, 64)
			if err != nil || n < 0 || n > maxBodyBytes {
				return errMalformed
			}
			req.contentLen = n
		case asciiEqualFold(name, "transfer-encoding"):
			req.chunked = asciiEqualFold(val, "chunked")
		case asciiEqualFold(name, "connection"):
			req.closeConn = asciiEqualFold(val, "close")
		case asciiEqualFold(name, HeaderEvents):
			if n, err := strconv.Atoi(string(val)); err == nil && n >= 0 && n <= maxEvents {
				req.events = n
			}
		case asciiEqualFold(name, HeaderSpacingMS):
			if n, err := strconv.ParseFloat(string(val), 64); err == nil && n >= 0 {
				req.spacing = time.Duration(n * float64(time.Millisecond))
			}
		}
	}
	if len(req.query) > 0 {
		applyQuery(req)
	}
	req.body = req.body[:0]
	if req.chunked {
		return readChunked(br, req)
	}
	if req.contentLen > 0 {
		if int64(cap(req.body)) < req.contentLen {
			req.body = make([]byte, req.contentLen)
		}
		req.body = req.body[:req.contentLen]
		if _, err := io.ReadFull(br, req.body); err != nil {
			return errMalformed
		}
	}
	return nil
}

func readChunked(br *bufio.Reader, req *request) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return errMalformed
		}
		line = trimCRLF(line)
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
		if err != nil || n < 0 || int64(len(req.body))+n > maxBodyBytes {
			return errMalformed
		}
		if n == 0 {
			for { // trailers
				t, err := br.ReadSlice('\n')
				if err != nil {
					return errMalformed
				}
				if len(trimCRLF(t)) == 0 {
					return nil
				}
			}
		}
		start := len(req.body)
		req.body = append(req.body, make([]byte, n)...)
		if _, err := io.ReadFull(br, req.body[start:]); err != nil {
			return errMalformed
		}
		if crlf, err := br.ReadSlice('\n'); err != nil || len(trimCRLF(crlf)) != 0 {
			return errMalformed
		}
	}
}

func applyQuery(req *request) {
	for _, kv := range bytes.Split(req.query, []byte("&")) {
		k, v, ok := bytes.Cut(kv, []byte("="))
		if !ok {
			continue
		}
		switch string(k) {
		case HeaderEvents:
			if n, err := strconv.Atoi(string(v)); err == nil && n >= 0 && n <= maxEvents {
				req.events = n
			}
		case HeaderSpacingMS:
			if n, err := strconv.ParseFloat(string(v), 64); err == nil && n >= 0 {
				req.spacing = time.Duration(n * float64(time.Millisecond))
			}
		}
	}
}

// isStream finds "stream": true at any depth; a benchmark body is small and
// well-formed, so a scan is enough and far cheaper than decoding JSON.
func isStream(body []byte) bool {
	for {
		i := bytes.Index(body, []byte(`"stream"`))
		if i < 0 {
			return false
		}
		body = body[i+len(`"stream"`):]
		j := 0
		for j < len(body) && (body[j] == ' ' || body[j] == '\t' || body[j] == '\n' || body[j] == '\r') {
			j++
		}
		if j < len(body) && body[j] == ':' {
			j++
			for j < len(body) && (body[j] == ' ' || body[j] == '\t' || body[j] == '\n' || body[j] == '\r') {
				j++
			}
			return bytes.HasPrefix(body[j:], []byte("true"))
		}
	}
}

func trimCRLF(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
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

func isClosed(err error) bool { return errors.Is(err, net.ErrClosed) }
