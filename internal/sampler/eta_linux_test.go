// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package sampler

import (
	"fmt"
	"math"
	"os"
	"path"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/oomsight/oomsight/internal/cgroupfs"
	"github.com/oomsight/oomsight/internal/eta"
)

// v1ShapeCtr is the cgroupfs-shaped container of the captured tree, with
// a 64 MiB limit of its own.
const v1ShapeCtr = "/kubepods/burstable/pod0f5eb28f-6722-4cf5-ab0f-b62748c018d4/0dc1822caf9e150de25daa1cf572418426ce6b72757b5efdff52acef348368a3"

// etaFixture is a sampler with the time-to-OOM estimate over a copy of
// the captured v2 tree, on a clock the test moves.
func etaFixture(t *testing.T, clock *time.Time) (*Sampler, string) {
	t.Helper()
	root := t.TempDir()
	require.NoError(t, os.CopyFS(root, os.DirFS("../../testdata/v2/cgroupfs")))
	h, err := cgroupfs.Detect(root)
	require.NoError(t, err)
	s := New(Options{Hierarchy: h, Logger: zap.NewNop(), ETA: true, Now: func() time.Time { return *clock }})
	_, err = s.Start()
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s, root
}

func writeCgroupFile(t *testing.T, root, cg, file, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(root, filepath.FromSlash(cg), file), []byte(content), 0o600))
}

// etas collects once and returns the finite ETA of each cgroup that has
// one, and the cgroups with an infinite one (a limit applies, but nothing
// rises towards it).
func etas(t *testing.T, s *Sampler) (finite map[string]float64, inf []string) {
	t.Helper()
	finite = map[string]float64{}
	_, err := s.Collect(t.Context(), func(c *Collected) {
		switch {
		case !c.HasETA:
		case math.IsInf(c.ETA, 1):
			inf = append(inf, c.Path)
		default:
			finite[c.Path] = c.ETA
		}
	})
	require.NoError(t, err)
	return finite, inf
}

// TestCollectETA: the container of the captured tree has no limit of its
// own and its pod a 48 MiB one. Unreclaimable memory rising at 1 MiB/s in
// the container (and so in the pod) gives both the pod's time to its
// limit; once the container gets a lower limit of its own, the container
// shows the time to that one, the pod still its own. Page cache rising
// just as fast gives no estimate at all.
func TestCollectETA(t *testing.T) {
	clock := time.Unix(1_700_000_000, 0)
	s, root := etaFixture(t, &clock)
	pod := path.Dir(ctr)
	const mib = 1 << 20
	step := func(ctrAnon, ctrFile uint64) (map[string]float64, []string) {
		writeCgroupFile(t, root, ctr, "memory.stat", fmt.Sprintf("anon %d\nfile %d\nshmem 0\nsock 0\n", ctrAnon, ctrFile))
		writeCgroupFile(t, root, pod, "memory.stat", fmt.Sprintf("anon %d\nfile %d\nshmem 0\npercpu %d\n", ctrAnon+mib, ctrFile, mib))
		clock = clock.Add(time.Second)
		return etas(t, s)
	}

	// Page cache rising at 1 MiB/s for 40 s: nothing.
	for i := range 40 {
		got, inf := step(10*mib, uint64(i)*mib)
		require.Empty(t, got, "page cache never gives an estimate (second %d)", i)
		// +Inf where a limit applies: the pod (48 MiB), its container (by
		// the pod's limit) and the cgroupfs container (64 MiB); nothing
		// for the cgroups without one above them.
		require.ElementsMatch(t, []string{pod, ctr, v1ShapeCtr}, inf)
	}
	// Unreclaimable memory rising at 1 MiB/s from 0: once the 30 s
	// window lies on the rise, the pod's 48 MiB limit for both.
	var got map[string]float64
	for i := range 35 {
		got, _ = step(uint64(i)*mib, 0)
		if i < eta.MinPoints-1 {
			require.Empty(t, got, "too few samples at second %d", i)
		}
	}
	// Pod: 48 MiB - (34 + 2) MiB at 1 MiB/s.
	require.Contains(t, got, pod)
	assert.InDelta(t, 12, got[pod], 0.01)
	require.Contains(t, got, ctr, "the container's kill comes at its pod's limit")
	assert.InDelta(t, 12, got[ctr], 0.01)
	for p := range got {
		assert.Contains(t, []string{pod, ctr}, p, "only the rising cgroups")
	}

	// A container limit of 40 MiB: 40 - 35 = 5 s, the pod 48 - 37 = 11 s.
	writeCgroupFile(t, root, ctr, "memory.max", fmt.Sprint(40*mib))
	got, _ = step(35*mib, 0)
	assert.InDelta(t, 5, got[ctr], 0.01)
	assert.InDelta(t, 11, got[pod], 0.01)

	// Flat from here: the estimate goes once the window holds no rise.
	var inf []string
	for range 40 {
		got, inf = step(35*mib, 0)
	}
	assert.Empty(t, got)
	assert.ElementsMatch(t, []string{pod, ctr, v1ShapeCtr}, inf)
}

// TestTrendSamplesETA: at the DaemonSet's 10 s collection, a climb of
// 2 MiB/s of unreclaimable memory in the pod of the captured tree (48 MiB
// limit) gets its estimate at the first collection 8 s into the climb
// from the fast pass's trend samples (one memory.stat a second while the
// usage rises); without them the fit has two full samples, and no
// estimate. Page cache climbing as fast gives the trend samples and still
// no estimate.
func TestTrendSamplesETA(t *testing.T) {
	const mib = 1 << 20
	pod := path.Dir(ctr)
	run := func(t *testing.T, trend, anon bool) (map[string]float64, int) {
		clock := time.Unix(1_700_000_000, 0)
		s, root := etaFixture(t, &clock)
		fast := newFastPass(s.reg, 100*time.Millisecond, func() time.Time { return clock }, nil, trend)
		set := func(climb uint64) {
			a, f := uint64(mib), climb
			if anon {
				a, f = mib+climb, 0
			}
			writeCgroupFile(t, root, pod, "memory.current", fmt.Sprint(a+f+mib))
			writeCgroupFile(t, root, pod, "memory.stat", fmt.Sprintf("anon %d\nfile %d\nshmem 0\npercpu %d\n", a, f, mib))
		}
		set(0)
		etas(t, s) // the collection before the climb: limits known
		full := 0
		for i := 1; i <= 80; i++ { // 8 s of fast passes, 2 MiB/s
			clock = clock.Add(100 * time.Millisecond)
			set(uint64(i) * mib / 5)
			fast.pass()
		}
		if e := s.reg.Get(pod); e != nil {
			full = len(e.History(clock).Full)
		}
		got, _ := etas(t, s)
		return got, full
	}
	t.Run("trend samples", func(t *testing.T) {
		got, full := run(t, true, true)
		// 8 trend samples and the collection before the climb.
		assert.Equal(t, 9, full)
		require.Contains(t, got, pod)
		// 48 MiB - (1 + 16 + 1) MiB unreclaimable at 2 MiB/s: 15 s.
		assert.InDelta(t, 15, got[pod], 15*0.05)
	})
	t.Run("collections only", func(t *testing.T) {
		got, full := run(t, false, true)
		assert.Equal(t, 1, full)
		assert.NotContains(t, got, pod, "two full samples are no fit")
	})
	t.Run("page cache", func(t *testing.T) {
		got, full := run(t, true, false)
		assert.Equal(t, 9, full, "the climb is sampled")
		assert.NotContains(t, got, pod, "page cache never gives an estimate")
	})
}
