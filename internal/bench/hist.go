package bench

import (
	"math/bits"
	"time"
)

// Hist is a log-linear latency histogram in the spirit of HDR Histogram:
// fixed size, no allocation per record, at most ~0.8% relative error, and
// mergeable, so each load-generator worker keeps its own.
type Hist struct {
	counts [histBuckets]uint64
	n      uint64
	min    int64
	max    int64
	sum    int64
}

const (
	subBits     = 8 // 2^subBits linear sub-buckets per power of two
	subCount    = 1 << subBits
	halfCount   = subCount / 2
	histBuckets = subCount + (63-subBits)*halfCount
)

func bucketOf(v int64) int {
	if v < subCount {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - subBits
	return subCount + (shift-1)*halfCount + int(uint64(v)>>uint(shift)) - halfCount
}

// bucketMid is the middle value of bucket i.
func bucketMid(i int) int64 {
	if i < subCount {
		return int64(i)
	}
	shift := (i-subCount)/halfCount + 1
	sub := int64((i-subCount)%halfCount + halfCount)
	lo := sub << uint(shift)
	return lo + (int64(1)<<uint(shift))/2
}

// Record adds one latency.
func (h *Hist) Record(d time.Duration) {
	v := int64(d)
	h.counts[bucketOf(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += v
}

// Merge adds o's records to h.
func (h *Hist) Merge(o *Hist) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// Count is the number of records.
func (h *Hist) Count() uint64 { return h.n }

// Max is the largest record.
func (h *Hist) Max() time.Duration { return time.Duration(h.max) }

// Mean is the average record.
func (h *Hist) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / int64(h.n))
}

// Quantile returns the value at q in [0,1]; 0 with no records.
func (h *Hist) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if q >= 1 {
		return time.Duration(h.max)
	}
	rank := uint64(q*float64(h.n)) + 1
	if rank > h.n {
		rank = h.n
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := bucketMid(i)
			if v > h.max {
				v = h.max
			}
			if v < h.min {
				v = h.min
			}
			return time.Duration(v)
		}
	}
	return time.Duration(h.max)
}
