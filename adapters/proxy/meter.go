package proxy

import (
	"compress/gzip"
	"compress/zlib"
	"io"
	"strings"
	"sync"

	"github.com/relaystation/relay/adapters/anthropic"
	"github.com/relaystation/relay/domain/relay"
)

// proxyMeter reads usage from an answer as it passes through, without
// keeping it: an SSE parser for streams (Anthropic's or OpenAI's events), a
// bounded scanner for JSON bodies of any size. An answer compressed against
// the relay's Accept-Encoding: identity is decoded on the side (the client
// still gets the bytes unchanged); one it cannot decode is unreadable and
// bills the reservation.
type proxyMeter struct {
	kind       meterKind
	sse        *anthropic.StreamParser
	chat       *anthropic.ChatStreamParser
	js         *anthropic.JSONScanner
	dec        *meterDecoder
	unreadable bool
}

// The parsers keep their buffers across Reset, so they are pooled: a
// request then allocates none of them.
var (
	sseParsers  = sync.Pool{New: func() any { return new(anthropic.StreamParser) }}
	chatParsers = sync.Pool{New: func() any { return new(anthropic.ChatStreamParser) }}
	jsonScanner = sync.Pool{New: func() any { return new(anthropic.JSONScanner) }}
)

// release returns the parsers to their pools; the meter is unusable after.
func (m *proxyMeter) release() {
	if m.sse != nil {
		m.sse.Reset()
		sseParsers.Put(m.sse)
		m.sse = nil
	}
	if m.chat != nil {
		m.chat.Reset()
		chatParsers.Put(m.chat)
		m.chat = nil
	}
	if m.js != nil {
		m.js.Format = anthropic.FormatMessages
		m.js.Reset()
		jsonScanner.Put(m.js)
		m.js = nil
	}
}

type meterKind uint8

const (
	meterJSON meterKind = iota
	meterSSE
	meterChatSSE
)

// maxDecoded bounds what a compressed answer may decode to (a bomb costs
// CPU, not memory: the parsers keep nothing), past which it is unreadable.
const maxDecoded = 256 << 20

func (m *proxyMeter) start(ep relay.Endpoint, stream bool, encoding string) {
	switch {
	case stream && ep == relay.EndpointChatCompletions:
		m.kind = meterChatSSE
		m.chat = chatParsers.Get().(*anthropic.ChatStreamParser)
	case stream:
		m.kind = meterSSE
		m.sse = sseParsers.Get().(*anthropic.StreamParser)
	default:
		m.kind = meterJSON
		m.js = jsonScanner.Get().(*anthropic.JSONScanner)
		if ep == relay.EndpointChatCompletions {
			m.js.Format = anthropic.FormatChat
		}
	}
	switch enc := strings.ToLower(strings.TrimSpace(encoding)); enc {
	case "", "identity":
	case "gzip", "x-gzip", "deflate":
		m.dec = newMeterDecoder(enc, m.consume)
	default:
		m.unreadable = true
	}
}

func (m *proxyMeter) feed(p []byte) {
	switch {
	case m.unreadable:
	case m.dec != nil:
		m.dec.write(p)
	default:
		m.consume(p)
	}
}

func (m *proxyMeter) consume(p []byte) {
	switch m.kind {
	case meterSSE:
		m.sse.Feed(p)
	case meterChatSSE:
		m.chat.Feed(p)
	default:
		m.js.Feed(p)
	}
}

// reply reports what the answer said; whole is true when it arrived to
// its end.
func (m *proxyMeter) reply(whole bool) relay.Reply {
	if m.dec != nil {
		if err := m.dec.close(); err != nil && whole {
			m.unreadable = true
		}
	}
	var r relay.Reply
	switch m.kind {
	case meterSSE:
		res := m.sse.Result()
		r = relay.Reply{Usage: res.Usage, Iterations: res.Iterations, ServerTools: res.ServerTools,
			ServiceTier: res.ServiceTier, Speed: res.Speed, InferenceGeo: res.InferenceGeo, Model: res.Model,
			Complete: res.Complete, InputReported: res.SawMessageStart, ErrorType: res.ErrorType}
		if res.OutputEstimated {
			r.OutputEstimate = res.Usage.OutputTokens
		}
	case meterChatSSE:
		res := m.chat.Result()
		r = relay.Reply{Usage: res.Usage, Model: res.Model, Complete: res.HasUsage, InputReported: res.HasUsage,
			ErrorType: res.ErrorType}
		if res.OutputEstimated {
			r.OutputEstimate = res.Usage.OutputTokens
		}
	default:
		res := m.js.Result()
		r = relay.Reply{Usage: res.Usage, Iterations: res.Iterations, ServerTools: res.ServerTools,
			ServiceTier: res.ServiceTier, Speed: res.Speed, InferenceGeo: res.InferenceGeo, Model: res.Model,
			Complete: whole && res.HasUsage, InputReported: res.HasUsage, ErrorType: res.ErrorType}
	}
	r.Unreadable = m.unreadable
	return r
}

// meterDecoder decompresses a copy of the answer in its own goroutine and
// hands the plain bytes to sink.
type meterDecoder struct {
	pw   *io.PipeWriter
	done chan error
}

func newMeterDecoder(enc string, sink func([]byte)) *meterDecoder {
	pr, pw := io.Pipe()
	d := &meterDecoder{pw: pw, done: make(chan error, 1)}
	go func() {
		var r io.ReadCloser
		var err error
		switch enc {
		case "deflate":
			// HTTP's "deflate" is zlib-wrapped (RFC 9110); a raw stream
			// fails here and is unreadable.
			r, err = zlib.NewReader(pr)
		default:
			r, err = gzip.NewReader(pr)
		}
		if err == nil {
			buf := make([]byte, 32<<10)
			var n int64
			for {
				k, rerr := r.Read(buf)
				n += int64(k)
				if k > 0 && n <= maxDecoded {
					sink(buf[:k])
				}
				if rerr != nil {
					if rerr != io.EOF {
						err = rerr
					}
					break
				}
			}
			if n > maxDecoded {
				err = io.ErrShortBuffer
			}
			_ = r.Close()
		}
		// Drain, so a writer is never blocked by a decoder that gave up.
		_, _ = io.Copy(io.Discard, pr)
		d.done <- err
	}()
	return d
}

func (d *meterDecoder) write(p []byte) { _, _ = d.pw.Write(p) }

func (d *meterDecoder) close() error {
	_ = d.pw.Close()
	return <-d.done
}
