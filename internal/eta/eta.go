// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package eta estimates how long a cgroup has until its unreclaimable
// memory (what only a kill frees) reaches its memory limit, from the full
// samples of its flight recorder: a least-squares line through the recent
// samples, trusted only when the rise is real (see Fitter.Fit), then
// extrapolated to the limit (Fit.Seconds). It is pure: no clock, no I/O.
//
// Why a least-squares slope over the last 30 s (Window) of full samples,
// and not two samples or a longer window: the proof workloads of
// docs/oom-eta.md. A ramp of 4 MiB/s into 256 MiB lasts 64 s; from 30 s
// before its kill on, a 30 s window lies wholly on the ramp, so the slope
// is the ramp's own rate and the estimate is within a few per cent,
// whereas a 60 s window would still hold the flat start and give twice
// the time. Two samples (what a PromQL deriv over two scrapes sees) follow
// every allocator burst and garbage collection; thirty average them out.
// Page cache never enters the estimate: it is not unreclaimable, so a
// log file filling the limit with cache leaves the line flat.
package eta // import "github.com/oomsight/oomsight/internal/eta"

import (
	"math"
	"time"
)

const (
	// Window is the span of full samples the rate is fitted over.
	Window = 30 * time.Second
	// MinPoints is the fewest full samples a fit uses: when the last
	// Window holds fewer (collection_interval above 7.5 s), the fit
	// reaches back to the last MinPoints samples.
	MinPoints = 5
	// MinRise is the smallest rise over the fitted span that counts as
	// rising: less is allocator noise whatever its slope, and would
	// extrapolate to hours.
	MinRise = 1 << 20
	// MinT is how many standard errors the slope must lie above zero: a
	// sawtooth (a garbage-collected heap, a cache of buffers) has a slope
	// of either sign from one window to the next, a leak or a ramp a
	// steady one far above its error.
	MinT = 4.0
	// Recent is the span at the end of the window over which the rise
	// must go on: in each of its halves, at least half the fitted rate
	// (the halves are the last intervals when samples are further apart).
	// A ramp rises throughout; a step (a service allocating its heap at
	// start) leaves a slope in the window for 30 s but rises in one
	// interval only, and must not read as a kill on its way.
	Recent = 5 * time.Second
	// MaxSeconds caps the estimate: past a day a linear extrapolation
	// from the last half minute says nothing.
	MaxSeconds = 86400.0
)

// Fitter accumulates the points of one least-squares fit. Points are
// added newest first (the recorder walks back from its newest full
// sample); times and values are taken relative to the first point added,
// which keeps the sums well conditioned at nanosecond and byte scale.
// The zero value is ready to use.
type Fitter struct {
	n                     int
	t0, oldest            int64
	v0                    uint64
	sx, sy, sxx, sxy, syy float64
	// The newest points at least Recent/2 and Recent older than the first
	// (else the oldest so far), for the rise at the end of the window.
	midT, recentT   int64
	midV, recentV   uint64
	midOK, recentOK bool
}

// Add adds a point: t in unix nanoseconds, v the unreclaimable bytes.
func (f *Fitter) Add(t int64, v uint64) {
	if f.n == 0 {
		f.t0, f.v0, f.oldest = t, v, t
	}
	x := float64(t-f.t0) / 1e9
	y := float64(v) - float64(f.v0)
	f.n++
	f.oldest = min(f.oldest, t)
	if !f.midOK {
		f.midT, f.midV = t, v
		f.midOK = f.t0-t >= int64(Recent/2)
	}
	if !f.recentOK {
		f.recentT, f.recentV = t, v
		f.recentOK = f.t0-t >= int64(Recent)
	}
	f.sx += x
	f.sy += y
	f.sxx += x * x
	f.sxy += x * y
	f.syy += y * y
}

// Enough reports whether the fit has what it needs before a point taken
// at next (unix ns, older than those added): at least MinPoints points,
// and next lies outside Window from the newest. The caller adds points
// newest first until it is true, so that a fit covers the last Window,
// or the last MinPoints samples when those reach further back.
func (f *Fitter) Enough(next int64) bool {
	return f.n >= MinPoints && f.t0-next > int64(Window)
}

// Fit is a rising trend: at At (unix ns) the unreclaimable memory was
// Value bytes and rose by Rate bytes per second.
type Fit struct {
	At    int64
	Value uint64
	Rate  float64
}

// Fit returns the trend of the points added, and false when they do not
// show a real rise: fewer than MinPoints points (or all at one time), a
// slope that is not positive or lies within MinT standard errors of zero,
// a fitted rise over the span below MinRise, or a rise below half the
// fitted rate in either half of the last Recent (it stopped rising, or
// rose in one step).
func (f *Fitter) Fit() (Fit, bool) {
	if f.n < MinPoints {
		return Fit{}, false
	}
	n := float64(f.n)
	sxx := f.sxx - f.sx*f.sx/n // Σ(x-x̄)²
	if sxx <= 0 {
		return Fit{}, false
	}
	sxy := f.sxy - f.sx*f.sy/n
	syy := f.syy - f.sy*f.sy/n
	slope := sxy / sxx
	if !(slope > 0) {
		return Fit{}, false
	}
	// The residuals' sum of squares, and the slope's standard error.
	rss := max(syy-slope*sxy, 0)
	se := math.Sqrt(rss / (n - 2) / sxx)
	if slope < MinT*se {
		return Fit{}, false
	}
	span := float64(f.t0-f.oldest) / 1e9
	if slope*span < MinRise {
		return Fit{}, false
	}
	if !rises(f.midT, f.midV, f.t0, f.v0, slope) || !rises(f.recentT, f.recentV, f.midT, f.midV, slope) {
		return Fit{}, false
	}
	return Fit{At: f.t0, Value: f.v0, Rate: slope}, true
}

// rises reports whether the value rose from (t1, v1) to the later
// (t2, v2) at least at half the rate slope (bytes per second); a span of
// no time (one point) does not object.
func rises(t1 int64, v1 uint64, t2 int64, v2 uint64, slope float64) bool {
	if t2 <= t1 {
		return true
	}
	return float64(v2)-float64(v1) >= slope/2*float64(t2-t1)/1e9
}

// Seconds is the time from now (unix ns) until the trend reaches limit
// bytes: 0 when it already has, false when that is more than MaxSeconds
// away (or the fit is not a rise).
func (t Fit) Seconds(limit uint64, now int64) (float64, bool) {
	if !(t.Rate > 0) {
		return 0, false
	}
	left := (float64(limit)-float64(t.Value))/t.Rate - float64(now-t.At)/1e9
	if left > MaxSeconds {
		return 0, false
	}
	return max(left, 0), true
}

// AtLimit reports whether value (unreclaimable bytes) has reached limit
// but for a headroom of 2 % of the limit (at least MinRise): reclaim can
// free nothing more, so the next allocation is a kill. A rise that still
// goes on keeps its estimate (it is the more exact); one that stopped
// there reads 0, not "not rising": in the last second before its kill a
// growing process stalls in reclaim, and its rise pauses (measured in
// TestOOMETAProofs' ramp).
func AtLimit(value, limit uint64) bool {
	if limit == 0 {
		return false
	}
	headroom := max(uint64(MinRise), limit/50)
	return value >= limit || limit-value <= headroom
}

// Soonest is the least of the estimates that are present (ok), false when
// none is.
func Soonest(a float64, aok bool, b float64, bok bool) (float64, bool) {
	switch {
	case aok && bok:
		return min(a, b), true
	case aok:
		return a, true
	default:
		return b, bok
	}
}
