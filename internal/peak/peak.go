// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package peak derives a cgroup's highest memory usage since its previous
// data point — the number that shows a spike which rose and fell between
// two collections — from whatever the kernel and the sampler offer.
//
// Sources, best first:
//
//   - A peak file reset at every read (v2 memory.peak on 6.12+, reset per
//     open file; v1 memory.max_usage_in_bytes with peak_reset): the kernel's
//     own watermark since the previous read. Exact.
//   - The lifetime peak, when it rose since the previous data point: the new
//     lifetime maximum was reached in this interval, so it is the interval's
//     maximum. Exact.
//   - Otherwise the highest of the fast samples (usage only, every
//     sampling_interval), the event samples and the usage of this sample: a
//     spike shorter than the sampling interval can be missed by as much as it
//     rose between two fast samples.
package peak // import "github.com/oomsight/oomsight/internal/peak"

// Source says where a data point's peak came from.
type Source uint8

// The sources, in the order they are preferred.
const (
	Samples      Source = iota // highest fast, event or collection sample
	ResetPerRead               // the peak file, reset at every read
	LifetimeRose               // the lifetime peak, which rose in this interval
)

func (s Source) String() string {
	switch s {
	case ResetPerRead:
		return "reset_per_read"
	case LifetimeRose:
		return "lifetime_rose"
	}
	return "samples"
}

// Reading is what one full read of a cgroup says about its peak.
type Reading struct {
	Usage uint64
	// Peak is the peak file's value; HasPeak is false where the kernel has
	// none (v2 before 5.19). SinceRead: Peak covers only the time since the
	// previous read (the file is reset per read), not the cgroup's life.
	Peak      uint64
	HasPeak   bool
	SinceRead bool
}

// Tracker follows one cgroup between data points. The zero value is ready;
// it is not safe for concurrent use.
type Tracker struct {
	max      uint64 // highest usage observed since the previous data point
	lifetime uint64 // lifetime peak at the previous data point
	hasLife  bool
}

// Observe takes a fast sample's usage.
func (t *Tracker) Observe(usage uint64) {
	t.max = max(t.max, usage)
}

// Point closes the interval at a full read and returns its peak: the highest
// usage since the previous Point (or since the tracker started).
func (t *Tracker) Point(r Reading) (uint64, Source) {
	t.Observe(r.Usage)
	samples := t.max
	t.max = 0
	switch {
	case r.HasPeak && r.SinceRead:
		t.hasLife = false
		return max(r.Peak, samples), ResetPerRead
	case r.HasPeak:
		rose := t.hasLife && r.Peak > t.lifetime
		t.lifetime, t.hasLife = r.Peak, true
		if rose {
			// Reached in this interval, and no usage ever exceeded it; the
			// max guards against someone resetting the watermark meanwhile.
			return max(r.Peak, samples), LifetimeRose
		}
	}
	return samples, Samples
}
