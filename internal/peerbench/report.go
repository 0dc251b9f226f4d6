// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package peerbench // import "github.com/oomsight/oomsight/internal/peerbench"

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Run is one measured run of one program: its CPU time over the window
// after the warm-up, and its peak and current resident set at the end.
type Run struct {
	Program     string // "cadvisor", "oomsight"
	Setup       string // the configuration's name (Setups, Features)
	Cgroups     int
	Alternation int // 1-based: which round of the alternation
	CPU         time.Duration
	Window      time.Duration
	Memory      // at the end of the window
	// Load1 is the machine's 1-minute load average at the end of the
	// window: the figures of a loaded machine are not a quiet machine's.
	Load1 float64
}

// CPUPercent is the CPU time over the window in percent of one core.
func (r Run) CPUPercent() float64 {
	if r.Window <= 0 {
		return math.NaN()
	}
	return 100 * r.CPU.Seconds() / r.Window.Seconds()
}

// Line is the run's raw figures, one BENCHPEER_RAW line.
func (r Run) Line() string {
	return fmt.Sprintf("BENCHPEER_RAW program=%s setup=%s cgroups=%d alternation=%d cpu_pct=%.2f cpu_s=%.2f window_s=%.1f rss_hwm_mb=%.1f rss_mb=%.1f rss_anon_mb=%.1f rss_file_mb=%.1f load1=%.2f",
		r.Program, r.Setup, r.Cgroups, r.Alternation, r.CPUPercent(), r.CPU.Seconds(), r.Window.Seconds(), mb(r.HWM), mb(r.RSS), mb(r.Anon), mb(r.File), r.Load1)
}

// Ratio is peer / ours: how many times less oomsight uses (above 1) or
// more (below 1). A zero for ours is +Inf (a window too short to see a
// clock tick); NaN when either is unknown.
func Ratio(peer, ours float64) float64 {
	switch {
	case math.IsNaN(peer) || math.IsNaN(ours):
		return math.NaN()
	case ours == 0:
		return math.Inf(1)
	}
	return peer / ours
}

// Comparison pairs the runs of cAdvisor and of one oomsight setup made in
// the same alternations, so that each pair shares the machine's state of
// its moment.
type Comparison struct {
	Name    string // the BENCHPEER name, e.g. equal_1s
	Cgroups int
	Peer    []Run
	Ours    []Run
}

// Line is the comparison's BENCHPEER line: the ratios of the means over
// the alternations (peer / ours: above 1, oomsight uses that many times
// less), the per-alternation CPU ratios' range, the means themselves and
// the highest load seen.
func (c Comparison) Line() string {
	pc, pr := means(c.Peer)
	oc, or := means(c.Ours)
	var perAlt []float64
	for i := range min(len(c.Peer), len(c.Ours)) {
		perAlt = append(perAlt, Ratio(c.Peer[i].CPUPercent(), c.Ours[i].CPUPercent()))
	}
	lo, hi := math.NaN(), math.NaN()
	if len(perAlt) > 0 {
		lo, hi = slices.Min(perAlt), slices.Max(perAlt)
	}
	return fmt.Sprintf("BENCHPEER %s cgroups=%d cpu_ratio=%.2f rss_ratio=%.2f cpu_ratio_range=%.2f-%.2f runs=%d peer_cpu_pct=%.2f ours_cpu_pct=%.2f peer_rss_hwm_mb=%.1f ours_rss_hwm_mb=%.1f max_load1=%.2f",
		c.Name, c.Cgroups, Ratio(pc, oc), Ratio(pr, or), lo, hi, len(perAlt), pc, oc, pr, or, maxLoad(c.Peer, c.Ours))
}

// FeatureLine is what one default feature adds to the default setup,
// measured by turning it off in the same alternations: the mean CPU and
// peak RSS of the default minus those of the setup without the feature
// (negative: within the noise, or turning it off costs).
func FeatureLine(feature string, cgroups int, base, off []Run) string {
	bc, br := means(base)
	oc, or := means(off)
	return fmt.Sprintf("BENCHFEATURE %s cgroups=%d cpu_pct_added=%.2f rss_hwm_mb_added=%.1f base_cpu_pct=%.2f off_cpu_pct=%.2f base_rss_hwm_mb=%.1f off_rss_hwm_mb=%.1f runs=%d max_load1=%.2f",
		feature, cgroups, bc-oc, br-or, bc, oc, br, or, min(len(base), len(off)), maxLoad(base, off))
}

// means is the mean CPU percentage and peak RSS (MB) of the runs.
func means(runs []Run) (cpuPct, hwmMB float64) {
	if len(runs) == 0 {
		return math.NaN(), math.NaN()
	}
	for _, r := range runs {
		cpuPct += r.CPUPercent()
		hwmMB += mb(r.HWM)
	}
	n := float64(len(runs))
	return cpuPct / n, hwmMB / n
}

func maxLoad(sets ...[]Run) float64 {
	m := 0.0
	for _, s := range sets {
		for _, r := range s {
			m = max(m, r.Load1)
		}
	}
	return m
}

func mb(b int64) float64 { return float64(b) / 1e6 }

// Select keeps the runs of one program, setup and cgroup count, in
// alternation order.
func Select(runs []Run, program, setup string, cgroups int) []Run {
	var out []Run
	for _, r := range runs {
		if r.Program == program && r.Setup == setup && r.Cgroups == cgroups {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b Run) int { return a.Alternation - b.Alternation })
	return out
}

// ParseCounts reads a comma-separated list of cgroup counts
// (OOMSIGHT_PEERS_CGROUPS, "1000,100").
func ParseCounts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("cgroup count %q: want a positive number (e.g. 1000,100)", f)
		}
		out = append(out, n)
	}
	return out, nil
}
