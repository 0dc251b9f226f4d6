// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/oomsight/oomsight/internal/peerbench"
	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
)

// benchEnv reads a positive integer from the environment, or def.
func benchEnv(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// procStat reads a process's CPU time (user + system) and resident set.
func procStat(b *testing.B, pid int) (cpu time.Duration, rssBytes int64) {
	u, err := peerbench.ReadUsage(pid)
	if err != nil {
		b.Fatal(err)
	}
	return u.CPU, u.RSS
}

// BenchmarkDistroProcess runs the built otelcol-oomsight (whole process,
// debug exporter at basic verbosity) on N real cgroups charged with 1 MiB
// each (OOMSIGHT_BENCH_CGROUPS, default 1000) for OOMSIGHT_BENCH_SECONDS
// (default 60) in three setups: the two rates (sampling 100 ms, collection
// 1 s), every memory file read and exported at 100 ms, and every file once
// a second without the fast pass. RSS growth is
// from 10 s in to the end; CPU is over the time after the first 10 s.
func BenchmarkDistroProcess(b *testing.B) {
	env := cgrouptest.Require(b)
	bin := distro(b)
	n := benchEnv(b, "OOMSIGHT_BENCH_CGROUPS", 1000)
	secs := benchEnv(b, "OOMSIGHT_BENCH_SECONDS", 60)
	if secs <= 10 {
		b.Fatalf("OOMSIGHT_BENCH_SECONDS=%d: the first 10 s are the warm-up", secs)
	}
	parent := env.Many(b, fmt.Sprintf("oomsight-bench-distro-%d", os.Getpid()), n, 1024)
	run := func(sampling, collection string) (rssMB, growthMB, cpuPct float64) {
		cfg := fmt.Sprintf(`receivers:
  cgroupmemory:
    collection_interval: %s
    sampling_interval: %s
    include: [%q]
exporters:
  debug:
    verbosity: basic
service:
  pipelines:
    metrics:
      receivers: [cgroupmemory]
      exporters: [debug]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
`, collection, sampling, parent.Path+"/*")
		proc := runDistro(b, bin, cfg)
		time.Sleep(10 * time.Second)
		cpu0, rss0 := procStat(b, proc.Pid)
		t0 := time.Now()
		time.Sleep(time.Duration(secs-10) * time.Second)
		cpu1, rss1 := procStat(b, proc.Pid)
		elapsed := time.Since(t0)
		_ = proc.Signal(os.Interrupt)
		return float64(rss1) / (1 << 20), float64(rss1-rss0) / (1 << 20), 100 * (cpu1 - cpu0).Seconds() / elapsed.Seconds()
	}
	for b.Loop() {
		rss, growth, cpu := run("100ms", "1s")
		fmt.Printf("BENCH process cgroups=%d sampling=100ms collection=1s rss_mb=%.1f rss_growth_mb=%.1f cpu_pct=%.1f\n", n, rss, growth, cpu)
		fmt.Printf("BENCH rss cgroups=%d sampling=100ms collection=1s rss_mb=%.1f rss_growth_mb=%.1f cpu_pct=%.1f\n", n, rss, growth, cpu)
		// sampling_interval 100ms is not shorter than the collection: the
		// fast pass is off and every collection reads every file.
		fullRSS, fullGrowth, full := run("100ms", "100ms")
		fmt.Printf("BENCH process cgroups=%d sampling=100ms collection=100ms rss_mb=%.1f rss_growth_mb=%.1f cpu_pct=%.1f\n", n, fullRSS, fullGrowth, full)
		fmt.Printf("BENCH cpu_full cgroups=%d collection=100ms cpu_pct=%.1f\n", n, full)
		// Every file once a second and nothing in between: the work of
		// cAdvisor's 1 s housekeeping, for the side-by-side table.
		slowRSS, slowGrowth, slow := run("0s", "1s")
		fmt.Printf("BENCH process cgroups=%d sampling=off collection=1s rss_mb=%.1f rss_growth_mb=%.1f cpu_pct=%.1f\n", n, slowRSS, slowGrowth, slow)
		b.ReportMetric(cpu, "cpu_pct")
	}
}
