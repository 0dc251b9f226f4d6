// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgroupmemoryreceiver

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/metadata"
)

// recordsOf returns the newest cgroup.memory.oom_kill.records of the cgroup
// at path in md, by cause; nil when md has none.
func recordsOf(md pmetric.Metrics, path string) map[string]int64 {
	var out map[string]int64
	eachMetric(md, path, func(m pmetric.Metric) {
		if m.Name() != "cgroup.memory.oom_kill.records" {
			return
		}
		dps := m.Sum().DataPoints()
		for l := 0; l < dps.Len(); l++ {
			if out == nil {
				out = map[string]int64{}
			}
			cause, _ := dps.At(l).Attributes().Get("linux.oom.cause")
			out[cause.Str()] = dps.At(l).IntValue()
		}
	})
	return out
}

// TestMetricsOnlyCountsKills is issue 18 item 2: a receiver with only a
// metrics pipeline (a Prometheus-only user) reads the kernel log and counts
// a real kill, in a cgroup removed right after it, in
// cgroup.memory.oom_kill.records within two collections, where the
// cgroup's own oom_kills dies with the cgroup.
func TestMetricsOnlyCountsKills(t *testing.T) {
	s := newKilledScene(t, cgrouptest.BuildMemhog(t))
	cfg := createDefaultConfig().(*Config)
	cfg.CollectionInterval = time.Second
	cfg.SamplingInterval = 100 * time.Millisecond
	cfg.Include = []string{s.cg.Path}
	require.True(t, cfg.OOM.Enabled)
	sink := startMetricsReceiver(t, cfg, receivertest.NewNopSettings(metadata.Type))
	waitBatch(t, sink, s.cg.Path, 0, 5*time.Second)

	s.growUntilKilledAndRemove(t)
	n := len(sink.AllMetrics())
	require.Eventually(t, func() bool { return len(sink.AllMetrics()) >= n+2 }, 5*time.Second, 20*time.Millisecond)
	all := sink.AllMetrics()
	got := recordsOf(all[n+1], s.cg.Path) // cumulative: the second export after the removal has it
	require.NotNil(t, got, "no cgroup.memory.oom_kill.records for the removed cgroup within two collections")
	assert.Equal(t, map[string]int64{"anon": 1}, got, "one kill, of anonymous memory")
}

// TestMetricsOnlyUnreadableKernelLog: a metrics-only receiver that cannot
// read the kernel log warns once, keeps its component status (its metrics
// all flow), and still counts a kill, from the cgroup's oom_kill counter,
// under the cause "unknown".
func TestMetricsOnlyUnreadableKernelLog(t *testing.T) {
	s := newKilledScene(t, cgrouptest.BuildMemhog(t))
	cfg := createDefaultConfig().(*Config)
	cfg.CollectionInterval = 500 * time.Millisecond
	cfg.Include = []string{s.cg.Path}
	cfg.OOM.KmsgPath = filepath.Join(t.TempDir(), "kmsg")
	set := receivertest.NewNopSettings(metadata.Type)
	core, logObs := observer.New(zap.DebugLevel)
	set.Logger = zap.New(core)
	sink := new(consumertest.MetricsSink)
	rcv, err := NewFactory().CreateMetrics(t.Context(), set, cfg, sink)
	require.NoError(t, err)
	host := &statusHost{Host: componenttest.NewNopHost()}
	require.NoError(t, rcv.Start(t.Context(), host))
	t.Cleanup(func() { require.NoError(t, rcv.Shutdown(context.WithoutCancel(t.Context()))) })

	warn := logObs.FilterMessageSnippet("cgroup.memory.oom_kill.records counts OOM kills from the cgroups' oom_kill counters only")
	assert.Equal(t, 1, warn.Len())
	host.mu.Lock()
	for _, ev := range host.events {
		assert.NotEqual(t, componentstatus.StatusRecoverableError, ev.Status())
	}
	host.mu.Unlock()
	waitBatch(t, sink, s.cg.Path, 0, 5*time.Second)

	p := s.cg.Start(t, s.memhog)
	cgrouptest.PaceOOM(t)
	_, err = p.Do("anon 100", 30*time.Second)
	require.Error(t, err, "memhog must be OOM-killed")
	require.Eventually(t, func() bool {
		all := sink.AllMetrics()
		return assert.ObjectsAreEqual(map[string]int64{"unknown": 1}, recordsOf(all[len(all)-1], s.cg.Path))
	}, 5*time.Second, 20*time.Millisecond, "the kill counted from the oom_kill counter")
}
