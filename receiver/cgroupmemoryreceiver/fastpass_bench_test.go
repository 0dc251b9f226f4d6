package cgroupmemoryreceiver

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/oomsight/oomsight/internal/cgrouptest"
	"github.com/oomsight/oomsight/internal/discovery"
	"github.com/oomsight/oomsight/internal/registry"
)

// BenchmarkFastPass measures the fast pass as the receiver runs it — one
// pread of memory.usage_in_bytes (v1) or memory.current (v2) per cgroup on a
// held descriptor, the interval peak and the flight recorder updated — over
// N real child memory cgroups each charged with 1 MiB (benchCgroups).
func BenchmarkFastPass(b *testing.B) {
	env := cgrouptest.Require(b)
	n := benchCgroups(b)
	parent := env.Many(b, fmt.Sprintf("oomsight-bench-fast-%d", os.Getpid()), n, 1024)
	f, err := discovery.NewFilter([]string{parent.Path + "/*"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	reg := registry.New(env.Hierarchy, f, 0, 100*time.Millisecond)
	defer reg.Close()
	if _, err := reg.Refresh(); err != nil {
		b.Fatal(err)
	}
	if reg.Len() != n {
		b.Fatalf("registry holds %d cgroups, want %d", reg.Len(), n)
	}
	fp := newFastPass(reg, 100*time.Millisecond)
	b.ReportAllocs()
	start := time.Now()
	passes := 0
	for b.Loop() {
		fp.pass()
		passes++
	}
	perCgroup := float64(time.Since(start).Nanoseconds()) / float64(passes*n)
	b.ReportMetric(perCgroup, "ns/cgroup")
	fmt.Printf("BENCH sample_usage cgroups=%d ns_per_cgroup=%.0f\n", n, perCgroup)
}
