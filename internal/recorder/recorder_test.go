// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package recorder

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const ms = int64(time.Millisecond)

func TestAddBucketsByMax(t *testing.T) {
	r := New(20 * time.Millisecond) // shorter than MinBucket: 100 ms buckets
	r.Add(1000*ms, 5)
	r.Add(1040*ms, 9) // same bucket, higher: replaces, with its time
	r.Add(1080*ms, 7) // same bucket, lower: dropped
	r.Add(1100*ms, 3) // next bucket
	r.Add(1090*ms, 8) // late (before the newest): merges into the newest
	h := r.History(2000 * ms)
	assert.Equal(t, []int64{1040, 1100}, h.T)
	assert.Equal(t, []uint64{9, 8}, h.Usage)
}

func TestRingCoversAMinuteAndWraps(t *testing.T) {
	r := New(100 * time.Millisecond)
	for i := range int64(2 * Points) {
		r.Add(i*100*ms, uint64(i))
	}
	h := r.History(1 << 62)
	require.Len(t, h.T, Points)
	assert.Equal(t, int64(Points*100), h.T[0], "the oldest kept is the 601st")
	assert.Equal(t, uint64(2*Points-1), h.Usage[Points-1])
	span := time.Duration(h.T[Points-1]-h.T[0]) * time.Millisecond
	assert.GreaterOrEqual(t, span, 59900*time.Millisecond)
}

func TestHistoryEndsAtUntilAndKeepsFullSamplesInItsWindow(t *testing.T) {
	r := New(time.Second)
	r.AddFull(Full{T: 500 * ms, Usage: 1, Anon: 10})
	for i := int64(1); i <= 3; i++ {
		r.Add(i*1000*ms, uint64(i*100))
	}
	// In the bucket of the 3000 ms point and higher: the bucket's maximum.
	r.AddFull(Full{T: 3500 * ms, Usage: 350, Anon: 300, File: 40, ActiveFile: 30, Shmem: 5})
	r.Add(4000*ms, 400)
	r.Add(5000*ms, 500)
	r.AddFull(Full{T: 6500 * ms, Usage: 650})
	h := r.History(4000 * ms)
	assert.Equal(t, []int64{500, 1000, 2000, 3500, 4000}, h.T)
	assert.Equal(t, []uint64{1, 100, 200, 350, 400}, h.Usage)
	require.Len(t, h.Full, 2)
	assert.Equal(t, uint64(300), h.Full[1].Anon)

	for i := range FullPoints + 3 {
		r.AddFull(Full{T: int64(10000+i) * ms})
	}
	assert.Len(t, r.History(1<<62).Full, FullPoints, "full ring bounded")
}

// TestUntilPeak: a worker killed in a container that lives on (measured
// under Kubernetes: 1.6 MiB, a climb to 59 MiB, the kill, back to 1.2 MiB;
// the record's climb sentence said "from 1.6 MiB to 59 MiB in 0.0 s", from a point
// after the kill). Cut at the peak, the climb is the one before the kill.
func TestUntilPeak(t *testing.T) {
	mib := uint64(1 << 20)
	h := History{
		T:     []int64{1000, 1100, 1200, 1300, 1400, 1500, 1600},
		Usage: []uint64{2 * mib, 2 * mib, 20 * mib, 40 * mib, 59 * mib, 1 * mib, 1 * mib},
		Full:  []Full{{T: 1200 * ms, Usage: 20 * mib}, {T: 1500 * ms, Usage: 1 * mib}},
	}
	cut := h.UntilPeak()
	assert.Equal(t, []int64{1000, 1100, 1200, 1300, 1400}, cut.T)
	assert.Equal(t, []Full{{T: 1200 * ms, Usage: 20 * mib}}, cut.Full)
	assert.Equal(t, []uint64{2 * mib, 2 * mib, 20 * mib, 40 * mib, 59 * mib}, cut.Usage, "the climb ends at the peak, before the kill")

	// The last of equal highest points: a plateau at the limit before the kill.
	flat := History{T: []int64{1, 2, 3}, Usage: []uint64{5, 5, 1}}
	assert.Equal(t, []int64{1, 2}, flat.UntilPeak().T)
	assert.Empty(t, History{}.UntilPeak().T)
}

// BenchmarkAdd adds one sample to each of 1000 recorders in turn, as the
// fast pass does at 1000 cgroups: each recorder is cold when reached.
func BenchmarkAdd(b *testing.B) {
	recs := make([]*Recorder, 1000)
	for i := range recs {
		recs[i] = New(100 * time.Millisecond)
	}
	t := int64(time.Hour)
	for b.Loop() {
		t += int64(100 * time.Millisecond)
		for i, r := range recs {
			r.Add(t, uint64(i))
		}
	}
}

// TestResidentFromStart: a new recorder's rings are resident at once, so
// that filling them (a minute of samples) does not grow the process's RSS,
// which would look like a leak (BENCH rss's growth figure).
func TestResidentFromStart(t *testing.T) {
	rss := func() int64 {
		b, err := os.ReadFile("/proc/self/status")
		require.NoError(t, err)
		for l := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
				kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(v, "kB")), 10, 64)
				require.NoError(t, err)
				return kb << 10
			}
		}
		t.Fatal("no VmRSS in /proc/self/status")
		return 0
	}
	recs := make([]*Recorder, 1000)
	for i := range recs {
		recs[i] = New(100 * time.Millisecond)
	}
	before := rss()
	t0 := int64(time.Hour)
	for k := range Points + FullPoints {
		for _, r := range recs {
			r.AddFull(Full{T: t0 + int64(k)*int64(100*time.Millisecond), Usage: 5})
		}
	}
	grown := rss() - before
	// Filling 1000 untouched recorders would add about 1000 × Size bytes.
	assert.Less(t, grown, int64(Size)*1000/10, "RSS grew by %d bytes while the rings filled", grown)
}
