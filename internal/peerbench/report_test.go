// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package peerbench

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRatio(t *testing.T) {
	assert.InDelta(t, 14.0, Ratio(51.1, 3.65), 0.01)
	assert.True(t, math.IsInf(Ratio(1, 0), 1))
	assert.True(t, math.IsNaN(Ratio(math.NaN(), 1)))
	assert.True(t, math.IsNaN(Ratio(1, math.NaN())))
}

func run(program string, alt int, cpu time.Duration, hwmMB, load float64) Run {
	rss := int64(hwmMB * 1e6 * 0.9)
	return Run{
		Program: program, Setup: "s", Cgroups: 1000, Alternation: alt, CPU: cpu, Window: time.Minute,
		Memory: Memory{HWM: int64(hwmMB * 1e6), RSS: rss, Anon: rss / 3, File: rss - rss/3}, Load1: load,
	}
}

func TestRunLine(t *testing.T) {
	r := run("cadvisor", 2, 30*time.Second, 212, 1.5)
	assert.InDelta(t, 50.0, r.CPUPercent(), 1e-9)
	assert.Equal(t, "BENCHPEER_RAW program=cadvisor setup=s cgroups=1000 alternation=2 cpu_pct=50.00 cpu_s=30.00 window_s=60.0 rss_hwm_mb=212.0 rss_mb=190.8 rss_anon_mb=63.6 rss_file_mb=127.2 load1=1.50", r.Line())
	assert.True(t, math.IsNaN(Run{}.CPUPercent()))
}

func TestComparisonLine(t *testing.T) {
	c := Comparison{
		Name: "equal_1s", Cgroups: 1000,
		Peer: []Run{run("cadvisor", 1, 30*time.Second, 210, 1), run("cadvisor", 2, 31200*time.Millisecond, 214, 2.5)},
		Ours: []Run{run("oomsight", 1, 2*time.Second, 87, 1.2), run("oomsight", 2, 2400*time.Millisecond, 88, 0.7)},
	}
	// cpu: 51 % / 3.667 % = 13.91; per alternation 15.0 and 13.0.
	assert.Equal(t, "BENCHPEER equal_1s cgroups=1000 cpu_ratio=13.91 rss_ratio=2.42 cpu_ratio_range=13.00-15.00 runs=2 peer_cpu_pct=51.00 ours_cpu_pct=3.67 peer_rss_hwm_mb=212.0 ours_rss_hwm_mb=87.5 max_load1=2.50", c.Line())

	empty := Comparison{Name: "x", Cgroups: 1}
	assert.Contains(t, empty.Line(), "cpu_ratio=NaN")
}

func TestFeatureLine(t *testing.T) {
	base := []Run{run("oomsight", 1, 6*time.Second, 90, 1), run("oomsight", 2, 6600*time.Millisecond, 92, 1)}
	off := []Run{run("oomsight", 1, 3*time.Second, 89, 3), run("oomsight", 2, 3*time.Second, 89, 1)}
	assert.Equal(t, "BENCHFEATURE fast_pass cgroups=1000 cpu_pct_added=5.50 rss_hwm_mb_added=2.0 base_cpu_pct=10.50 off_cpu_pct=5.00 base_rss_hwm_mb=91.0 off_rss_hwm_mb=89.0 runs=2 max_load1=3.00",
		FeatureLine("fast_pass", 1000, base, off))
}

func TestSelect(t *testing.T) {
	a := run("oomsight", 2, 0, 1, 0)
	b := run("oomsight", 1, 0, 1, 0)
	c := run("cadvisor", 1, 0, 1, 0)
	d := run("oomsight", 1, 0, 1, 0)
	d.Cgroups = 100
	got := Select([]Run{a, b, c, d}, "oomsight", "s", 1000)
	assert.Equal(t, []Run{b, a}, got)
}

func TestParseCounts(t *testing.T) {
	got, err := ParseCounts("1000, 100")
	require.NoError(t, err)
	assert.Equal(t, []int{1000, 100}, got)
	for _, bad := range []string{"", "10x", "0", "-5", "1000,,100"} {
		_, err := ParseCounts(bad)
		assert.Error(t, err, bad)
	}
}
