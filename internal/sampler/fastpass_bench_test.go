// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package sampler

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/oomsight/oomsight/internal/cgroupfs"
	"github.com/oomsight/oomsight/internal/discovery"
	"github.com/oomsight/oomsight/internal/registry"
	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
)

// benchCgroups is how many real cgroups the benchmark creates;
// OOMSIGHT_BENCH_CGROUPS overrides it (make bench runs 100 and 1000).
func benchCgroups(b *testing.B) int {
	n := 100
	if v := os.Getenv("OOMSIGHT_BENCH_CGROUPS"); v != "" {
		if _, err := fmt.Sscan(v, &n); err != nil || n <= 0 {
			b.Fatalf("OOMSIGHT_BENCH_CGROUPS=%q", v)
		}
	}
	return n
}

// BenchmarkFastPass measures the fast pass as the receiver runs it — one
// pread of memory.usage_in_bytes (v1) or memory.current (v2) per cgroup on a
// held descriptor, the interval peak and the flight recorder updated — over
// N real child memory cgroups each charged with 1 MiB (benchCgroups;
// cgrouptest.BenchSet: Kubernetes-shaped with a live process in each when
// OOMSIGHT_BENCH_PODS=1),
// against its floor: a bare pread of the same usage files on descriptors
// held open, no parsing, no bookkeeping. The two are timed in alternating
// passes, so that what slows the machine down for a while weighs on both
// alike and their ratio holds.
func BenchmarkFastPass(b *testing.B) {
	env := cgrouptest.Require(b)
	n := benchCgroups(b)
	set := env.BenchSet(b, fmt.Sprintf("oomsight-bench-fast-%d", os.Getpid()), n)
	f, err := discovery.NewFilter([]string{set.Include}, nil)
	if err != nil {
		b.Fatal(err)
	}
	reg := registry.New(env.Hierarchy, f, 0, 100*time.Millisecond, nil)
	defer reg.Close()
	if _, err := reg.Refresh(); err != nil {
		b.Fatal(err)
	}
	if reg.Len() != n {
		b.Fatalf("registry holds %d cgroups, want %d", reg.Len(), n)
	}
	usage := "memory.usage_in_bytes"
	if env.Hierarchy.Version == cgroupfs.V2 {
		usage = "memory.current"
	}
	var fds []int
	for _, e := range reg.Entries(nil) {
		fd, err := unix.Open(filepath.Join(env.Hierarchy.Abs(e.Path), usage), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		fds = append(fds, fd)
	}
	defer func() {
		for _, fd := range fds {
			_ = unix.Close(fd)
		}
	}()
	buf := make([]byte, 64)
	// Snapshots on: the limit-zone check is part of every fast sample.
	fp := newFastPass(reg, 100*time.Millisecond, time.Now, func(string, uint64, uint64) {}, true)
	b.ReportAllocs()
	var floorD, oursD time.Duration
	passes := 0
	for b.Loop() {
		t0 := time.Now()
		for _, fd := range fds {
			if _, err := unix.Pread(fd, buf, 0); err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		fp.pass()
		floorD += t1.Sub(t0)
		oursD += time.Since(t1)
		passes++
	}
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(passes*n) }
	b.ReportMetric(per(oursD), "ns/cgroup")
	fmt.Printf("BENCH sample_usage cgroups=%d ns_per_cgroup=%.0f floor_ns_per_cgroup=%.0f ratio=%.2f hierarchy=%s\n", n, per(oursD), per(floorD), per(oursD)/per(floorD), env.Hierarchy.Version)
}
