// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package recorder is the flight recorder of one cgroup: a bounded ring of
// its recent usage (every fast sample, merged by maximum into buckets of at
// least 100 ms so that the ring always covers the last minute) and of its
// recent full samples, so that an OOM record can show how the cgroup
// climbed to its limit even when every ordinary sample missed it.
package recorder // import "github.com/oomsight/oomsight/internal/recorder"

import (
	"math"
	"time"

	"github.com/oomsight/oomsight/internal/eta"
)

const (
	// Points is the capacity of the usage ring and the most points a
	// History carries.
	Points = 600
	// FullPoints is the capacity of the full-sample ring.
	FullPoints = 64
	// MinBucket is the narrowest time bucket of the usage ring: 600 buckets
	// of at least 100 ms cover at least the last 60 s.
	MinBucket = 100 * time.Millisecond
)

// Size is the memory one Recorder holds, in bytes (the bound docs/design-peaks-and-kills.md states).
const Size = Points*(8+8) + FullPoints*(7*8)

// NoValue is a Full field the sample did not have (its file failed).
const NoValue = math.MaxUint64

// Full is one full sample: the memory files read at once.
type Full struct {
	T                                    int64 // unix nanoseconds
	Usage, Anon, File, ActiveFile, Shmem uint64
	// Unreclaimable is cgroupfs.Unreclaimable, NoValue when absent: it
	// feeds the time-to-OOM estimate (Trend), which must not read a
	// failed file as an empty cgroup.
	Unreclaimable uint64
}

// point is one bucket of the usage ring: its newest sample time and its
// highest usage. Time and value sit together so that an Add touches one
// cache line of the ring: the fast pass adds to a thousand recorders per
// tick, and each one is cold by the next.
type point struct {
	t int64 // unix nanoseconds
	v uint64
}

// Recorder is the ring of one cgroup. It is not safe for concurrent use.
type Recorder struct {
	bucket int64 // ns
	start  int   // index of the oldest point
	n      int
	// last is the index of the newest point and lastT, lastV, bucketEnd
	// its time, usage and the end of its bucket: kept beside the header so
	// that a sample merging into the newest point reads nothing else.
	last      int
	lastT     int64
	lastV     uint64
	bucketEnd int64
	p         [Points]point

	full  [FullPoints]Full
	fhead int // index of the oldest full sample
	fn    int
}

// New returns an empty recorder whose buckets are the sampling interval, or
// MinBucket when that is shorter (or the fast pass is off).
//
// Its rings are written through at once, so that their pages are resident
// from the start: the process's RSS is then its steady state within the
// first collection (Size bytes per cgroup), instead of creeping up for the
// first minute as the rings fill, which would look like a leak and hide
// what a memory limit must allow for.
func New(sampling time.Duration) *Recorder {
	r := &Recorder{bucket: int64(max(sampling, MinBucket))}
	for i := range r.p {
		r.p[i] = point{}
	}
	for i := range r.full {
		r.full[i] = Full{}
	}
	return r
}

// Add records a usage sample taken at t (unix ns, never negative). Samples
// in the bucket of the newest point merge into it by maximum; a late sample
// (an event sample taken before the newest fast sample but recorded after
// it) merges into the newest point.
func (r *Recorder) Add(t int64, usage uint64) {
	if r.n > 0 && (t <= r.lastT || t < r.bucketEnd) {
		if usage > r.lastV {
			r.lastV, r.lastT = usage, max(t, r.lastT)
			r.p[r.last] = point{r.lastT, r.lastV}
		}
		return
	}
	if r.n == Points {
		r.start = wrap(r.start + 1)
		r.n--
	}
	r.last = wrap(r.start + r.n)
	r.p[r.last] = point{t, usage}
	r.lastT, r.lastV = t, usage
	r.bucketEnd = (t/r.bucket + 1) * r.bucket
	r.n++
}

// wrap brings an index one past the ring's end back to its start.
func wrap(i int) int {
	if i >= Points {
		return i - Points
	}
	return i
}

// AddFull records a full sample (its usage goes into the usage ring too).
func (r *Recorder) AddFull(f Full) {
	r.Add(f.T, f.Usage)
	if r.fn == FullPoints {
		r.fhead = (r.fhead + 1) % FullPoints
		r.fn--
	}
	r.full[(r.fhead+r.fn)%FullPoints] = f
	r.fn++
}

// Trend fits the rise of the unreclaimable memory over the newest full
// samples (eta.Fitter: the last eta.Window, at least eta.MinPoints
// samples), newest first; samples without it are skipped. false when the
// samples show no real rise.
func (r *Recorder) Trend() (eta.Fit, bool) {
	var f eta.Fitter
	for k := r.fn - 1; k >= 0; k-- {
		s := &r.full[(r.fhead+k)%FullPoints]
		if s.Unreclaimable == NoValue {
			continue
		}
		if f.Enough(s.T) {
			break
		}
		f.Add(s.T, s.Unreclaimable)
	}
	return f.Fit()
}

// History is what a recorder held up to a moment, oldest first.
type History struct {
	T     []int64  // unix milliseconds
	Usage []uint64 // bytes, one per T
	Full  []Full   // the full samples in the same window
}

// History returns the points taken at or before until (unix ns).
func (r *Recorder) History(until int64) History {
	var h History
	first := int64(-1)
	for k := 0; k < r.n; k++ {
		pt := r.p[(r.start+k)%Points]
		if pt.t > until {
			break
		}
		if first < 0 {
			first = pt.t
		}
		h.T = append(h.T, pt.t/int64(time.Millisecond))
		h.Usage = append(h.Usage, pt.v)
	}
	for k := 0; k < r.fn; k++ {
		f := r.full[(r.fhead+k)%FullPoints]
		if f.T > until {
			break
		}
		if f.T >= first {
			h.Full = append(h.Full, f)
		}
	}
	return h
}

// UntilPeak returns h up to and including its last highest usage point.
// A kill known only from a cgroup's oom_kill counter is booked at a later
// reading, its time unknown; it came after that point (usage falls when
// the victim dies, and a container that survives the kill goes on being
// sampled), so what follows the peak is after the kill and would make the
// climb sentence describe the fall.
func (h History) UntilPeak() History {
	if len(h.Usage) == 0 {
		return h
	}
	peak := 0
	for i, v := range h.Usage {
		if v >= h.Usage[peak] {
			peak = i
		}
	}
	out := History{T: h.T[:peak+1], Usage: h.Usage[:peak+1]}
	for _, f := range h.Full {
		if f.T/int64(time.Millisecond) > h.T[peak] {
			break
		}
		out.Full = append(out.Full, f)
	}
	return out
}
