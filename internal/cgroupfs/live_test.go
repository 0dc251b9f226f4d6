// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgroupfs_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oomsight/oomsight/internal/cgroupfs"
	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
)

// TestReadLiveCgroup reads a real cgroup holding a real workload, then
// removes it under the open descriptors: the next read must say vanished.
func TestReadLiveCgroup(t *testing.T) {
	env := cgrouptest.Require(t)
	memhog := cgrouptest.BuildMemhog(t)
	cg := env.NewCgroup(t, "oomsight-cgroupfs-live")
	cg.SetLimit(t, 64<<20)
	p := cg.Start(t, memhog)
	p.MustDo(t, "anon 40")

	c, err := cgroupfs.Open(env.Hierarchy, cg.Path, 0)
	require.NoError(t, err)
	defer c.Close()
	r := cgroupfs.NewReader()
	var s cgroupfs.Sample
	require.NoError(t, r.Read(c, time.Now(), &s))

	get := func(f cgroupfs.Field) uint64 {
		v, ok := s.Get(f)
		require.True(t, ok, "%s absent", f)
		return v
	}
	assert.Equal(t, uint64(64<<20), get(cgroupfs.Limit))
	assert.GreaterOrEqual(t, get(cgroupfs.Anon), uint64(40<<20))
	assert.Less(t, get(cgroupfs.Anon), uint64(56<<20), "40 MiB plus the Go runtime")
	assert.GreaterOrEqual(t, get(cgroupfs.Usage), get(cgroupfs.Anon))
	assert.LessOrEqual(t, get(cgroupfs.WorkingSet), get(cgroupfs.Usage))
	assert.GreaterOrEqual(t, get(cgroupfs.Peak), get(cgroupfs.Usage)-1<<20)

	p.Kill()
	require.Eventually(t, func() bool { return os.Remove(cg.Dir) == nil }, 10*time.Second, 20*time.Millisecond)
	err = r.Read(c, time.Now(), &s)
	assert.ErrorIs(t, err, cgroupfs.ErrVanished)
}

// TestPeakResetLive: on a real v1 cgroup, WithPeakReset resets
// memory.max_usage_in_bytes at each read, so a Read's Peak covers only the
// time since the previous Read; without it, and through a read-only mount,
// the peak stays the lifetime peak.
func TestPeakResetLive(t *testing.T) {
	env := cgrouptest.Require(t)
	if env.Hierarchy.Version != cgroupfs.V1 {
		cgrouptest.Unavailable(t, "v1 peak reset needs a v1 hierarchy (v2 runs in make e2e-v2)")
	}
	cg := env.NewCgroup(t, "oomsight-cgroupfs-peak")
	cg.SetLimit(t, 256<<20)
	p := cg.Start(t, cgrouptest.BuildMemhog(t))
	p.MustDo(t, "anon 10")
	p.MustDo(t, "spike 60 10")

	plain, err := cgroupfs.Open(env.Hierarchy, cg.Path, cgroupfs.WithLifetimePeak)
	require.NoError(t, err)
	defer plain.Close()
	assert.False(t, plain.PeakResets(), "v1 resets only when asked")

	ro, err := cgroupfs.Open(cgroupfs.Hierarchy{Version: cgroupfs.V1, Dir: cgrouptest.ReadOnlyMount(t, env.Hierarchy.Dir)}, cg.Path, cgroupfs.WithPeakReset)
	require.NoError(t, err)
	defer ro.Close()
	assert.False(t, ro.PeakResets(), "a read-only mount cannot reset")

	c, err := cgroupfs.Open(env.Hierarchy, cg.Path, cgroupfs.WithPeakReset)
	require.NoError(t, err)
	defer c.Close()
	require.True(t, c.PeakResets())
	r := cgroupfs.NewReader()
	var s cgroupfs.Sample
	require.NoError(t, r.Read(c, time.Now(), &s))
	assert.True(t, s.PeakSinceRead)
	first, _ := s.Get(cgroupfs.Peak)
	assert.Less(t, first, uint64(40<<20), "Open reset the watermark: the earlier 60 MiB spike is not in it")
	_, hasLife := s.Get(cgroupfs.PeakLifetime)
	assert.False(t, hasLife, "v1 reset destroys the lifetime peak")

	p.MustDo(t, "spike 50 10")
	require.NoError(t, r.Read(c, time.Now(), &s))
	second, _ := s.Get(cgroupfs.Peak)
	assert.Greater(t, second, uint64(55<<20), "the spike since the previous read")
	require.NoError(t, r.Read(c, time.Now(), &s))
	third, _ := s.Get(cgroupfs.Peak)
	assert.Less(t, third, uint64(40<<20), "reset again: no spike since")

	var ps cgroupfs.Sample
	require.NoError(t, r.Read(plain, time.Now(), &ps))
	life, ok := ps.Get(cgroupfs.PeakLifetime)
	require.True(t, ok)
	assert.Less(t, life, uint64(40<<20), "the global watermark was reset by c (why peak_reset is opt-in)")
}

// TestUsageOnly: the fast pass's read, and vanished when the cgroup goes.
func TestUsageOnly(t *testing.T) {
	env := cgrouptest.Require(t)
	cg := env.NewCgroup(t, "oomsight-cgroupfs-usage")
	p := cg.Start(t, cgrouptest.BuildMemhog(t))
	p.MustDo(t, "anon 20")
	c, err := cgroupfs.Open(env.Hierarchy, cg.Path, 0)
	require.NoError(t, err)
	defer c.Close()
	r := cgroupfs.NewReader()
	u, err := r.Usage(c)
	require.NoError(t, err)
	assert.InDelta(t, float64(cg.ReadUint(t, "memory.usage_in_bytes")), float64(u), 2<<20)
	assert.Zero(t, testing.AllocsPerRun(100, func() { _, _ = r.Usage(c) }), "the fast pass does not allocate")
	p.Kill()
	require.Eventually(t, func() bool { return os.Remove(cg.Dir) == nil }, 10*time.Second, 20*time.Millisecond)
	_, err = r.Usage(c)
	assert.ErrorIs(t, err, cgroupfs.ErrVanished)
}

// TestLimitWatchLive: with a LimitWatch, a Read takes the limit read last
// until the limit file is written, and reads it again after Changes; a
// limit removed and set again, and a cgroup removed, are followed too.
func TestLimitWatchLive(t *testing.T) {
	env := cgrouptest.Require(t)
	cg := env.NewCgroup(t, "oomsight-cgroupfs-limitwatch")
	cg.SetLimit(t, 64<<20)
	w := cgroupfs.NewLimitWatch()
	defer w.Close()
	c, err := cgroupfs.OpenWatched(env.Hierarchy, cg.Path, 0, w)
	require.NoError(t, err)
	defer c.Close()
	r := cgroupfs.NewReader()
	limit := func() (uint64, bool) {
		var s cgroupfs.Sample
		require.NoError(t, r.Read(c, time.Now(), &s))
		return s.Get(cgroupfs.Limit)
	}
	v, ok := limit()
	require.True(t, ok)
	require.Equal(t, uint64(64<<20), v)

	cg.SetLimit(t, 96<<20)
	v, _ = limit()
	assert.Equal(t, uint64(64<<20), v, "not read again before Changes: the file was not re-read")
	w.Changes()
	v, _ = limit()
	assert.Equal(t, uint64(96<<20), v, "read again after the write")
	w.Changes()
	v, _ = limit()
	assert.Equal(t, uint64(96<<20), v)

	if env.Hierarchy.Version == cgroupfs.V1 {
		// memory+swap first: the memory limit may not exceed it.
		if _, err := os.Stat(filepath.Join(cg.Dir, "memory.memsw.limit_in_bytes")); err == nil {
			require.NoError(t, os.WriteFile(filepath.Join(cg.Dir, "memory.memsw.limit_in_bytes"), []byte("-1"), 0o600))
		}
		require.NoError(t, os.WriteFile(filepath.Join(cg.Dir, "memory.limit_in_bytes"), []byte("-1"), 0o600))
	} else {
		require.NoError(t, os.WriteFile(filepath.Join(cg.Dir, "memory.max"), []byte("max"), 0o600))
	}
	w.Changes()
	_, ok = limit()
	assert.False(t, ok, "no limit")
	cg.SetLimit(t, 32<<20)
	w.Changes()
	v, ok = limit()
	assert.True(t, ok)
	assert.Equal(t, uint64(32<<20), v)

	require.NoError(t, os.Remove(cg.Dir))
	w.Changes()
	var s cgroupfs.Sample
	assert.ErrorIs(t, r.Read(c, time.Now(), &s), cgroupfs.ErrVanished)
}
