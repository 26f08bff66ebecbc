package upstream

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/relaystation/relay/domain"
)

// ReadBody returns exactly the body, in pieces or whole; a body shorter
// than announced is an error; memory follows the bytes that arrive, not
// the length a client announces.
func TestReadBody(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 200<<10/16) // 200 KB, past the first 64 KB slice
	for _, tc := range []struct {
		name string
		body []byte
		r    func([]byte) io.Reader
	}{
		{"small", []byte(`{"model":"m"}`), func(b []byte) io.Reader { return bytes.NewReader(b) }},
		{"empty", nil, func(b []byte) io.Reader { return bytes.NewReader(b) }},
		{"large", big, func(b []byte) io.Reader { return bytes.NewReader(b) }},
		{"large, a byte at a time", big, func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) }},
		{"large, data with EOF", big, func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, n := range []int64{int64(len(tc.body)), -1} {
				got, err := ReadBody(tc.r(tc.body), n, 1<<20)
				if err != nil || !bytes.Equal(got, tc.body) {
					t.Fatalf("n %d: %d bytes, %v; want %d", n, len(got), err, len(tc.body))
				}
			}
		})
	}
	t.Run("shorter than announced", func(t *testing.T) {
		_, err := ReadBody(strings.NewReader("abc"), 10, 1<<20)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("longer than announced", func(t *testing.T) {
		got, err := ReadBody(strings.NewReader("abcdef"), 3, 1<<20)
		if err != nil || string(got) != "abc" {
			t.Fatalf("%q %v", got, err)
		}
	})
	t.Run("announced huge, little sent", func(t *testing.T) {
		got, err := ReadBody(iotest.TimeoutReader(strings.NewReader("abc")), 32<<20, 64<<20)
		if !errors.Is(err, iotest.ErrTimeout) || got != nil {
			t.Fatalf("%q %v", got, err)
		}
		// The bound is the first 64 KB slice, not the 32 MB announced.
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, _ = ReadBody(strings.NewReader("abc"), 32<<20, 64<<20)
		runtime.ReadMemStats(&after)
		if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
			t.Fatalf("a 3-byte body announced as 32 MB cost %d bytes", n)
		}
	})
	t.Run("over the limit", func(t *testing.T) {
		_, err := ReadBody(strings.NewReader("abc"), 10, 5)
		if domain.KindOf(err) != domain.KindTooLarge {
			t.Fatalf("err %v", err)
		}
		_, err = ReadBody(strings.NewReader("abcdefgh"), -1, 5)
		if domain.KindOf(err) != domain.KindTooLarge {
			t.Fatalf("err %v", err)
		}
	})
}
