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
	"golang.org/x/sys/unix"

	"github.com/oomsight/oomsight/internal/cgroupfs"
	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
)

const mib = 1 << 20

// TestQoSSignalsLive reads the limit-hit counters and the limit-like files
// of a real cgroup: page cache written past the limit makes the kernel hit
// the limit and reclaim (failcnt / events max rise, no kill); the
// limit-like files are served from the cache until written; on v1, a
// process at the limit with the OOM killer disabled is seen under_oom.
func TestQoSSignalsLive(t *testing.T) {
	env := cgrouptest.Require(t)
	dir := t.TempDir()
	var fs unix.Statfs_t
	require.NoError(t, unix.Statfs(dir, &fs))
	if fs.Type == unix.TMPFS_MAGIC {
		cgrouptest.Unavailable(t, "%s is tmpfs: the file would be shmem, not page cache", dir)
	}
	memhog := cgrouptest.BuildMemhog(t)
	cg := env.NewCgroup(t, "oomsight-cgroupfs-qos")
	cg.SetLimit(t, 32*mib)
	v1 := env.Hierarchy.Version == cgroupfs.V1
	write := func(file, v string) {
		t.Helper()
		require.NoError(t, os.WriteFile(filepath.Join(cg.Dir, file), []byte(v), 0))
	}
	// The limit-like file of each version, set before the watch.
	limitFile, limitField := "memory.high", cgroupfs.High
	if v1 {
		limitFile, limitField = "memory.memsw.limit_in_bytes", cgroupfs.MemswLimit
		if _, err := os.Stat(filepath.Join(cg.Dir, limitFile)); err != nil {
			cgrouptest.Unavailable(t, "no swap accounting (memory.memsw.*): %v", err)
		}
	}
	write(limitFile, "50331648") // 48 MiB: above the limit, never reached

	w := cgroupfs.NewLimitWatch()
	defer w.Close()
	opt := cgroupfs.WithQoS | cgroupfs.WithSwapLimit | cgroupfs.WithSwapEvents | cgroupfs.WithMemswUsage | cgroupfs.WithTreeEvents
	c, err := cgroupfs.OpenWatched(env.Hierarchy, cg.Path, opt, w)
	require.NoError(t, err)
	defer c.Close()
	r := cgroupfs.NewReader()
	read := func() *cgroupfs.Sample {
		t.Helper()
		var s cgroupfs.Sample
		require.NoError(t, r.Read(c, time.Now(), &s))
		return &s
	}
	get := func(s *cgroupfs.Sample, f cgroupfs.Field) uint64 {
		t.Helper()
		v, ok := s.Get(f)
		require.True(t, ok, "%s absent", f)
		return v
	}

	s := read()
	assert.Equal(t, uint64(48*mib), get(s, limitField))
	assert.Equal(t, uint64(32*mib), get(s, cgroupfs.Limit))
	assert.Zero(t, get(s, cgroupfs.Failcnt))
	if v1 {
		assert.Zero(t, get(s, cgroupfs.UnderOOM))
		assert.GreaterOrEqual(t, get(s, cgroupfs.MemswUsage), get(s, cgroupfs.Usage), "memory+swap")
		assert.Zero(t, get(s, cgroupfs.SwapEventsMax), "memsw.failcnt")
	} else {
		assert.Zero(t, get(s, cgroupfs.EventsHigh))
		assert.Zero(t, get(s, cgroupfs.TreeEventsMax))
	}

	p := cg.Start(t, memhog)
	p.MustDo(t, "file "+filepath.Join(dir, "cache")+" 64") // twice the limit, reclaimable
	s = read()
	assert.Positive(t, get(s, cgroupfs.Failcnt), "the cache hit the limit")
	if v1 {
		assert.Equal(t, cg.ReadUint(t, "memory.failcnt"), get(s, cgroupfs.Failcnt))
	} else {
		assert.Equal(t, get(s, cgroupfs.Failcnt), get(s, cgroupfs.TreeEventsMax), "no descendants: subtree = own")
	}
	assert.Zero(t, get(s, cgroupfs.OOMKills), "page cache is reclaimed, nobody killed")

	// The limit-like file is cached: a write shows only after Changes.
	write(limitFile, "41943040") // 40 MiB
	assert.Equal(t, uint64(48*mib), get(read(), limitField), "cached until Changes")
	w.Changes()
	assert.Equal(t, uint64(40*mib), get(read(), limitField), "read again after the write")

	if !v1 {
		return
	}
	// v1: with the OOM killer disabled, an allocation past the limit waits
	// in the kernel, and the cgroup is under OOM until the task goes.
	write("memory.oom_control", "1")
	go func() { _, _ = p.Do("anon 48", 30*time.Second) }()
	deadline := time.Now().Add(10 * time.Second)
	for get(read(), cgroupfs.UnderOOM) == 0 {
		require.True(t, time.Now().Before(deadline), "under_oom never 1")
		time.Sleep(20 * time.Millisecond)
	}
	p.Kill()
	s = read()
	assert.Zero(t, get(s, cgroupfs.OOMKills), "the OOM killer was disabled")
}
