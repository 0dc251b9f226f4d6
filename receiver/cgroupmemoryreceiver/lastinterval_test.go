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
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/metadata"
)

// killedScene is one cgroup with a 64 MiB limit whose memhog grows until
// the kernel kills it; the cgroup is removed the moment it is empty, as a
// runtime removes a killed container's cgroup.
type killedScene struct {
	cg     *cgrouptest.Cgroup
	memhog string
}

const killedLimit = 64 * mib

func newKilledScene(t *testing.T, memhog string) *killedScene {
	env := cgrouptest.Require(t)
	cg := env.NewCgroup(t, fmt.Sprintf("oomsight-killed-%d-%s", os.Getpid(), filepath.Base(t.Name())))
	cg.SetLimit(t, killedLimit)
	return &killedScene{cg: cg, memhog: memhog}
}

// growUntilKilledAndRemove starts memhog in the cgroup, grows it 4 MiB at
// a time every 50 ms until the kernel kills it, and removes the cgroup as
// soon as it is empty. It returns when the cgroup is gone.
func (s *killedScene) growUntilKilledAndRemove(t *testing.T) {
	p := s.cg.Start(t, s.memhog)
	p.MustDo(t, "anon 8")
	cgrouptest.PaceOOM(t)
	for i := 0; ; i++ {
		require.Less(t, i, 100, "memhog must be OOM-killed at the 64 MiB limit")
		if _, err := p.Do("anon 4", 30*time.Second); err != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, err := p.Wait(10 * time.Second)
	require.NoError(t, err)
	require.NoError(t, cgrouptest.RemoveCgroup(s.cg.Dir), "removing the killed cgroup right after the kill")
}

// eachMetric calls fn for every metric of the cgroup at path in md.
func eachMetric(md pmetric.Metrics, path string, fn func(pmetric.Metric)) {
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		rm := md.ResourceMetrics().At(i)
		if p, ok := rm.Resource().Attributes().Get("cgroup.path"); !ok || p.Str() != path {
			continue
		}
		for j := 0; j < rm.ScopeMetrics().Len(); j++ {
			ms := rm.ScopeMetrics().At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				fn(ms.At(k))
			}
		}
	}
}

// pointsOf returns every data point of the cgroup at path, keyed by metric
// name and attributes, in the order exported.
func pointsOf(sink *consumertest.MetricsSink, path string) map[string][]dataPoint {
	out := map[string][]dataPoint{}
	for _, md := range sink.AllMetrics() {
		eachMetric(md, path, func(m pmetric.Metric) {
			var dps pmetric.NumberDataPointSlice
			switch m.Type() {
			case pmetric.MetricTypeGauge:
				dps = m.Gauge().DataPoints()
			case pmetric.MetricTypeSum:
				dps = m.Sum().DataPoints()
			default:
				return
			}
			for l := 0; l < dps.Len(); l++ {
				key := m.Name() + fmt.Sprint(dps.At(l).Attributes().AsRaw())
				out[key] = append(out[key], dataPoint{dps.At(l).Timestamp().AsTime(), dps.At(l).IntValue()})
			}
		})
	}
	return out
}

// peakBatch is what one collection's batch exported of a cgroup's
// cgroup.memory.peak: its newest point, its highest value, how many points.
type peakBatch struct {
	newest  dataPoint
	highest int64
	points  int
}

// peakBatches returns the cgroup's cgroup.memory.peak points per batch of
// the sink (one batch per collection), in the order exported.
func peakBatches(sink *consumertest.MetricsSink, path string) []peakBatch {
	var out []peakBatch
	for _, md := range sink.AllMetrics() {
		var b peakBatch
		eachMetric(md, path, func(m pmetric.Metric) {
			if m.Name() != "cgroup.memory.peak" {
				return
			}
			dps := m.Gauge().DataPoints()
			for l := 0; l < dps.Len(); l++ {
				p := dataPoint{dps.At(l).Timestamp().AsTime(), dps.At(l).IntValue()}
				if !p.t.Before(b.newest.t) {
					b.newest = p
				}
				b.highest = max(b.highest, p.v)
				b.points++
			}
		})
		out = append(out, b)
	}
	return out
}

// assertLastPointHighest fails when, in one collection's batch, the
// cgroup's newest cgroup.memory.peak point is lower than an earlier one of
// the same batch (an event sample's): a pull backend (Prometheus) keeps
// only the newest, so it must carry the highest (sampler.SinceCollection).
func assertLastPointHighest(t *testing.T, sink *consumertest.MetricsSink, path string) {
	t.Helper()
	for i, b := range peakBatches(sink, path) {
		assert.Equal(t, b.highest, b.newest.v, "batch %d: the newest peak point (%s) carries the batch's highest", i, b.newest.t.Format(time.StampMilli))
	}
}

// assertNoPointTwice fails when a series of pts has two points at one
// timestamp, or goes back in time.
func assertNoPointTwice(t *testing.T, pts map[string][]dataPoint) {
	t.Helper()
	for key, s := range pts {
		for i := 1; i < len(s); i++ {
			assert.True(t, s[i].t.After(s[i-1].t), "%s: point %d at %s after one at %s (exported twice or out of order)",
				key, i, s[i].t.Format(time.StampMicro), s[i-1].t.Format(time.StampMicro))
		}
	}
}

// TestRemovedCgroupLastInterval is issue 18's scenario: a cgroup with a
// 64 MiB limit whose process grows until OOM-killed, the cgroup removed
// right after the kill, collection_interval 1s, sampling_interval 100ms.
// In every run the removed cgroup's exported cgroup.memory.peak reaches
// 95 % of its limit (the interval that killed is exported once, after the
// removal), and no data point is exported twice. The runs kill at
// different phases of the collection interval.
func TestRemovedCgroupLastInterval(t *testing.T) {
	memhog := cgrouptest.BuildMemhog(t)
	for run := range 3 {
		t.Run(fmt.Sprint("run", run), func(t *testing.T) {
			s := newKilledScene(t, memhog)
			cfg := createDefaultConfig().(*Config)
			cfg.CollectionInterval = time.Second
			cfg.SamplingInterval = 100 * time.Millisecond
			cfg.Include = []string{s.cg.Path}
			sink := startMetricsReceiver(t, cfg, receivertest.NewNopSettings(metadata.Type))
			waitBatch(t, sink, s.cg.Path, 0, 5*time.Second)
			// Each run kills at another phase of the collection interval.
			time.Sleep(time.Duration(run) * 330 * time.Millisecond)

			s.growUntilKilledAndRemove(t)
			removed := time.Now()
			// Two more collections after the removal: the last interval
			// comes with the first, and nothing after it.
			n := len(sink.AllMetrics())
			require.Eventually(t, func() bool { return len(sink.AllMetrics()) >= n+2 }, 5*time.Second, 20*time.Millisecond)

			pts := pointsOf(sink, s.cg.Path)
			peaks := pts["cgroup.memory.peak"+fmt.Sprint(map[string]any{})]
			require.NotEmpty(t, peaks)
			top := dataPoint{}
			for _, p := range peaks {
				if p.v > top.v {
					top = p
				}
			}
			assert.GreaterOrEqual(t, top.v, int64(killedLimit*95/100),
				"the removed cgroup's exported peak reaches 95 %% of its limit: %.1f MiB at %s (peaks %v)",
				float64(top.v)/mib, top.t.Format(time.StampMilli), peaks)
			last := peaks[len(peaks)-1]
			assert.False(t, last.t.After(removed), "no point after the removal: %s > %s", last.t, removed)
			assertNoPointTwice(t, pts)
			assertLastPointHighest(t, sink, s.cg.Path)
			t.Logf("peak %.1f MiB at %s (removed %s), %d peak points", float64(top.v)/mib,
				top.t.Format(time.StampMilli), removed.Format(time.StampMilli), len(peaks))
		})
	}
}
