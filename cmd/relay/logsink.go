package main

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// logSink buffers log output and writes it at most every interval (or when
// 32 KB have gathered), so one request line is not one write syscall. A
// crash loses at most one interval of log lines; Close flushes the rest.
type logSink struct {
	mu   sync.Mutex
	w    *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

func newLogSink(w io.Writer, interval time.Duration) *logSink {
	s := &logSink{w: bufio.NewWriterSize(w, 32<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				s.Flush()
			case <-s.stop:
				s.Flush()
				return
			}
		}
	}()
	return s
}

// Write buffers one log record. slog handlers write whole records, so a
// record is never split between flushes.
func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w.Available() < len(p) {
		if err := s.w.Flush(); err != nil {
			return 0, err
		}
	}
	return s.w.Write(p)
}

// Flush writes out what is buffered.
func (s *logSink) Flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.w.Flush()
}

// Close stops the flusher and writes out the rest.
func (s *logSink) Close() {
	close(s.stop)
	<-s.done
}
