// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package e2ek8s

import (
	"math"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// The v2 proofs' evaluations, pure, without a cluster (make test runs
// them with the package's other unit tests).

var kill = time.Date(2026, 12, 7, 21, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return kill.Add(time.Duration(s * float64(time.Second))) }

func TestCheckETA(t *testing.T) {
	for _, tc := range []struct {
		name string
		pts  []point // (time from the kill, estimate)
		want string  // "" or a part of the error
		n    int     // estimates checked
	}{
		{"exact", []point{{at: at(-25), v: 25}, {at: at(-15), v: 15}, {at: at(-5), v: 5}}, "", 3},
		{"within 25 %", []point{{at: at(-28), v: 34}, {at: at(-18), v: 14}}, "", 2},
		{"one out", []point{{at: at(-28), v: 36}, {at: at(-18), v: 18}}, "28.0 s before: 36.0 s", 2},
		{"+Inf in the window", []point{{at: at(-20), v: math.Inf(1)}, {at: at(-10), v: 10}}, "+Inf", 2},
		{"1 s floor near the kill", []point{{at: at(-20), v: 20}, {at: at(-0.5), v: 0}}, "", 2},
		{"outside the window ignored", []point{{at: at(-60), v: 1e6}, {at: at(-20), v: 20}, {at: at(-10), v: 10}, {at: at(1), v: 0}}, "", 2},
		{"too few", []point{{at: at(-40), v: 40}, {at: at(-10), v: 10}}, "1 cgroup.memory.oom.eta points", 1},
		{"none", nil, "0 cgroup.memory.oom.eta points", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := checkETA(tc.pts, kill, etaWindow)
			if len(got) != tc.n {
				t.Errorf("%d estimates checked, want %d: %v", len(got), tc.n, got)
			}
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want one with %q", err, tc.want)
			}
		})
	}
}

func TestLastIntervalPeak(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name string
		pts  []point
		want float64
		ok   bool
	}{
		// The idle eater's points long before, the climb's event sample
		// at the kill, the closing point after it.
		{"climb at the kill", []point{{at: at(-40), v: 2 * mib}, {at: at(-30), v: 90 * mib}, {at: at(-8), v: 3 * mib}, {at: at(0.05), v: 64 * mib}, {at: at(0.4), v: 10 * mib}}, 64 * mib, true},
		{"only old points", []point{{at: at(-40), v: 64 * mib}}, 0, false},
		{"none", nil, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := lastIntervalPeak(tc.pts, kill, agentInterval)
			if ok != tc.ok || got.v != tc.want {
				t.Errorf("lastIntervalPeak = %.0f, %v; want %.0f, %v", got.v, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestMetricPoints: gauges and sums, int and double, of the matching
// resources only, oldest first, with their attributes.
func TestMetricPoints(t *testing.T) {
	md := pmetric.NewMetrics()
	add := func(id, name string, s float64, v any, typ string) {
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("container.id", id)
		m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName(name)
		var dp pmetric.NumberDataPoint
		if name == "cgroup.memory.events" {
			dp = m.SetEmptySum().DataPoints().AppendEmpty()
		} else {
			dp = m.SetEmptyGauge().DataPoints().AppendEmpty()
		}
		dp.SetTimestamp(pcommon.NewTimestampFromTime(at(s)))
		switch x := v.(type) {
		case int64:
			dp.SetIntValue(x)
		case float64:
			dp.SetDoubleValue(x)
		}
		if typ != "" {
			dp.Attributes().PutStr("type", typ)
		}
	}
	add("a", "cgroup.memory.events", -5, int64(7), "high")
	add("a", "cgroup.memory.events", -15, int64(3), "high")
	add("a", "cgroup.memory.events", -15, int64(1), "max")
	add("b", "cgroup.memory.events", -10, int64(99), "high")
	add("a", "cgroup.memory.oom.eta", -10, 12.5, "")
	got := withAttr(metricPoints([]pmetric.Metrics{md}, byContainer("a"), "cgroup.memory.events"), "type", "high")
	if len(got) != 2 || got[0].v != 3 || got[1].v != 7 || !got[0].at.Equal(at(-15)) {
		t.Errorf("events{type=high} of a: %+v; want 3 at -15 s, then 7", got)
	}
	eta := metricPoints([]pmetric.Metrics{md}, byContainer("a"), "cgroup.memory.oom.eta")
	if len(eta) != 1 || eta[0].v != 12.5 {
		t.Errorf("oom.eta of a: %+v", eta)
	}
}
