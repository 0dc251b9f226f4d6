// Package recorder is the flight recorder of one cgroup: a bounded ring of
// its recent usage (every fast sample, merged by maximum into buckets of at
// least 100 ms so that the ring always covers the last minute) and of its
// recent full samples, so that an OOM record can show how the cgroup
// climbed to its limit even when every ordinary sample missed it.
package recorder // import "github.com/oomsight/oomsight/internal/recorder"

import "time"

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

// Size is the memory one Recorder holds, in bytes (the README's bound).
const Size = Points*(8+8) + FullPoints*(6*8)

// Full is one full sample: the memory files read at once.
type Full struct {
	T                                    int64 // unix nanoseconds
	Usage, Anon, File, ActiveFile, Shmem uint64
}

// Recorder is the ring of one cgroup. It is not safe for concurrent use.
type Recorder struct {
	bucket int64 // ns
	t      [Points]int64
	v      [Points]uint64
	start  int // index of the oldest point
	n      int

	full  [FullPoints]Full
	fhead int // index of the oldest full sample
	fn    int
}

// New returns an empty recorder whose buckets are the sampling interval, or
// MinBucket when that is shorter (or the fast pass is off).
func New(sampling time.Duration) *Recorder {
	return &Recorder{bucket: int64(max(sampling, MinBucket))}
}

// Add records a usage sample taken at t (unix ns). Samples in the bucket of
// the newest point merge into it by maximum; a late sample (an event sample
// taken before the newest fast sample but recorded after it) merges into
// the newest point.
func (r *Recorder) Add(t int64, usage uint64) {
	if r.n > 0 {
		last := (r.start + r.n - 1) % Points
		if t <= r.t[last] || t/r.bucket == r.t[last]/r.bucket {
			if usage > r.v[last] {
				r.v[last] = usage
				r.t[last] = max(t, r.t[last])
			}
			return
		}
	}
	if r.n == Points {
		r.start = (r.start + 1) % Points
		r.n--
	}
	i := (r.start + r.n) % Points
	r.t[i], r.v[i] = t, usage
	r.n++
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
		i := (r.start + k) % Points
		if r.t[i] > until {
			break
		}
		if first < 0 {
			first = r.t[i]
		}
		h.T = append(h.T, r.t[i]/int64(time.Millisecond))
		h.Usage = append(h.Usage, r.v[i])
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
