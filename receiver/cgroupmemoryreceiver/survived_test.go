// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgroupmemoryreceiver

import (
	"slices"
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

// survivedOf returns the newest cgroup.memory.oom_kill.survived of the
// cgroup at path in md, and whether md has it.
func survivedOf(md pmetric.Metrics, path string) (int64, bool) {
	var v int64
	found := false
	eachMetric(md, path, func(m pmetric.Metric) {
		if m.Name() == "cgroup.memory.oom_kill.survived" && m.Sum().DataPoints().Len() > 0 {
			v, found = m.Sum().DataPoints().At(0).IntValue(), true
		}
	})
	return v, found
}

// lastSurvived is survivedOf the newest export in sink that has the
// cgroup's record counts.
func lastSurvived(sink *consumertest.MetricsSink, path string) (records map[string]int64, survived int64, ok bool) {
	all := sink.AllMetrics()
	for _, a := range slices.Backward(all) {
		if r := recordsOf(a, path); r != nil {
			survived, ok = survivedOf(a, path)
			return r, survived, ok
		}
	}
	return nil, 0, false
}

// TestContainerSurvivedRealKill is issue 19 item 2 on cgroup v1: a
// container's main process (memhog, the init of a pid namespace of its
// own, in a kubepods-shaped container cgroup) runs a worker that grows
// past the pod's 64 MiB limit. The kernel kills the worker; the record
// says the container survived, its body says why Kubernetes shows
// nothing, and cgroup.memory.oom_kill.survived counts it. The converse:
// the main process itself grows and is killed; the record says false, no
// sentence, no survived count.
func TestContainerSurvivedRealKill(t *testing.T) {
	t.Run("worker killed", func(t *testing.T) {
		s := newOOMScene(t)
		cfg := oomTestConfig(s)
		cfg.CollectionInterval = 500 * time.Millisecond
		logs := &arrival{path: s.ctr.Path}
		sink := startShared(t, cfg, logs)
		main := s.ctr.StartContainer(t, s.memhog)
		cgrouptest.PaceOOM(t)
		main.MustDo(t, "child 100")

		require.Eventually(t, func() bool { return logs.count() >= 1 }, 10*time.Second, 20*time.Millisecond, "no OOM record")
		time.Sleep(300 * time.Millisecond)
		require.Equal(t, 1, logs.count())
		lr := logs.recs[0]
		a := lr.Attributes().AsRaw()
		assert.NotEqual(t, int64(main.Pid), a["process.pid"], "the worker was the victim")
		assert.Equal(t, true, a["linux.oom.container.survived"])
		assert.Contains(t, lr.Body().Str(), "The container kept running — a worker was killed, not its main process — so Kubernetes shows no OOMKilled and no restart.")
		t.Logf("body: %s", lr.Body().Str())
		_, err := main.Do("anon 1", 5*time.Second)
		require.NoError(t, err, "the main process runs on")

		require.Eventually(t, func() bool {
			r, n, ok := lastSurvived(sink, s.ctr.Path)
			return ok && n == 1 && r["anon"] == 1
		}, 5*time.Second, 20*time.Millisecond, "cgroup.memory.oom_kill.survived 1 beside oom_kill.records 1")
	})

	t.Run("main process killed", func(t *testing.T) {
		s := newOOMScene(t)
		cfg := oomTestConfig(s)
		cfg.CollectionInterval = 500 * time.Millisecond
		logs := &arrival{path: s.ctr.Path}
		sink := startShared(t, cfg, logs)
		main := s.ctr.StartContainer(t, s.memhog)
		cgrouptest.PaceOOM(t)
		_, err := main.Do("anon 100", 30*time.Second)
		require.Error(t, err, "the main process must be OOM-killed")

		require.Eventually(t, func() bool { return logs.count() >= 1 }, 10*time.Second, 20*time.Millisecond, "no OOM record")
		lr := logs.recs[0]
		a := lr.Attributes().AsRaw()
		assert.Equal(t, int64(main.Pid), a["process.pid"])
		assert.Equal(t, false, a["linux.oom.container.survived"])
		assert.NotContains(t, lr.Body().Str(), "kept running")

		require.Eventually(t, func() bool {
			r, _, _ := lastSurvived(sink, s.ctr.Path)
			return r["anon"] == 1
		}, 5*time.Second, 20*time.Millisecond, "the kill counted")
		time.Sleep(time.Second) // two more collections: no survived count comes
		_, _, ok := lastSurvived(sink, s.ctr.Path)
		assert.False(t, ok, "no cgroup.memory.oom_kill.survived for a container that ended")
	})

	t.Run("counting only", func(t *testing.T) {
		// A metrics pipeline alone (Prometheus only) counts it too.
		s := newOOMScene(t)
		cfg := oomTestConfig(s)
		cfg.CollectionInterval = 500 * time.Millisecond
		sink := startMetricsReceiver(t, cfg, receivertest.NewNopSettings(metadata.Type))
		main := s.ctr.StartContainer(t, s.memhog)
		cgrouptest.PaceOOM(t)
		main.MustDo(t, "child 100")
		require.Eventually(t, func() bool {
			r, n, ok := lastSurvived(sink, s.ctr.Path)
			return ok && n == 1 && r["anon"] == 1
		}, 5*time.Second, 20*time.Millisecond, "cgroup.memory.oom_kill.survived 1 without a logs pipeline")
	})
}
