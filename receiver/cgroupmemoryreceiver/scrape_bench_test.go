// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgroupmemoryreceiver

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/cgroups/v3/cgroup1"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/oomsight/oomsight/internal/cgroupfs"
	"github.com/oomsight/oomsight/internal/discovery"
	"github.com/oomsight/oomsight/internal/sampler"
	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/metadata"
)

// benchCgroups is how many real cgroups the scrape benchmarks create;
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

// benchLimits gives each cgroup of set the memory limit of
// OOMSIGHT_BENCH_LIMIT_MIB (unset: none), as containers have: a limit
// adds its own data point, and cgroup.memory.oom.eta one where a limit
// applies.
func benchLimits(b *testing.B, set cgrouptest.Set) {
	v := os.Getenv("OOMSIGHT_BENCH_LIMIT_MIB")
	if v == "" {
		return
	}
	var mib int64
	if _, err := fmt.Sscan(v, &mib); err != nil || mib <= 0 {
		b.Fatalf("OOMSIGHT_BENCH_LIMIT_MIB=%q: want a positive number", v)
	}
	for _, cg := range set.Cgroups {
		cg.SetLimit(b, mib<<20)
	}
	fmt.Printf("BENCH limits mib=%d\n", mib)
}

// benchMetrics enables the metrics named in OOMSIGHT_BENCH_METRICS
// (comma-separated, e.g. cgroup.memory.memsw.usage,cgroup.memory.memsw.limit)
// on top of the defaults, to measure what an optional group costs.
func benchMetrics(b *testing.B, cfg *Config) {
	v := os.Getenv("OOMSIGHT_BENCH_METRICS")
	if v == "" {
		return
	}
	metrics := map[string]any{}
	for name := range strings.SplitSeq(v, ",") {
		metrics[strings.TrimSpace(name)] = map[string]any{"enabled": true}
	}
	conf := confmap.NewFromStringMap(map[string]any{"metrics": metrics})
	if err := conf.Unmarshal(cfg); err != nil {
		b.Fatalf("OOMSIGHT_BENCH_METRICS=%q: %v", v, err)
	}
	fmt.Printf("BENCH metrics enabled=%s\n", v)
}

// BenchmarkScrape measures, over N real child memory cgroups each charged
// with 1 MiB (cgrouptest.BenchSet: Kubernetes-shaped with a live process
// in each when OOMSIGHT_BENCH_PODS=1), in one run: the kernel floor (pread
// on held descriptors of the same files, no parsing), one full scrape as
// the receiver runs it (discovery included, pdata built), on v1
// containerd/cgroups' cgroup1 Stat of the same cgroups, and discovery
// alone when nothing changed. It runs on both hierarchies (make bench-v2
// runs it in the cgroup v2 VM); the lines say which.
func BenchmarkScrape(b *testing.B) {
	env := cgrouptest.Require(b)
	n := benchCgroups(b)
	set := env.BenchSet(b, fmt.Sprintf("oomsight-bench-scrape-%d", os.Getpid()), n)
	cfg := createDefaultConfig().(*Config)
	benchLimits(b, set)
	cfg.Include = []string{set.Include}
	benchMetrics(b, cfg)
	f, err := discovery.NewFilter(cfg.Include, nil)
	if err != nil {
		b.Fatal(err)
	}
	// The sampler as the receiver builds it, without capture at the limit
	// and the fast pass (their goroutines would run during the rounds).
	settings := receivertest.NewNopSettings(metadata.Type)
	tb, err := metadata.NewTelemetryBuilder(settings.TelemetrySettings)
	if err != nil {
		b.Fatal(err)
	}
	o := samplerOptions(cfg, env.Hierarchy, f, zap.NewNop(), tb)
	o.Events, o.FastPass = false, false
	smp := sampler.New(o)
	defer smp.Close()
	if _, err := smp.Start(); err != nil {
		b.Fatal(err)
	}
	paths := smp.Paths(nil)
	if len(paths) != n {
		b.Fatalf("sampler: %d cgroups, want %d", len(paths), n)
	}
	s := newMetricsScraper(cfg, settings, smp, tb)

	// The floor: the files a scrape reads, held open, read with pread. The
	// limit file is not among them: it is read again only after a write
	// (cgroupfs.LimitWatch), and nothing writes it here. On v1 these are
	// memory.usage_in_bytes, max_usage_in_bytes, failcnt, stat and
	// oom_control; on v2 they depend on the kernel (memory.peak from
	// 5.19, memory.pressure with PSI), hence asked of cgroupfs.
	files, statKeys := scrapeFiles(b, env.Hierarchy, paths[0], optionalFiles(cfg))
	var fds []int
	for _, p := range paths {
		for _, name := range files {
			fd, err := unix.Open(filepath.Join(env.Hierarchy.Abs(p), name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			fds = append(fds, fd)
		}
	}
	defer func() {
		for _, fd := range fds {
			_ = unix.Close(fd)
		}
	}()
	buf := make([]byte, 8<<10)
	peer := newPeer(b, env.Hierarchy, paths)
	ctx := b.Context()
	// Counted apart: AllocsPerRun's scrapes are not in the timed rounds.
	allocs := testing.AllocsPerRun(3, func() { _, _ = s.scrape(ctx) }) / float64(n)

	// The three are timed in rounds, interleaved, so that what slows the
	// machine down for a while (another tenant, the clock) weighs on each
	// alike and the ratios hold: each round is pairs passes of the floor
	// and of a scrape, alternating, then one pass of the peer, which is
	// about ten times slower.
	const pairs = 10
	var floorD, oursD, peerD time.Duration
	rounds := 0
	b.Run("rounds", func(b *testing.B) {
		for b.Loop() {
			for range pairs {
				t0 := time.Now()
				for _, fd := range fds {
					if _, err := unix.Pread(fd, buf, 0); err != nil {
						b.Fatal(err)
					}
				}
				t1 := time.Now()
				if _, err := s.scrape(ctx); err != nil {
					b.Fatal(err)
				}
				floorD += t1.Sub(t0)
				oursD += time.Since(t1)
			}
			if peer != nil {
				t2 := time.Now()
				peer(b)
				peerD += time.Since(t2)
			}
			rounds++
		}
	})
	per := func(d time.Duration, passes int) float64 { return float64(d.Nanoseconds()) / float64(passes*n) }
	floorNs, oursNs, peerNs := per(floorD, rounds*pairs), per(oursD, rounds*pairs), per(peerD, rounds)
	var discNs float64
	b.Run("discovery", func(b *testing.B) {
		start := time.Now()
		i := 0
		for b.Loop() {
			if _, err := smp.Discover(); err != nil {
				b.Fatal(err)
			}
			i++
		}
		discNs = float64(time.Since(start).Nanoseconds()) / float64(i)
		b.ReportMetric(discNs, "ns/scrape")
	})
	hv := env.Hierarchy.Version
	fmt.Printf("BENCH scrape cgroups=%d ours_ns_per_cgroup=%.0f floor_ns_per_cgroup=%.0f ratio=%.2f allocs_per_cgroup=%.1f hierarchy=%s files=%d stat_keys=%d\n",
		n, oursNs, floorNs, oursNs/floorNs, allocs, hv, len(files), statKeys)
	fmt.Printf("BENCH scrape_files hierarchy=%s files=%s\n", hv, strings.Join(files, ","))
	if peer != nil {
		fmt.Printf("BENCH peer name=containerd-cgroups cgroups=%d ns_per_cgroup=%.0f ours_ns_per_cgroup=%.0f speedup=%.1f hierarchy=%s\n", n, peerNs, oursNs, peerNs/oursNs, hv)
	}
	fmt.Printf("BENCH discovery cgroups=%d ns_per_scrape=%.0f hierarchy=%s\n", n, discNs, hv)
}

// scrapeFiles names the files a scrape reads of the cgroup at path on
// this kernel (limit files aside, see cgroupfs.Cgroup.ReadFiles), and
// counts the keys of its memory.stat, the file that dominates the parse.
func scrapeFiles(b *testing.B, h cgroupfs.Hierarchy, path string, opt cgroupfs.Optional) (files []string, statKeys int) {
	c, err := cgroupfs.Open(h, path, opt)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	stat, err := os.ReadFile(filepath.Join(h.Abs(path), "memory.stat"))
	if err != nil {
		b.Fatal(err)
	}
	return c.ReadFiles(false), len(strings.Fields(string(stat))) / 2
}

// newPeer returns one pass of containerd/cgroups' cgroup1 Stat over the
// cgroups at paths (memory subsystem only), or nil on v2: its cgroup2
// package would add cilium/ebpf to the module's dependencies for a
// benchmark, so the v2 run compares with the kernel floor alone.
func newPeer(b *testing.B, h cgroupfs.Hierarchy, paths []string) func(*testing.B) {
	if h.Version != cgroupfs.V1 {
		return nil
	}
	mem := cgroup1.NewMemory(h.Dir)
	var cgs []cgroup1.Cgroup
	for _, p := range paths {
		cg, err := cgroup1.Load(cgroup1.StaticPath(filepath.Join("..", p)), cgroup1.WithHierarchy(func() ([]cgroup1.Subsystem, error) {
			return []cgroup1.Subsystem{mem}, nil
		}))
		if err != nil {
			b.Fatal(err)
		}
		cgs = append(cgs, cg)
	}
	return func(b *testing.B) {
		for _, cg := range cgs {
			if _, err := cg.Stat(cgroup1.IgnoreNotExist); err != nil {
				b.Fatal(err)
			}
		}
	}
}
