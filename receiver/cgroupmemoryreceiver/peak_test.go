// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgroupmemoryreceiver

import (
	"context"
	"fmt"
	"math"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/metadata"
)

const mib = 1 << 20

// startMetricsReceiver runs the receiver through its factory with cfg and
// returns the sink; it is shut down at cleanup.
func startMetricsReceiver(tb testing.TB, cfg *Config, set receiver.Settings) *consumertest.MetricsSink {
	tb.Helper()
	sink := new(consumertest.MetricsSink)
	rcv, err := NewFactory().CreateMetrics(tb.Context(), set, cfg, sink)
	require.NoError(tb, err)
	require.NoError(tb, rcv.Start(tb.Context(), componenttest.NewNopHost()))
	tb.Cleanup(func() { require.NoError(tb, rcv.Shutdown(context.WithoutCancel(tb.Context()))) })
	return sink
}

// dataPoint is one data point of one metric of one cgroup.
type dataPoint struct {
	t time.Time
	v int64
}

// series returns every data point of the attribute-less metric name of the
// cgroup at path, in the order the sink received them.
func series(sink *consumertest.MetricsSink, path, name string) []dataPoint {
	var out []dataPoint
	for _, md := range sink.AllMetrics() {
		rm := find(md, path)
		if rm == nil {
			continue
		}
		for i := 0; i < rm.ScopeMetrics().Len(); i++ {
			ms := rm.ScopeMetrics().At(i).Metrics()
			for j := 0; j < ms.Len(); j++ {
				m := ms.At(j)
				if m.Name() != name {
					continue
				}
				var dps pmetric.NumberDataPointSlice
				if m.Type() == pmetric.MetricTypeGauge {
					dps = m.Gauge().DataPoints()
				} else {
					dps = m.Sum().DataPoints()
				}
				for k := 0; k < dps.Len(); k++ {
					out = append(out, dataPoint{dps.At(k).Timestamp().AsTime(), dps.At(k).IntValue()})
				}
			}
		}
	}
	return out
}

// batches counts the exports that carry the cgroup at path.
func batches(sink *consumertest.MetricsSink, path string) int {
	n := 0
	for _, md := range sink.AllMetrics() {
		if find(md, path) != nil {
			n++
		}
	}
	return n
}

// waitBatch waits for the export after the n-th one carrying path.
func waitBatch(t *testing.T, sink *consumertest.MetricsSink, path string, n int, timeout time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool { return batches(sink, path) > n }, timeout, 10*time.Millisecond,
		"no export of %s after the %d-th", path, n)
}

// lastPeak is the newest cgroup.memory.peak of path.
func lastPeak(t *testing.T, sink *consumertest.MetricsSink, path string) int64 {
	t.Helper()
	s := series(sink, path, "cgroup.memory.peak")
	require.NotEmpty(t, s)
	return s[len(s)-1].v
}

// within reports whether got is within 5 % of want.
func within(got, want int64) bool {
	return math.Abs(float64(got-want)) <= 0.05*float64(want)
}

// spikeScene is a memory cgroup holding a 20 MiB baseline and a memhog
// ready to spike.
type spikeScene struct {
	cg *cgrouptest.Cgroup
	p  *cgrouptest.Proc
}

func newSpikeScene(t *testing.T) *spikeScene {
	env := cgrouptest.Require(t)
	if env.Hierarchy.Version != 1 {
		cgrouptest.Unavailable(t, "this test is about cgroup v1 (v2 runs in make e2e-v2)")
	}
	cg := env.NewCgroup(t, fmt.Sprintf("oomsight-peak-%d-%s", os.Getpid(), t.Name()))
	cg.SetLimit(t, 512*mib)
	p := cg.Start(t, cgrouptest.BuildMemhog(t))
	p.MustDo(t, "anon 20")
	return &spikeScene{cg: cg, p: p}
}

// spikes runs one spike per collection interval and checks that the data
// point closing that interval reports it within 5 %: the spike's true top
// is the usage before it plus its size.
func (s *spikeScene) spikes(t *testing.T, sink *consumertest.MetricsSink, interval time.Duration, holdMs int, sizes ...int) {
	n := batches(sink, s.cg.Path)
	waitBatch(t, sink, s.cg.Path, n, 3*interval)
	for _, size := range sizes {
		n = batches(sink, s.cg.Path) // the interval starts at this export
		time.Sleep(interval / 5)
		base := int64(s.cg.ReadUint(t, "memory.usage_in_bytes"))
		s.p.MustDo(t, fmt.Sprintf("spike %d %d", size, holdMs))
		after := int64(s.cg.ReadUint(t, "memory.usage_in_bytes"))
		waitBatch(t, sink, s.cg.Path, n, 3*interval)
		want := base + int64(size)*mib
		got := lastPeak(t, sink, s.cg.Path)
		assert.True(t, within(got, want), "spike of %d MiB for %d ms on %.1f MiB: peak %.1f MiB, want %.1f MiB ±5%% (usage after: %.1f MiB)",
			size, holdMs, float64(base)/mib, float64(got)/mib, float64(want)/mib, float64(after)/mib)
	}
}

// TestPeakCatchesSpikesBetweenCollections: at a 5 s collection interval,
// spikes of 200 ms falling (120, 90, 60 MiB: the lifetime peak shows only
// the first) and rising again (90, 120) are each reported by the interval
// that contains them, from the 100 ms fast pass and the lifetime peak.
func TestPeakCatchesSpikesBetweenCollections(t *testing.T) {
	s := newSpikeScene(t)
	cfg := createDefaultConfig().(*Config)
	cfg.CollectionInterval = 5 * time.Second
	cfg.SamplingInterval = 100 * time.Millisecond
	cfg.Include = []string{s.cg.Path}
	sink := startMetricsReceiver(t, cfg, receivertest.NewNopSettings(metadata.Type))
	s.spikes(t, sink, cfg.CollectionInterval, 200, 120, 90, 60, 90, 120)
	// Between spikes the peak falls back to the baseline: it is per
	// interval, not the lifetime maximum.
	n := batches(sink, s.cg.Path)
	waitBatch(t, sink, s.cg.Path, n, 3*cfg.CollectionInterval)
	assert.Less(t, lastPeak(t, sink, s.cg.Path), int64(40*mib), "an interval without a spike")
}

// TestPeakResetCatchesShortSpikes: with peak_reset the v1 watermark is
// reset per read, so spikes of 20 ms — far shorter than any sampling — are
// each exact, with the fast pass off to prove it.
func TestPeakResetCatchesShortSpikes(t *testing.T) {
	s := newSpikeScene(t)
	cfg := createDefaultConfig().(*Config)
	cfg.CollectionInterval = time.Second
	cfg.SamplingInterval = 0
	cfg.PeakReset = true
	cfg.Include = []string{s.cg.Path}
	sink := startMetricsReceiver(t, cfg, receivertest.NewNopSettings(metadata.Type))
	s.spikes(t, sink, cfg.CollectionInterval, 20, 120, 90, 60)
}

// TestPeakWithoutResetMissesShortSpikes is the control of the test above:
// the same 20 ms spikes without peak_reset and without the fast pass are
// invisible after the first one (the lifetime peak does not rise), which
// is why the fast pass and peak_reset exist.
func TestPeakWithoutResetMissesShortSpikes(t *testing.T) {
	s := newSpikeScene(t)
	cfg := createDefaultConfig().(*Config)
	cfg.CollectionInterval = time.Second
	cfg.SamplingInterval = 0
	cfg.Include = []string{s.cg.Path}
	sink := startMetricsReceiver(t, cfg, receivertest.NewNopSettings(metadata.Type))
	s.spikes(t, sink, cfg.CollectionInterval, 20, 120) // the lifetime peak rises: exact
	n := batches(sink, s.cg.Path)
	waitBatch(t, sink, s.cg.Path, n, 3*time.Second)
	time.Sleep(200 * time.Millisecond)
	s.p.MustDo(t, "spike 90 20")
	waitBatch(t, sink, s.cg.Path, n+1, 3*time.Second)
	assert.Less(t, lastPeak(t, sink, s.cg.Path), int64(60*mib), "without reset or fast pass a 20 ms spike below the lifetime peak is missed")
}

// TestLimitHitPeakOnNewestPoint: a spike through the v1 90 % threshold of
// a 64 MiB limit is caught by its event sample (the fast pass is off), and
// usage falls before the collection. The collection's point, the newest of
// its batch and the one a pull backend such as Prometheus keeps, must
// still carry the spike (sampler.SinceCollection), not the usage after it.
func TestLimitHitPeakOnNewestPoint(t *testing.T) {
	env := cgrouptest.Require(t)
	if env.Hierarchy.Version != 1 {
		cgrouptest.Unavailable(t, "this test is about cgroup v1's threshold event (v2 runs in make e2e-v2)")
	}
	cg := env.NewCgroup(t, fmt.Sprintf("oomsight-limithit-%d", os.Getpid()))
	cg.SetLimit(t, 64*mib)
	p := cg.Start(t, cgrouptest.BuildMemhog(t))
	cfg := createDefaultConfig().(*Config)
	cfg.CollectionInterval = 3 * time.Second
	cfg.SamplingInterval = 0
	cfg.Include = []string{cg.Path}
	sink := startMetricsReceiver(t, cfg, receivertest.NewNopSettings(metadata.Type))
	waitBatch(t, sink, cg.Path, 0, 10*time.Second)
	n := batches(sink, cg.Path)
	p.MustDo(t, "spike 60 300") // past 57.6 MiB for 300 ms, then freed
	waitBatch(t, sink, cg.Path, n, 3*cfg.CollectionInterval)

	var spiked bool
	for _, b := range peakBatches(sink, cg.Path) {
		if b.highest >= 58*mib && b.points > 1 {
			spiked = true // the event sample's point and the collection's
		}
	}
	assertLastPointHighest(t, sink, cg.Path)
	require.True(t, spiked, "no batch with the spike's event sample and a collection point (event capture at the limit off?)")
}
