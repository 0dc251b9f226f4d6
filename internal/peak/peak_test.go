// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package peak

import "testing"

func TestTracker(t *testing.T) {
	const mib = 1 << 20
	type step struct {
		fast []uint64 // fast samples before the point
		r    Reading
		want uint64
		src  Source
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{
			name: "lifetime peak: first spike exact, later smaller spikes from samples",
			steps: []step{
				{fast: []uint64{20 * mib}, r: Reading{Usage: 20 * mib, Peak: 30 * mib, HasPeak: true}, want: 20 * mib, src: Samples},
				{fast: []uint64{20 * mib, 118 * mib, 20 * mib}, r: Reading{Usage: 20 * mib, Peak: 120 * mib, HasPeak: true}, want: 120 * mib, src: LifetimeRose},
				{fast: []uint64{20 * mib, 89 * mib, 21 * mib}, r: Reading{Usage: 20 * mib, Peak: 120 * mib, HasPeak: true}, want: 89 * mib, src: Samples},
				{fast: []uint64{20 * mib, 59 * mib}, r: Reading{Usage: 20 * mib, Peak: 120 * mib, HasPeak: true}, want: 59 * mib, src: Samples},
				{r: Reading{Usage: 20 * mib, Peak: 120 * mib, HasPeak: true}, want: 20 * mib, src: Samples},
			},
		},
		{
			name: "reset per read: the kernel's watermark, exact even between fast samples",
			steps: []step{
				{fast: []uint64{20 * mib}, r: Reading{Usage: 20 * mib, Peak: 90 * mib, HasPeak: true, SinceRead: true}, want: 90 * mib, src: ResetPerRead},
				{fast: []uint64{20 * mib}, r: Reading{Usage: 20 * mib, Peak: 21 * mib, HasPeak: true, SinceRead: true}, want: 21 * mib, src: ResetPerRead},
			},
		},
		{
			name: "no peak file (v2 before 5.19): samples only",
			steps: []step{
				{fast: []uint64{5, 9, 7}, r: Reading{Usage: 6}, want: 9, src: Samples},
				{fast: []uint64{3}, r: Reading{Usage: 4}, want: 4, src: Samples},
			},
		},
		{
			name: "watermark reset by someone else, then rising: not below the samples",
			steps: []step{
				{r: Reading{Usage: 10, Peak: 100, HasPeak: true}, want: 10, src: Samples},
				{fast: []uint64{50}, r: Reading{Usage: 10, Peak: 12, HasPeak: true}, want: 50, src: Samples},
				{fast: []uint64{40}, r: Reading{Usage: 10, Peak: 30, HasPeak: true}, want: 40, src: LifetimeRose},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tr Tracker
			for i, s := range tc.steps {
				for _, v := range s.fast {
					tr.Observe(v)
				}
				got, src := tr.Point(s.r)
				if got != s.want || src != s.src {
					t.Errorf("point %d: got %d from %s, want %d from %s", i, got, src, s.want, s.src)
				}
			}
		})
	}
}
