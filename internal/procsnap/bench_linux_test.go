// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package procsnap

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
)

const benchProcs = 50

// BenchmarkSnapshotPinned prints the cost of one process snapshot of a
// cgroup with 50 processes held at its limit (a 51st writes a file in a
// loop, so the kernel reclaims at every charge), against the floor of the
// same reads without any parsing or sorting (cgroup.procs, each
// /proc/<pid>/status, the 10 largest's cmdline), and against reading
// smaps_rollup instead of status. A cgroup in its limit zone gets at most
// one snapshot a second (Every), so ns_per_snapshot/1e7 is the % of a core
// it costs.
func BenchmarkSnapshotPinned(b *testing.B) {
	env := cgrouptest.Require(b)
	cg := env.NewCgroup(b, fmt.Sprintf("oomsight-snapbench-%d", os.Getpid()))
	memhog := cgrouptest.BuildMemhog(b)
	var pids []int
	for i := range benchProcs {
		p := cg.Start(b, memhog, "--worker="+strconv.Itoa(i), "--queue=nightly", "--password=hunter2")
		p.MustDo(b, "anon 1")
		pids = append(pids, p.Pid)
	}
	var usage uint64
	for _, f := range []string{"memory.usage_in_bytes", "memory.current"} {
		if b, err := os.ReadFile(filepath.Join(cg.Dir, f)); err == nil {
			usage, _ = strconv.ParseUint(string(b[:len(b)-1]), 10, 64)
		}
	}
	cg.SetLimit(b, int64(usage)+24<<20)
	writer := cg.Start(b, memhog, "--writer")
	file := filepath.Join(b.TempDir(), "pinned.dat")
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			if _, err := writer.Do("file "+file+" 200", 30*time.Second); err != nil {
				return
			}
		}
	}()
	defer func() { stop.Store(true); <-done }()
	time.Sleep(500 * time.Millisecond)
	failcnt0 := cg.ReadUint(b, "memory.failcnt")

	r := NewReader("/proc", CaptureRedacted)
	buf := make([]byte, ReadCmdline)
	raw := func(path string) {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		for {
			n, err := f.Read(buf)
			if n == 0 || err != nil {
				break
			}
		}
		_ = f.Close()
	}
	var oursD, floorD, smapsD time.Duration
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		s, err := r.Take(cg.Dir)
		if err != nil || len(s.Processes) != MaxTop || s.Seen != benchProcs+1 {
			b.Fatalf("snapshot: %d processes of %d seen, %v", len(s.Processes), s.Seen, err)
		}
		t1 := time.Now()
		raw(filepath.Join(cg.Dir, "cgroup.procs"))
		for _, pid := range pids {
			raw(filepath.Join("/proc", strconv.Itoa(pid), "status"))
		}
		for _, pid := range pids[:MaxTop] {
			raw(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		}
		t2 := time.Now()
		for _, pid := range pids {
			raw(filepath.Join("/proc", strconv.Itoa(pid), "smaps_rollup"))
		}
		t3 := time.Now()
		oursD += t1.Sub(t0)
		floorD += t2.Sub(t1)
		smapsD += t3.Sub(t2)
		n++
	}
	hits := cg.ReadUint(b, "memory.failcnt") - failcnt0
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(n) }
	b.ReportMetric(per(oursD), "ns/snapshot")
	fmt.Printf("BENCH process_snapshot processes=%d limit_hits=%d ns_per_snapshot=%.0f floor_ns=%.0f ratio=%.2f smaps_rollup_reads_ns=%.0f status_vs_smaps_rollup=%.2f cpu_pct_at_1_per_s=%.3f\n",
		benchProcs+1, hits, per(oursD), per(floorD), per(oursD)/per(floorD), per(smapsD), per(floorD)/per(smapsD), per(oursD)/1e7)
}
