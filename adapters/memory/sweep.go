package memory

import (
	"sync"
	"time"
)

// sweeper calls fn every interval until stopped.
type sweeper struct {
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func startSweeper(interval time.Duration, fn func()) *sweeper {
	if interval <= 0 {
		return nil
	}
	s := &sweeper{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				fn()
			}
		}
	}()
	return s
}

// close stops the sweeper and waits for it; safe on nil and repeated calls.
func (s *sweeper) close() {
	if s == nil {
		return
	}
	s.once.Do(func() { close(s.stop) })
	<-s.done
}

// shardCount is a power of two well above the core counts this runs on, so
// two hot keys rarely share a shard lock.
const shardCount = 64
