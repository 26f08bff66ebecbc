package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// rawConn is the load generator's HTTP/1.1 client: one keep-alive
// connection, a pre-rendered request and a response parser that discards the
// body without allocating. It costs a small fraction of what net/http's
// client does, which keeps the generator's core from saturating before the
// system under test does.
type rawConn struct {
	addr string
	req  []byte
	c    net.Conn
	br   *bufio.Reader
}

func newRawConn(addr string, req []byte) *rawConn {
	return &rawConn{addr: addr, req: req}
}

func (rc *rawConn) close() {
	if rc.c != nil {
		_ = rc.c.Close()
		rc.c = nil
	}
}

func (rc *rawConn) dial() error {
	c, err := net.DialTimeout("tcp", rc.addr, 5*time.Second)
	if err != nil {
		return err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	rc.c = c
	if rc.br == nil {
		rc.br = bufio.NewReaderSize(c, 32<<10)
	} else {
		rc.br.Reset(c)
	}
	return nil
}

var errStatusLine = errors.New("malformed status line")

// do sends the request and reads the whole response. A stale keep-alive
// connection is redialled once, as net/http does.
func (rc *rawConn) do(deadline time.Time) (int, error) {
	for attempt := 0; ; attempt++ {
		fresh := rc.c == nil
		if fresh {
			if err := rc.dial(); err != nil {
				return 0, err
			}
		}
		if !deadline.IsZero() {
			_ = rc.c.SetDeadline(deadline)
		}
		status, err := rc.roundTrip()
		if err == nil {
			return status, nil
		}
		rc.close()
		if fresh || attempt > 0 || status != 0 {
			return status, err
		}
	}
}

func (rc *rawConn) roundTrip() (int, error) {
	if _, err := rc.c.Write(rc.req); err != nil {
		return 0, err
	}
	line, err := rc.br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, errStatusLine
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, errStatusLine
	}
	contentLen, chunked, closeConn := int64(-1), false, false
	for {
		h, err := rc.br.ReadSlice('\n')
		if err != nil {
			return status, err
		}
		h = trimCRLF(h)
		if len(h) == 0 {
			break
		}
		colon := bytes.IndexByte(h, ':')
		if colon <= 0 {
			continue
		}
		name, val := h[:colon], bytes.TrimSpace(h[colon+1:])
		switch {
		case asciiEqualFold(name, "content-length"):
			n, err := strconv.ParseInt(string(val), 10, 64)
			if err != nil {
				return status, fmt.Errorf("content-length %q", val)
			}
			contentLen = n
		case asciiEqualFold(name, "transfer-encoding"):
			chunked = asciiEqualFold(val, "chunked")
		case asciiEqualFold(name, "connection"):
			closeConn = asciiEqualFold(val, "close")
		}
	}
	switch {
	case chunked:
		if err := discardChunked(rc.br); err != nil {
			return status, err
		}
	case contentLen >= 0:
		if _, err := rc.br.Discard(int(contentLen)); err != nil {
			return status, err
		}
	default: // body delimited by close
		_, _ = io.Copy(io.Discard, rc.br)
		closeConn = true
	}
	if closeConn {
		rc.close()
	}
	return status, nil
}

func discardChunked(br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		line = trimCRLF(line)
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
		if err != nil {
			return fmt.Errorf("chunk size %q", line)
		}
		if n == 0 {
			for {
				t, err := br.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(trimCRLF(t)) == 0 {
					return nil
				}
			}
		}
		if _, err := br.Discard(int(n) + 2); err != nil {
			return err
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
