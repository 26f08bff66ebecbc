package metrics

import (
	"sync"
	"sync/atomic"
)

// childCache memoises label children (the results of WithLabelValues, which
// hashes its labels and allocates on every call). Reads are a lock-free load
// of an immutable map; a miss copies the map under a mutex. That suits sets
// that are small and bounded (every key here is built from bounded labels)
// and are read on every request but grow only a handful of times.
type childCache[K comparable, V any] struct {
	mu     sync.Mutex
	m      atomic.Pointer[map[K]V]
	create func(K) V
}

func newChildCache[K comparable, V any](create func(K) V) *childCache[K, V] {
	return &childCache[K, V]{create: create}
}

func (c *childCache[K, V]) get(k K) V {
	if m := c.m.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	var n map[K]V
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
		n = make(map[K]V, len(*old)+1)
		for kk, vv := range *old {
			n[kk] = vv
		}
	} else {
		n = make(map[K]V, 8)
	}
	v := c.create(k)
	n[k] = v
	c.m.Store(&n)
	return v
}

// nameSet bounds a label whose values come from configuration (upstream
// names): the first max distinct values are kept and later ones become
// "other", so a misconfiguration cannot blow up the series count. Names over
// the cap are not remembered, so memory stays bounded too.
type nameSet struct {
	max int
	mu  sync.Mutex
	m   atomic.Pointer[map[string]string]
}

func newNameSet(max int) *nameSet {
	s := &nameSet{max: max}
	empty := map[string]string{"": "none"}
	s.m.Store(&empty)
	return s
}

// canon returns the label value for name.
func (s *nameSet) canon(name string) string {
	if v, ok := (*s.m.Load())[name]; ok {
		return v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.m.Load()
	if v, ok := old[name]; ok {
		return v
	}
	// old always holds "", which does not count against the cap.
	if len(old)-1 >= s.max || len(name) > 64 {
		return classOther
	}
	n := make(map[string]string, len(old)+1)
	for k, v := range old {
		n[k] = v
	}
	n[name] = name
	s.m.Store(&n)
	return name
}

// counterRow is a fixed row of counters created on first use, so a series
// appears only once something is counted in it, and a hit costs one atomic
// load instead of hashing labels.
type counterRow[T any] struct {
	mu     sync.Mutex
	cells  []atomic.Pointer[T]
	create func(i int) *T
}

func newCounterRow[T any](n int, create func(i int) *T) *counterRow[T] {
	return &counterRow[T]{cells: make([]atomic.Pointer[T], n), create: create}
}

func (r *counterRow[T]) get(i int) *T {
	if c := r.cells[i].Load(); c != nil {
		return c
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.cells[i].Load(); c != nil {
		return c
	}
	c := r.create(i)
	r.cells[i].Store(c)
	return c
}
