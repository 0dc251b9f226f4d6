// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgroupmemoryreceiver

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"golang.org/x/sys/unix"

	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/metadata"
)

// TestWorkingSetPageCache is the "alert at 81 %, but the process uses 52 MB"
// story on a real cgroup: a process that writes and re-reads a large log
// file on disk in a 256 MiB cgroup. Its page cache lands on the active list,
// so working set (usage − inactive_file) is high while anon stays small —
// and nothing is at risk: the kernel reclaims that cache instead of killing.
func TestWorkingSetPageCache(t *testing.T) {
	env := cgrouptest.Require(t)
	dir := t.TempDir()
	var fs unix.Statfs_t
	require.NoError(t, unix.Statfs(dir, &fs))
	if fs.Type == unix.TMPFS_MAGIC {
		cgrouptest.Unavailable(t, "%s is tmpfs: the file would be shmem, not page cache", dir)
	}
	cg := env.NewCgroup(t, fmt.Sprintf("oomsight-pagecache-%d", os.Getpid()))
	const limit = 256 * mib
	cg.SetLimit(t, limit)
	p := cg.Start(t, cgrouptest.BuildMemhog(t))
	log := filepath.Join(dir, "app.log")
	p.MustDo(t, "file "+log+" 180")
	p.MustDo(t, "read "+log) // the second and third touch move it to the active list
	p.MustDo(t, "read "+log)

	cfg := createDefaultConfig().(*Config)
	cfg.CollectionInterval = 200 * time.Millisecond
	cfg.Include = []string{cg.Path}
	sink := startMetricsReceiver(t, cfg, receivertest.NewNopSettings(metadata.Type))
	var v map[string]int64
	require.Eventually(t, func() bool {
		v = latest(sink, cg.Path)
		return v != nil
	}, 5*time.Second, 20*time.Millisecond)

	ws, anon, active := v["cgroup.memory.working_set"], v["cgroup.memory.anon"], v["cgroup.memory.active_file"]
	t.Logf("limit %d MiB: usage %.1f MiB, working_set %.1f MiB (%.0f %%), anon %.1f MiB (%.0f %%), active_file %.1f MiB, inactive_file %.1f MiB, oom_kills %d",
		limit/mib, float64(v["cgroup.memory.usage"])/mib, float64(ws)/mib, 100*float64(ws)/limit, float64(anon)/mib, 100*float64(anon)/limit,
		float64(active)/mib, float64(v["cgroup.memory.inactive_file"])/mib, v["cgroup.memory.oom_kills"])
	assert.Greater(t, ws, int64(limit/2), "working set over half the limit")
	assert.Greater(t, active, ws/2, "most of the working set is active page cache")
	assert.Less(t, anon, int64(limit/10), "the process itself holds little")
	assert.Zero(t, v["cgroup.memory.oom_kills"])

	// The proof that it is reclaimable: more anonymous memory than the
	// limit leaves room for, and no OOM kill.
	p.MustDo(t, "anon 150")
	require.Eventually(t, func() bool {
		v = latest(sink, cg.Path)
		return v["cgroup.memory.anon"] >= 150*mib
	}, 5*time.Second, 20*time.Millisecond)
	assert.Zero(t, v["cgroup.memory.oom_kills"], "the page cache was reclaimed, nothing was killed")
	assert.Less(t, v["cgroup.memory.active_file"], active, "page cache gave way")
}
