// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgroupmemoryreceiver

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/metadata"
)

// startShared runs one receiver instance for a metrics and a logs
// pipeline of the same configuration, as the collector does.
func startShared(t *testing.T, cfg *Config, logs consumer.Logs) *consumertest.MetricsSink {
	t.Helper()
	f := NewFactory()
	set := receivertest.NewNopSettings(metadata.Type)
	sink := new(consumertest.MetricsSink)
	mr, err := f.CreateMetrics(t.Context(), set, cfg, sink)
	require.NoError(t, err)
	_, err = f.CreateLogs(t.Context(), set, cfg, logs)
	require.NoError(t, err)
	require.NoError(t, mr.Start(t.Context(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, mr.Shutdown(context.WithoutCancel(t.Context()))) })
	return sink
}

// TestOOMRecordCarriesTheClimb: at a 60 s collection interval — one
// collection at start, none before the kill — the OOM record carries the
// limiting (pod) cgroup's history from the fast pass and the event samples,
// reaching at least 90 % of the limit; also when the runtime removes the
// cgroups right after the kill. The last 24 MiB climb at 20 MiB/s (a
// fast leak): at the speed of memory the kill follows the 90 % crossing
// within milliseconds, and the event sample's read then loses the race to
// the kill now and then on a loaded machine (a few per cent of runs).
func TestOOMRecordCarriesTheClimb(t *testing.T) {
	for _, removed := range []bool{false, true} {
		name := "kept"
		if removed {
			name = "removed-right-after"
		}
		t.Run(name, func(t *testing.T) {
			s := newOOMScene(t)
			cfg := oomTestConfig(s)
			cfg.Include = []string{s.pod.Path, s.ctr.Path}
			cfg.CollectionInterval = time.Minute
			cfg.SamplingInterval = 100 * time.Millisecond
			logs := &arrival{path: s.ctr.Path}
			startShared(t, cfg, logs)
			time.Sleep(300 * time.Millisecond) // a few fast samples of the baseline

			if removed {
				go removeWhenEmpty(s)
			}
			start := time.Now()
			s.killBy(t, "ramp 20480 100")
			require.Eventually(t, func() bool { return logs.count() >= 1 }, 10*time.Second, 20*time.Millisecond, "no OOM record")
			lr := logs.recs[0]
			killed := lr.Timestamp().AsTime()

			v, ok := lr.Attributes().Get(historyKey)
			require.True(t, ok, "no %s on the record", historyKey)
			h := v.Map().AsRaw()
			ts, usage := ints(t, h["t"]), ints(t, h["usage"])
			require.NotEmpty(t, ts)
			require.Len(t, usage, len(ts))
			assert.LessOrEqual(t, len(ts), 600)
			for i := 1; i < len(ts); i++ {
				assert.Less(t, ts[i-1], ts[i], "t ascending")
			}
			assert.LessOrEqual(t, ts[len(ts)-1], killed.UnixMilli()+1, "the history ends at the kill")
			assert.GreaterOrEqual(t, ts[0], start.Add(-2*time.Second).UnixMilli())
			top := int64(0)
			for _, u := range usage {
				top = max(top, u)
			}
			assert.GreaterOrEqual(t, top, int64(64*mib*9/10), "the history reaches 90 %% of the 64 MiB limit: %v", usage)
			fullT := ints(t, h["full_t"])
			require.NotEmpty(t, fullT, "the collection at start is a full sample")
			for _, k := range []string{"anon", "file", "active_file", "shmem"} {
				assert.Len(t, ints(t, h[k]), len(fullT), k)
			}
			anon := ints(t, h["anon"])
			assert.GreaterOrEqual(t, anon[len(anon)-1], int64(40*mib), "a full sample during the climb (an event sample: no collection ran)")
			assert.Contains(t, lr.Body().Str(), "Usage climbed from ")
			t.Logf("body: %s", lr.Body().Str())
		})
	}
}

func ints(t *testing.T, v any) []int64 {
	t.Helper()
	s, ok := v.([]any)
	require.True(t, ok, "not an array: %T", v)
	out := make([]int64, len(s))
	for i, x := range s {
		out[i], ok = x.(int64)
		require.True(t, ok, "not an int: %T", x)
	}
	return out
}

// removeWhenEmpty removes the container and pod cgroups the moment the
// container has no process left after having had one, as a runtime does
// after an OOM kill.
func removeWhenEmpty(s *oomScene) {
	deadline := time.Now().Add(30 * time.Second)
	seen := false
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(filepath.Join(s.ctr.Dir, "cgroup.procs"))
		seen = seen || len(b) > 0
		if err == nil && seen && len(b) == 0 {
			if os.Remove(s.ctr.Dir) == nil {
				_ = os.Remove(s.pod.Dir)
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
}

// TestEventSampleAtItsOwnTime: crossing 90 % of the limit between two
// collections takes a full sample then, exported at the next collection as
// an extra data point with its own timestamp.
func TestEventSampleAtItsOwnTime(t *testing.T) {
	env := cgrouptest.Require(t)
	if env.Hierarchy.Version != 1 {
		cgrouptest.Unavailable(t, "v1 threshold events (v2 runs in make e2e-v2)")
	}
	cg := env.NewCgroup(t, "oomsight-event-sample-"+t.Name())
	cg.SetLimit(t, 64*mib)
	p := cg.Start(t, cgrouptest.BuildMemhog(t))
	p.MustDo(t, "anon 20")
	cfg := createDefaultConfig().(*Config)
	cfg.CollectionInterval = 3 * time.Second
	cfg.SamplingInterval = 0
	cfg.Include = []string{cg.Path}
	sink := startMetricsReceiver(t, cfg, receivertest.NewNopSettings(metadata.Type))

	n := batches(sink, cg.Path)
	waitBatch(t, sink, cg.Path, n, 10*time.Second)
	before := len(series(sink, cg.Path, "cgroup.memory.usage"))
	time.Sleep(500 * time.Millisecond)
	t0 := time.Now()
	p.MustDo(t, "anon 40") // ~61 MiB: past the 57.6 MiB threshold
	t1 := time.Now()
	waitBatch(t, sink, cg.Path, n+1, 10*time.Second)

	pts := series(sink, cg.Path, "cgroup.memory.usage")[before:]
	require.GreaterOrEqual(t, len(pts), 2, "an event sample and the collection sample: %v", pts)
	ev, coll := pts[0], pts[len(pts)-1]
	assert.True(t, !ev.t.Before(t0) && !ev.t.After(t1.Add(50*time.Millisecond)),
		"event sample at %s, while crossing the threshold (%s..%s)", ev.t.Format(time.StampMilli), t0.Format(time.StampMilli), t1.Format(time.StampMilli))
	assert.GreaterOrEqual(t, ev.v, int64(64*mib*9/10))
	assert.True(t, coll.t.After(ev.t.Add(time.Second)), "the collection sample comes later, at its own time")
	peaks := series(sink, cg.Path, "cgroup.memory.peak")
	assert.GreaterOrEqual(t, len(peaks), 2, "each data point has its peak")
}

// TestOOMRecordsCounterSurvivesTheCgroup: the kill is counted in
// cgroup.memory.oom_kill.records on the victim's cgroup resource, by cause,
// and the counter is still exported after the runtime removed the cgroup
// (the cgroup's own oom_kills is gone with it).
func TestOOMRecordsCounterSurvivesTheCgroup(t *testing.T) {
	s := newOOMScene(t)
	cfg := oomTestConfig(s)
	cfg.Include = []string{s.pod.Path, s.ctr.Path}
	cfg.CollectionInterval = 300 * time.Millisecond
	logs := &arrival{path: s.ctr.Path}
	sink := startShared(t, cfg, logs)
	go removeWhenEmpty(s)
	s.kill(t)
	require.Eventually(t, func() bool { return logs.count() >= 1 }, 10*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool {
		_, err := os.Stat(s.ctr.Dir)
		return os.IsNotExist(err)
	}, 10*time.Second, 20*time.Millisecond, "the cgroup was not removed")

	n := len(sink.AllMetrics())
	var got int64
	var cause string
	require.Eventually(t, func() bool {
		all := sink.AllMetrics()
		if len(all) <= n+1 {
			return false // an export made after the removal
		}
		rm := find(all[len(all)-1], s.ctr.Path)
		if rm == nil {
			return false
		}
		ms := rm.ScopeMetrics().At(0).Metrics()
		for i := 0; i < ms.Len(); i++ {
			if ms.At(i).Name() != "cgroup.memory.oom_kill.records" {
				continue
			}
			dp := ms.At(i).Sum().DataPoints().At(0)
			got = dp.IntValue()
			v, _ := dp.Attributes().Get("linux.oom.cause")
			cause = v.Str()
			return true
		}
		return false
	}, 10*time.Second, 50*time.Millisecond, "no cgroup.memory.oom_kill.records for the removed cgroup")
	assert.Equal(t, int64(1), got)
	assert.Equal(t, "anon", cause)
}
