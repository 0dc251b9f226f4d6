// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package registry // import "github.com/oomsight/oomsight/internal/registry"

import (
	"math"
	"sync"
	"time"

	"github.com/oomsight/oomsight/internal/cgroupfs"
	"github.com/oomsight/oomsight/internal/eta"
	"github.com/oomsight/oomsight/internal/peak"
	"github.com/oomsight/oomsight/internal/recorder"
)

const (
	// MaxEvents is how many event samples of one cgroup wait for the next
	// collection: the first MaxEvents-1 and the latest, so that a cgroup
	// sitting at its limit adds a bounded number of data points.
	MaxEvents = 4
	// EventGap is the shortest time between two event samples of a cgroup
	// (OOM kills excepted): one pinned at its limit is read at most every
	// EventGap, not on every notification.
	EventGap = 100 * time.Millisecond
)

// Event is an event sample waiting for export, with the peak of the
// interval it closed.
type Event struct {
	Sample cgroupfs.Sample
	Peak   uint64
}

// state is what the samplers keep of one cgroup between samples.
type state struct {
	mu     sync.Mutex
	peak   peak.Tracker
	rec    *recorder.Recorder
	events []Event
	// The event sampler's view of failcnt (see LimitHit) and its rate
	// limit. The oom_kill counter is the kill accounting's (package
	// sampler), not kept here.
	failcnt   uint64
	counted   bool
	nextEvent time.Time
	// The v2 high events seen by the event sampler (HighHit), and the
	// limit of the latest full sample (0: none), which the fast pass
	// compares usage with to tell the limit zone.
	highs     uint64
	highsSeen bool
	limit     uint64
	// The start of this cgroup's cumulative series (see SeriesStart) and
	// the counters of the previous full sample, kept only to see a counter
	// go down (a new series); kills are counted by package sampler.
	start    time.Time
	prev     [len(counterFields)]uint64
	prevHas  [len(counterFields)]bool
	prevTime time.Time
	// The newest fast sample and whether one came since the last data
	// point (pointT), for the closing point of a removed cgroup (Final).
	fastT       time.Time
	fastUsage   uint64
	fastPending bool
	pointT      time.Time
	// The rise of the unreclaimable memory at the last full sample (see
	// ETA; the limit then is limit above, limited false when it had none);
	// rising false when it did not rise. Fitted only when an ETA is asked
	// (fitted false: not yet since the last full sample), so that a
	// receiver without cgroup.memory.oom.eta never pays for the fit.
	trend   eta.Fit
	rising  bool
	fitted  bool
	limited bool
	// The unreclaimable memory of the last full sample (unrecOK false:
	// none), for eta.AtLimit.
	unrec   uint64
	unrecOK bool
	// The time and usage of the newest sample the fit has (full or trend),
	// for trendDueLocked.
	trendT     time.Time
	trendUsage uint64
	// final: the last interval was handed out (Final); nothing more is
	// exported for this cgroup.
	final bool
}

// counterFields are the monotonic counters whose decrease means the series
// started again (the cgroup was recreated, or the kernel reset them).
var counterFields = [...]cgroupfs.Field{
	cgroupfs.Failcnt, cgroupfs.OOMKills, cgroupfs.PgFault, cgroupfs.PgMajFault,
	cgroupfs.PressureSome, cgroupfs.PressureFull,
}

// SeriesStart returns the start time of the cgroup's cumulative series at
// the full sample s: when this cgroup instance was first seen (a cgroup
// removed and created again under the same path is a new entry), or the
// previous sample's time if a counter went down since it, so that backends
// and cumulativetodelta see a new series instead of a drop.
func (e *Entry) SeriesStart(s *cgroupfs.Sample) time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, f := range counterFields {
		v, ok := s.Get(f)
		if ok && e.prevHas[i] && v < e.prev[i] && !e.prevTime.IsZero() {
			e.start = e.prevTime
		}
		e.prev[i], e.prevHas[i] = v, ok
	}
	e.prevTime = s.Time
	return e.start
}

// Fast records a fast sample: usage read at t. It returns the limit of
// the latest full sample (0: none), so that the fast pass can tell the
// limit zone without reading the limit.
func (e *Entry) Fast(t time.Time, usage uint64) (limit uint64) {
	limit, _ = e.FastTrend(t, usage)
	return limit
}

// FastTrend is Fast that also tells, under the same lock, whether a trend
// sample is due (trendDueLocked): the fast pass takes the entry's lock once per
// cgroup and pass.
func (e *Entry) FastTrend(t time.Time, usage uint64) (limit uint64, trendDue bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.peak.Observe(usage)
	e.rec.Add(t.UnixNano(), usage)
	e.fastT, e.fastUsage, e.fastPending = t, usage, true
	return e.limit, e.trendDueLocked(t, usage)
}

// Full records a full sample and returns its data point's peak: the
// highest usage since the previous data point (collection or event). ok is
// false when the sample has no usage (its file failed).
func (e *Entry) Full(s *cgroupfs.Sample) (uint64, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.fullLocked(s)
}

func (e *Entry) fullLocked(s *cgroupfs.Sample) (uint64, bool) {
	usage, ok := s.Get(cgroupfs.Usage)
	if !ok {
		return 0, false
	}
	r := peak.Reading{Usage: usage, SinceRead: s.PeakSinceRead}
	r.Peak, r.HasPeak = s.Get(cgroupfs.Peak)
	p, _ := e.peak.Point(r)
	e.fastPending, e.pointT = false, s.Time
	if !e.counted { // the event sampler's baseline
		e.failcnt, _ = s.Get(cgroupfs.Failcnt)
		e.counted = true
	}
	e.addFullLocked(s, usage)
	e.limit, e.limited = s.Get(cgroupfs.Limit)
	return p, true
}

// addFullLocked puts the memory.stat fields of s, with usage, into the
// flight recorder's full samples (the fit's points).
func (e *Entry) addFullLocked(s *cgroupfs.Sample, usage uint64) {
	f := recorder.Full{T: s.Time.UnixNano(), Usage: usage}
	f.Anon, _ = s.Get(cgroupfs.Anon)
	f.File, _ = s.Get(cgroupfs.File)
	f.ActiveFile, _ = s.Get(cgroupfs.ActiveFile)
	f.Shmem, _ = s.Get(cgroupfs.Shmem)
	f.Unreclaimable = recorder.NoValue
	if v, ok := s.Get(cgroupfs.Unreclaimable); ok {
		f.Unreclaimable = v
	}
	e.unrec, e.unrecOK = s.Get(cgroupfs.Unreclaimable)
	e.rec.AddFull(f)
	e.fitted = false
	e.trendT, e.trendUsage = s.Time, usage
}

// TrendGap is the shortest time between two samples of a cgroup's
// time-to-OOM fit: the fast pass adds a trend sample (AddTrend) at most
// this often, so that the fit has its eta.MinPoints within seconds of a
// climb's start however long the collection interval (the DaemonSet's
// 10 s would give the first estimate 40 s in).
const TrendGap = time.Second

// trendDueLocked tells whether the fast pass should read memory.stat of
// the cgroup for a trend sample at t (FastTrend): a limit applies to it,
// its usage rose by at least eta.MinRise since the newest sample the fit
// has, and that one is at least TrendGap old. A cgroup that does not
// climb is never read more than its collections read it.
func (e *Entry) trendDueLocked(t time.Time, usage uint64) bool {
	return e.limited && t.Sub(e.trendT) >= TrendGap && usage >= e.trendUsage+eta.MinRise
}

// AddTrend records a trend sample: s is memory.stat read at s.Time by the
// fast pass, usage the usage it had just read. It feeds the time-to-OOM
// fit and the flight recorder's full samples; it is no data point.
func (e *Entry) AddTrend(s *cgroupfs.Sample, usage uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.addFullLocked(s, usage)
}

// ownETA is the time from now until the cgroup's unreclaimable memory
// reaches its own limit, as its last full sample saw it: +Inf when it is
// not rising towards it (or more than eta.MaxSeconds away, or that sample
// is older than eta.Window) and not at it; 0 when it stopped rising at
// the limit (eta.AtLimit); false when the cgroup has no limit.
func (e *Entry) ownETA(now time.Time) (float64, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.limited {
		return 0, false
	}
	if !e.fitted { // once per full sample, however many descendants ask
		e.trend, e.rising = e.rec.Trend()
		e.fitted = true
	}
	if e.rising && now.UnixNano()-e.trend.At <= int64(eta.Window) {
		if s, ok := e.trend.Seconds(e.limit, now.UnixNano()); ok {
			return s, true
		}
	}
	if e.unrecOK && eta.AtLimit(e.unrec, e.limit) {
		return 0, true // at the limit, its rise stalled in reclaim
	}
	return math.Inf(1), true
}

// EventDue reports whether an event sample may be taken now, and if so
// reserves the slot: urgent ones (an OOM) always, others at most every
// EventGap.
func (e *Entry) EventDue(now time.Time, urgent bool) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !urgent && now.Before(e.nextEvent) {
		return false
	}
	e.nextEvent = now.Add(EventGap)
	return true
}

// LimitHit compares the failcnt of s (a v2 memory.events.local reading)
// with the previous one the event sampler saw and reports whether it rose.
// The first reading only sets the baseline.
func (e *Entry) LimitHit(s *cgroupfs.Sample) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	f, _ := s.Get(cgroupfs.Failcnt)
	hit := e.counted && f > e.failcnt
	e.failcnt, e.counted = f, true
	return hit
}

// Limit is the limit of the latest full sample (0: none).
func (e *Entry) Limit() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.limit
}

// HighHit compares the v2 high events of s (a memory.events.local
// reading) with the previous ones the event sampler saw and reports
// whether they rose (usage went over memory.high). The first reading only
// sets the baseline; a reading without them (v1) is never a hit.
func (e *Entry) HighHit(s *cgroupfs.Sample) bool {
	h, ok := s.Get(cgroupfs.EventsHigh)
	if !ok {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	hit := e.highsSeen && h > e.highs
	e.highs, e.highsSeen = h, true
	return hit
}

// Event records an event sample: into the recorder, and as a data point
// for the next collection.
func (e *Entry) Event(s *cgroupfs.Sample) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, ok := e.fullLocked(s)
	if !ok {
		return
	}
	ev := Event{Sample: *s, Peak: p}
	if len(e.events) < MaxEvents {
		e.events = append(e.events, ev)
	} else {
		e.events[MaxEvents-1] = ev
	}
}

// Reported adds what a kernel OOM report tells of this cgroup at a kill
// (package oompoint: its sample s, dated at the kill, and the peak there)
// as an event sample, when the series does not carry that kill yet, and
// reports whether the series carries it now. It carries it already when a
// data point after the kill was made (its read saw the kernel's own
// watermark, or the OOM event's sample), or when an event sample waiting
// for export is at least as high or later; it cannot any more when the
// last interval was handed out (Final) — the caller then emits the point
// on its own. The report's point is not recorded in the flight recorder:
// the records' climbs stay the samples the receiver read.
func (e *Entry) Reported(s *cgroupfs.Sample, peak uint64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.final {
		return false
	}
	if !s.Time.After(e.pointT) {
		return true
	}
	if n := len(e.events); n > 0 && (e.events[n-1].Peak >= peak || !s.Time.After(e.events[n-1].Sample.Time)) {
		return true
	}
	ev := Event{Sample: *s, Peak: peak}
	if len(e.events) < MaxEvents {
		e.events = append(e.events, ev)
	} else {
		e.events[MaxEvents-1] = ev
	}
	if e.fastPending && !e.fastT.After(s.Time) {
		// The fast samples before the kill are below it: the report's
		// point closes their interval.
		e.fastPending = false
	}
	e.pointT = s.Time
	return true
}

// TakeEvents appends the event samples waiting for export to dst, oldest
// first, and forgets them.
func (e *Entry) TakeEvents(dst []Event) []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	dst = append(dst, e.events...)
	e.events = e.events[:0]
	return dst
}

// History is the flight recorder's content up to until.
func (e *Entry) History(until time.Time) recorder.History {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.rec.History(until.UnixNano())
}

// Final hands out the last interval of a cgroup that was removed: the
// event samples not exported yet (appended to dst, oldest first, each with
// the peak of the interval it closed) and, when fast samples came after
// the last data point, a closing sample at the newest one's time with its
// usage and the interval's peak (the fast samples' highest): the files
// cannot be read any more, so it has no other field. closing is false
// when no fast sample came after the last data point. Called once per
// removed cgroup (Registry.TakeGone), so no point is handed out twice.
func (e *Entry) Final(dst []Event) (events []Event, closing Event, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	dst = append(dst, e.events...)
	e.events = e.events[:0]
	e.final = true
	if !e.fastPending {
		return dst, Event{}, false
	}
	t := e.fastT
	if !t.After(e.pointT) {
		// A fast sample read before the last data point but recorded
		// after it: its usage is in the peak, and the closing point
		// still comes after the last one.
		t = e.pointT.Add(time.Millisecond)
	}
	closing.Sample.Time = t
	closing.Sample.Set(cgroupfs.Usage, e.fastUsage)
	closing.Peak, _ = e.peak.Point(peak.Reading{Usage: e.fastUsage})
	e.fastPending, e.pointT = false, t
	return dst, closing, true
}

// Start is the start of the cgroup's cumulative series as the last full
// sample left it (see SeriesStart).
func (e *Entry) Start() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.start
}
