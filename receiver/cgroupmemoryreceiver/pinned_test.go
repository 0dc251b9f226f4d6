// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgroupmemoryreceiver

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"

	"github.com/oomsight/oomsight/internal/cgroupfs"
	"github.com/oomsight/oomsight/internal/registry"
	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/metadata"
)

// pinned is what one run with a cgroup held at its limit measured.
type pinned struct {
	window        time.Duration
	cpuPct        float64 // this process (the receiver), % of one core
	idlePct       float64 // the same before the writer started (0: not measured)
	workloadPct   float64 // the writer (memhog), % of one core
	failcnt       int64   // limit hits during the window (v2: memory.events.local max)
	eventPoints   int     // event samples exported
	collections   int     // collections in the window
	maxPerExport  int     // most usage data points in one export
	workloadBytes int64
	hierarchy     cgroupfs.Version
}

// runPinned holds a 64 MiB cgroup at its limit for window — a process
// writing a file, so that the kernel reclaims page cache at every charge
// (about a thousand limit hits a second) — while the receiver watches it
// at a 1 s collection and 100 ms sampling, and measures the receiver's
// CPU (this process; the writer is a child and not counted) and the
// writer's, whose ratio holds where absolute times do not (the v2 VM's
// software emulation). With idle > 0 it first measures the receiver's CPU
// for that long while the writer is idle, so that what being at the limit
// adds stands apart from the receiver's own ticking.
func runPinned(tb testing.TB, window, idle time.Duration) pinned {
	env := cgrouptest.Require(tb)
	cg := env.NewCgroup(tb, fmt.Sprintf("oomsight-pinned-%d", os.Getpid()))
	cg.SetLimit(tb, 64*mib)
	p := cg.Start(tb, cgrouptest.BuildMemhog(tb))
	dir := cgrouptest.ScratchDir(tb)
	file := filepath.Join(dir, "pinned.dat")
	fileMiB := pinnedFileMiB(tb, dir)

	cfg := createDefaultConfig().(*Config)
	cfg.CollectionInterval = time.Second
	cfg.SamplingInterval = 100 * time.Millisecond
	cfg.Include = []string{cg.Path}
	sink := startMetricsReceiver(tb, cfg, receivertest.NewNopSettings(metadata.Type))
	time.Sleep(1500 * time.Millisecond) // started, first collection done
	idlePct := 0.0
	if idle > 0 {
		idlePct = selfCPUPct(tb, func() { time.Sleep(idle) })
	}

	failcnt0 := int64(cg.LimitHits(tb))
	before := len(series(sink, cg.Path, "cgroup.memory.usage"))
	batches0 := batches(sink, cg.Path)
	work0 := procCPU(tb, p.Pid)
	start := time.Now()
	var written int64
	cpuPct := selfCPUPct(tb, func() {
		for time.Since(start) < window {
			p.MustDo(tb, fmt.Sprintf("file %s %d", file, fileMiB))
			written += fileMiB * mib
		}
	})
	elapsed := time.Since(start)
	work := procCPU(tb, p.Pid) - work0
	time.Sleep(1200 * time.Millisecond) // the last event samples are exported

	res := pinned{
		window:        elapsed,
		cpuPct:        cpuPct,
		idlePct:       idlePct,
		workloadPct:   100 * work.Seconds() / elapsed.Seconds(),
		failcnt:       int64(cg.LimitHits(tb)) - failcnt0,
		collections:   batches(sink, cg.Path) - batches0,
		workloadBytes: written,
		hierarchy:     env.Hierarchy.Version,
	}
	pts := series(sink, cg.Path, "cgroup.memory.usage")[before:]
	res.eventPoints = len(pts) - res.collections
	for _, md := range sink.AllMetrics()[batches0:] {
		if rm := find(md, cg.Path); rm != nil {
			n := 0
			for i := 0; i < rm.ScopeMetrics().Len(); i++ {
				ms := rm.ScopeMetrics().At(i).Metrics()
				for j := 0; j < ms.Len(); j++ {
					if ms.At(j).Name() == "cgroup.memory.usage" {
						n = ms.At(j).Sum().DataPoints().Len()
					}
				}
			}
			res.maxPerExport = max(res.maxPerExport, n)
		}
	}
	return res
}

// pinnedFileMiB is the size of the file the pinned writer rewrites: 500 MiB,
// or three quarters of what the filesystem of dir has free (the v2 VM's
// RAM disk), and at least twice the 64 MiB limit, so that the writer
// keeps the cgroup at its limit.
func pinnedFileMiB(tb testing.TB, dir string) int64 {
	var st unix.Statfs_t
	require.NoError(tb, unix.Statfs(dir, &st))
	free := int64(st.Bavail) * st.Bsize / mib
	n := min(500, free*3/4)
	if n < 128 {
		tb.Fatalf("%s has %d MiB free; the pinned writer needs at least 171 MiB free to write twice the limit", dir, free)
	}
	return n
}

// selfCPUPct runs f and returns this process's CPU meanwhile, in % of one
// core.
func selfCPUPct(tb testing.TB, f func()) float64 {
	var ru0, ru1 unix.Rusage
	require.NoError(tb, unix.Getrusage(unix.RUSAGE_SELF, &ru0))
	start := time.Now()
	f()
	elapsed := time.Since(start)
	require.NoError(tb, unix.Getrusage(unix.RUSAGE_SELF, &ru1))
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	return 100 * cpu.Seconds() / elapsed.Seconds()
}

// procCPU returns the user and system CPU time of process pid so far
// (/proc/<pid>/stat, in the kernel's USER_HZ ticks of 10 ms).
func procCPU(tb testing.TB, pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(tb, err)
	// The fields after the command name, which may hold spaces: state is
	// the first, utime the 12th and stime the 13th.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	require.Greater(tb, len(f), 13, "/proc/%d/stat: %q", pid, b)
	utime, err := strconv.ParseInt(f[11], 10, 64)
	require.NoError(tb, err)
	stime, err := strconv.ParseInt(f[12], 10, 64)
	require.NoError(tb, err)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// TestPinnedAtLimitIsNoBusyLoop: a cgroup sitting at its limit (a thousand
// limit hits a second) costs the receiver little CPU and adds at most
// registry.MaxEvents event data points per collection.
func TestPinnedAtLimitIsNoBusyLoop(t *testing.T) {
	r := runPinned(t, 3*time.Second, 0)
	t.Logf("pinned for %s: %d limit hits, receiver CPU %.2f %% of a core, %d event samples exported over %d collections (at most %d usage points per export), %d MiB written",
		r.window.Round(time.Millisecond), r.failcnt, r.cpuPct, r.eventPoints, r.collections, r.maxPerExport, r.workloadBytes/mib)
	require.Greater(t, r.failcnt, int64(100), "the cgroup was at its limit")
	assert.Less(t, r.cpuPct, 5.0, "no busy loop")
	assert.LessOrEqual(t, r.maxPerExport, registry.MaxEvents+1, "event samples per export are bounded")
}

// BenchmarkPinnedAtLimit prints the CPU cost of one cgroup pinned at its
// limit for 10 s (make bench), or OOMSIGHT_BENCH_PINNED_SECONDS.
func BenchmarkPinnedAtLimit(b *testing.B) {
	window := 10 * time.Second
	if v := os.Getenv("OOMSIGHT_BENCH_PINNED_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("OOMSIGHT_BENCH_PINNED_SECONDS=%q: want a number of seconds", v)
		}
		window = time.Duration(n) * time.Second
	}
	for b.Loop() {
		r := runPinned(b, window, window)
		b.ReportMetric(r.cpuPct, "cpu_pct")
		// ratio_to_workload: what being at the limit adds to the
		// receiver's CPU, per unit of the writer's CPU that holds it there.
		fmt.Printf("BENCH pinned_at_limit seconds=%.1f limit_hits_per_s=%.0f cpu_pct=%.2f event_samples=%d collections=%d idle_cpu_pct=%.2f workload_cpu_pct=%.1f ratio_to_workload=%.4f hierarchy=%s\n",
			r.window.Seconds(), float64(r.failcnt)/r.window.Seconds(), r.cpuPct, r.eventPoints, r.collections,
			r.idlePct, r.workloadPct, (r.cpuPct-r.idlePct)/r.workloadPct, r.hierarchy)
	}
}

// TestReadOnlyRootFallsBack: through a read-only mount of the hierarchy, as
// a DaemonSet has it, v1 events and peak_reset are off (each said once in
// the log), and the receiver still samples, fast pass included.
func TestReadOnlyRootFallsBack(t *testing.T) {
	env := cgrouptest.Require(t)
	if env.Hierarchy.Version != 1 {
		cgrouptest.Unavailable(t, "v1 (v2 runs in make e2e-v2)")
	}
	cg := env.NewCgroup(t, fmt.Sprintf("oomsight-ro-%d", os.Getpid()))
	cg.SetLimit(t, 128*mib)
	p := cg.Start(t, cgrouptest.BuildMemhog(t))
	p.MustDo(t, "anon 10")
	cfg := createDefaultConfig().(*Config)
	cfg.CollectionInterval = time.Second
	cfg.PeakReset = true
	cfg.RootPath = cgrouptest.ReadOnlyMount(t, env.Hierarchy.Dir)
	cfg.Include = []string{cg.Path}
	set := receivertest.NewNopSettings(metadata.Type)
	core, logs := observer.New(zap.WarnLevel)
	set.Logger = zap.New(core)
	sink := startMetricsReceiver(t, cfg, set)

	n := batches(sink, cg.Path)
	waitBatch(t, sink, cg.Path, n, 5*time.Second)
	n = batches(sink, cg.Path)
	time.Sleep(200 * time.Millisecond)
	p.MustDo(t, "spike 80 300")
	waitBatch(t, sink, cg.Path, n, 5*time.Second)
	assert.Greater(t, lastPeak(t, sink, cg.Path), int64(85*mib), "the spike shows in its interval's peak")
	waitBatch(t, sink, cg.Path, n+1, 5*time.Second)

	assert.Equal(t, 1, logs.FilterMessageSnippet("capture at the limit is off").Len(), "said once: %v", logs.All())
	assert.Equal(t, 1, logs.FilterMessageSnippet("peak_reset: memory.max_usage_in_bytes cannot be written").Len())
}
