// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package eta

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	sec = int64(time.Second)
	mib = 1 << 20
)

// series is one sample a second for n seconds ending at end (unix ns),
// value f(seconds since the first), fed newest first until Enough.
func fit(n int, step time.Duration, end int64, f func(x float64) float64) (Fit, bool) {
	var ft Fitter
	for i := n - 1; i >= 0; i-- {
		t := end - int64(n-1-i)*int64(step)
		if ft.Enough(t) {
			break
		}
		ft.Add(t, uint64(max(f(float64(i)*step.Seconds()), 0)))
	}
	return ft.Fit()
}

func step(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// TestFitTable: which shapes count as a rise, and the rate found.
func TestFitTable(t *testing.T) {
	end := 1000 * sec
	// A deterministic jitter of ±8 MiB, like a garbage-collected heap.
	jitter := func(x float64) float64 { return 8 * mib * math.Sin(x*2.3) }
	for _, tc := range []struct {
		name   string
		n      int
		step   time.Duration
		f      func(x float64) float64
		rising bool
		rate   float64 // bytes/s, within 5 %
	}{
		{"4 MiB/s ramp", 40, time.Second, func(x float64) float64 { return 4 * mib * x }, true, 4 * mib},
		{"ramp with 1 MiB steps every 250 ms sampled each second", 40, time.Second, func(x float64) float64 { return mib * math.Floor(x*4) }, true, 4 * mib},
		{
			"ramp after a flat minute: only the window counts", 90, time.Second,
			func(x float64) float64 { return 4 * mib * max(x-50, 0) }, true, 4 * mib,
		},
		{"ramp with GC jitter", 40, time.Second, func(x float64) float64 { return 50*mib + 4*mib*x + jitter(x) }, true, 4 * mib},
		{"steady 200 MiB", 40, time.Second, func(float64) float64 { return 200 * mib }, false, 0},
		{"steady 200 MiB with one page more", 40, time.Second, func(x float64) float64 { return 200*mib + 4096*math.Floor(x/30) }, false, 0},
		{"GC sawtooth, no trend", 40, time.Second, func(x float64) float64 { return 100*mib + 40*mib*math.Mod(x, 13)/13 }, false, 0},
		{"GC sawtooth, 17 s period", 40, time.Second, func(x float64) float64 { return 100*mib + 40*mib*math.Mod(x, 17)/17 }, false, 0},
		{"jitter only", 40, time.Second, func(x float64) float64 { return 100*mib + jitter(x) }, false, 0},
		{"falling", 40, time.Second, func(x float64) float64 { return 200*mib - mib*x }, false, 0},
		{"slow leak: 10 KiB/s is below MinRise per window", 40, time.Second, func(x float64) float64 { return 100*mib + 10240*x }, false, 0},
		{"leak of 100 KiB/s is a rise", 40, time.Second, func(x float64) float64 { return 100*mib + 102400*x }, true, 102400},
		// A service allocating 200 MiB at start, then holding it: the step
		// leaves a slope in the window, but the rise has stopped.
		{"step of 200 MiB 10 s ago", 40, time.Second, func(x float64) float64 { return 200 * mib * step(x >= 29) }, false, 0},
		{"step of 200 MiB 15 s ago", 40, time.Second, func(x float64) float64 { return 200 * mib * step(x >= 24) }, false, 0},
		{"ramp that stopped 6 s ago", 40, time.Second, func(x float64) float64 { return 4 * mib * min(x, 33) }, false, 0},
		{"step of 200 MiB 1 s ago", 40, time.Second, func(x float64) float64 { return 200 * mib * step(x >= 39) }, false, 0},
		{"step of 200 MiB 3 s ago", 40, time.Second, func(x float64) float64 { return 200 * mib * step(x >= 36) }, false, 0},
		// The same in a cgroup sampled for a few seconds only (created just
		// before): without the two halves of Recent these read as a rise.
		{"young cgroup (8 samples), step of 200 MiB 3 s ago", 8, time.Second, func(x float64) float64 { return 200 * mib * step(x >= 4) }, false, 0},
		{"young cgroup (12 samples), step of 200 MiB 4 s ago", 12, time.Second, func(x float64) float64 { return 200 * mib * step(x >= 7) }, false, 0},
		{"staircase: 8 MiB every 2 s", 40, time.Second, func(x float64) float64 { return 8 * mib * math.Floor(x/2) }, true, 4 * mib},
		{"too few samples", 4, time.Second, func(x float64) float64 { return 4 * mib * x }, false, 0},
		{"collection every 10 s: MinPoints reach back", 20, 10 * time.Second, func(x float64) float64 { return mib * x }, true, mib},
		{"collection every 100 ms", 64, 100 * time.Millisecond, func(x float64) float64 { return 4 * mib * x }, true, 4 * mib},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := fit(tc.n, tc.step, end, tc.f)
			require.Equal(t, tc.rising, ok, "rising (%+v)", got)
			if !ok {
				return
			}
			assert.InEpsilon(t, tc.rate, got.Rate, 0.05)
			assert.Equal(t, end, got.At, "the newest point")
		})
	}
}

// TestFitWindow: a fit covers the last Window at one sample a second (31
// points), the last MinPoints samples when they reach further back.
func TestFitWindow(t *testing.T) {
	var f Fitter
	n := 0
	for i := int64(0); ; i++ {
		ts := 100*sec - i*sec
		if f.Enough(ts) {
			break
		}
		f.Add(ts, uint64(i))
		n++
	}
	assert.Equal(t, 31, n)
	f, n = Fitter{}, 0
	for i := int64(0); ; i++ {
		ts := 1000*sec - i*60*sec
		if f.Enough(ts) {
			break
		}
		f.Add(ts, uint64(i))
		n++
	}
	assert.Equal(t, MinPoints, n)
}

// TestSecondsTable: the extrapolation to the limit.
func TestSecondsTable(t *testing.T) {
	ramp := Fit{At: 100 * sec, Value: 136 * mib, Rate: 4 * mib}
	for _, tc := range []struct {
		name  string
		fit   Fit
		limit uint64
		now   int64
		want  float64
		ok    bool
	}{
		{"at the fit's time", ramp, 256 * mib, 100 * sec, 30, true},
		{"a second later", ramp, 256 * mib, 101 * sec, 29, true},
		{"past the limit already", ramp, 128 * mib, 100 * sec, 0, true},
		{"extrapolated past the limit", ramp, 256 * mib, 200 * sec, 0, true},
		{"no rise", Fit{}, 256 * mib, 0, 0, false},
		{"more than a day away", Fit{At: 0, Value: 0, Rate: 1}, 1 << 40, 0, 0, false},
		{"just under a day", Fit{At: 0, Value: 0, Rate: 1}, 86000, 0, 86000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.fit.Seconds(tc.limit, tc.now)
			assert.Equal(t, tc.ok, ok)
			assert.InDelta(t, tc.want, got, 1e-9)
		})
	}
}

func TestSoonest(t *testing.T) {
	for _, tc := range []struct {
		a      float64
		aok    bool
		b      float64
		bok    bool
		want   float64
		wantOK bool
	}{
		{10, true, 20, true, 10, true},
		{30, true, 20, true, 20, true},
		{10, true, 5, false, 10, true},
		{10, false, 5, true, 5, true},
		{10, false, 5, false, 0, false},
	} {
		got, ok := Soonest(tc.a, tc.aok, tc.b, tc.bok)
		assert.Equal(t, tc.wantOK, ok)
		if ok {
			assert.InDelta(t, tc.want, got, 0)
		}
	}
}

func TestAtLimit(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name         string
		value, limit uint64
		want         bool
	}{
		{"no limit", 300 * mib, 0, false},
		{"a steady service at 78 %", 200 * mib, 256 * mib, false},
		{"just outside 2 %", 250 * mib, 256 * mib, false},
		{"within 2 % (5.12 MiB)", 251 * mib, 256 * mib, true},
		{"at the limit", 256 * mib, 256 * mib, true},
		{"over it (kernel memory charged besides)", 257 * mib, 256 * mib, true},
		{"a small limit: at least 1 MiB of headroom", 31*mib + mib/2, 32 * mib, true},
		{"a small limit, 2 MiB below", 30 * mib, 32 * mib, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := AtLimit(tc.value, tc.limit); got != tc.want {
				t.Errorf("AtLimit(%d, %d) = %v, want %v", tc.value, tc.limit, got, tc.want)
			}
		})
	}
}
