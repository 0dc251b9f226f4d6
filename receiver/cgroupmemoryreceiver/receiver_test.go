// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgroupmemoryreceiver

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/oomsight/oomsight/internal/cgroupfs"
	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/metadata"
)

// latest returns the newest values the sink received for the cgroup.
func latest(sink *consumertest.MetricsSink, path string) map[string]int64 {
	all := sink.AllMetrics()
	for _, a := range slices.Backward(all) {
		if rm := find(a, path); rm != nil {
			return values(*rm)
		}
	}
	return nil
}

// TestReceiverRealCgroup runs the receiver through its factory against a
// real memory cgroup: a 64 MiB limit, a process holding 40 MiB, then the
// same process pushed over the limit and OOM-killed by the kernel.
func TestReceiverRealCgroup(t *testing.T) {
	env := cgrouptest.Require(t)
	memhog := cgrouptest.BuildMemhog(t)
	cg := env.NewCgroup(t, fmt.Sprintf("oomsight-receiver-%d", os.Getpid()))
	cg.SetLimit(t, 64<<20)
	p := cg.Start(t, memhog)
	p.MustDo(t, "anon 40")

	cfg := createDefaultConfig().(*Config)
	cfg.CollectionInterval = 100 * time.Millisecond
	cfg.Include = []string{cg.Path}
	sink := new(consumertest.MetricsSink)
	rcv, err := NewFactory().CreateMetrics(t.Context(), receivertest.NewNopSettings(metadata.Type), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, rcv.Start(t.Context(), componenttest.NewNopHost()))
	defer func() { require.NoError(t, rcv.Shutdown(t.Context())) }()

	var v map[string]int64
	require.Eventually(t, func() bool {
		v = latest(sink, cg.Path)
		return v["cgroup.memory.anon"] >= 40<<20
	}, 10*time.Second, 50*time.Millisecond, "no sample with 40 MiB anon: %v", v)
	assert.Equal(t, int64(64<<20), v["cgroup.memory.limit"])
	assert.Less(t, v["cgroup.memory.anon"], int64(56<<20), "40 MiB plus the Go runtime")
	assert.GreaterOrEqual(t, v["cgroup.memory.usage"], v["cgroup.memory.anon"])
	assert.LessOrEqual(t, v["cgroup.memory.working_set"], v["cgroup.memory.usage"])
	assert.GreaterOrEqual(t, v["cgroup.memory.working_set"], int64(40<<20))
	// The kernel agrees (same file, read by the test itself).
	assert.InDelta(t, float64(cg.ReadUint(t, "memory.usage_in_bytes")), float64(v["cgroup.memory.usage"]), 8<<20)
	failcnt0, kills0 := v["cgroup.memory.failcnt"], v["cgroup.memory.oom_kills"]
	assert.Zero(t, kills0)

	// Over the limit: the kernel kills memhog.
	cgrouptest.PaceOOM(t)
	_, err = p.Do("anon 100", 30*time.Second)
	require.Error(t, err, "memhog must not survive 140 MiB in a 64 MiB cgroup")
	ws, err := p.Wait(10 * time.Second)
	require.NoError(t, err)
	require.Equal(t, syscall.SIGKILL, ws.Signal(), "killed by the OOM killer")

	require.Eventually(t, func() bool {
		v = latest(sink, cg.Path)
		return v["cgroup.memory.oom_kills"] > kills0
	}, 10*time.Second, 50*time.Millisecond, "oom_kills did not rise: %v", v)
	assert.Greater(t, v["cgroup.memory.failcnt"], failcnt0, "failcnt must rise")
	assert.Equal(t, int64(1), v["cgroup.memory.oom_kills"])
}

func TestReceiverStartErrors(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.RootPath = filepath.Join(t.TempDir(), "missing")
	rcv, err := NewFactory().CreateMetrics(t.Context(), receivertest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
	require.NoError(t, err)
	err = rcv.Start(t.Context(), componenttest.NewNopHost())
	require.Error(t, err)
	assert.ErrorContains(t, err, "root_path")
	assert.ErrorContains(t, err, "/host/sys/fs/cgroup")
	require.NoError(t, rcv.Shutdown(t.Context()))

	noMem := t.TempDir()
	cfg2 := createDefaultConfig().(*Config)
	cfg2.RootPath = noMem
	rcv, err = NewFactory().CreateMetrics(t.Context(), receivertest.NewNopSettings(metadata.Type), cfg2, consumertest.NewNop())
	require.NoError(t, err)
	err = rcv.Start(t.Context(), componenttest.NewNopHost())
	assert.ErrorContains(t, err, "no cgroup memory controller found")
	require.NoError(t, rcv.Shutdown(t.Context()))
}

// TestFactorySharesInstance: pipelines of one configuration share one
// receiver (the OOM logs pipeline will need the sampler's registry); another
// configuration gets its own, and a shut-down instance is forgotten so that
// a collector reload starts afresh.
func TestFactorySharesInstance(t *testing.T) {
	f := &factory{instances: make(map[*Config]*cgroupReceiver)}
	set := receivertest.NewNopSettings(metadata.Type)
	cfg := createDefaultConfig().(*Config)
	a := f.instance(cfg, set)
	assert.Same(t, a, f.instance(cfg, set))
	b := f.instance(createDefaultConfig().(*Config), set)
	assert.NotSame(t, a, b)

	m, err := f.createMetrics(t.Context(), set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	assert.Same(t, a, m)
	_, err = f.createMetrics(t.Context(), set, cfg, consumertest.NewNop())
	assert.ErrorContains(t, err, "attached twice")

	require.NoError(t, a.Start(t.Context(), componenttest.NewNopHost()))
	require.NoError(t, a.Shutdown(t.Context()))
	require.NoError(t, a.Shutdown(t.Context()), "second shutdown is a no-op")
	assert.NotSame(t, a, f.instance(cfg, set))
}

// TestFastPassOnlyWhenFaster: the fast pass runs when sampling_interval is
// shorter than collection_interval, and is off (said once, at start) when
// every collection reads usage at least as often.
func TestFastPassOnlyWhenFaster(t *testing.T) {
	env := cgrouptest.Require(t)
	cg := env.NewCgroup(t, fmt.Sprintf("oomsight-fastpass-%d", os.Getpid()))
	for _, c := range []struct {
		sampling, collection time.Duration
		on                   bool
	}{
		{100 * time.Millisecond, time.Second, true},
		{100 * time.Millisecond, 100 * time.Millisecond, false},
		{time.Second, 500 * time.Millisecond, false},
		{0, time.Second, false},
	} {
		cfg := createDefaultConfig().(*Config)
		cfg.SamplingInterval, cfg.CollectionInterval = c.sampling, c.collection
		cfg.Include = []string{cg.Path}
		core, logs := observer.New(zap.InfoLevel)
		set := receivertest.NewNopSettings(metadata.Type)
		set.Logger = zap.New(core)
		rcv, err := NewFactory().CreateMetrics(t.Context(), set, cfg, new(consumertest.MetricsSink))
		require.NoError(t, err)
		require.NoError(t, rcv.Start(t.Context(), componenttest.NewNopHost()))
		r := rcv.(*cgroupReceiver)
		assert.Equal(t, c.on, r.smp.FastPass(), "sampling %s, collection %s", c.sampling, c.collection)
		said := logs.FilterMessageSnippet("fast pass off").Len()
		assert.Equal(t, !c.on && c.sampling > 0, said == 1, "sampling %s, collection %s: %d messages", c.sampling, c.collection, said)
		require.NoError(t, rcv.Shutdown(t.Context()))
	}
}

// TestLimitChangeFollowed: a limit is read again only after it was
// written, and a write by anyone (here the host, while the receiver reads
// through a read-only mount as the restricted DaemonSet does) shows in the
// next collection: raised, removed, set again.
func TestLimitChangeFollowed(t *testing.T) {
	env := cgrouptest.Require(t)
	cg := env.NewCgroup(t, fmt.Sprintf("oomsight-limitchange-%d", os.Getpid()))
	cg.SetLimit(t, 64<<20)
	cfg := createDefaultConfig().(*Config)
	cfg.CollectionInterval = 100 * time.Millisecond
	cfg.RootPath = cgrouptest.ReadOnlyMount(t, env.Hierarchy.Dir)
	cfg.Include = []string{cg.Path}
	sink := startMetricsReceiver(t, cfg, receivertest.NewNopSettings(metadata.Type))

	limitIs := func(want int64, what string) {
		t.Helper()
		var v map[string]int64
		require.Eventually(t, func() bool {
			v = latest(sink, cg.Path)
			l, ok := v["cgroup.memory.limit"]
			if want < 0 {
				return v != nil && !ok
			}
			return l == want
		}, 5*time.Second, 20*time.Millisecond, "%s: %v", what, v)
	}
	limitIs(64<<20, "the first limit")
	cg.SetLimit(t, 96<<20)
	limitIs(96<<20, "raised")
	unlimited, file := "-1", "memory.limit_in_bytes"
	if env.Hierarchy.Version == cgroupfs.V2 {
		unlimited, file = "max", "memory.max"
	} else if _, err := os.Stat(filepath.Join(cg.Dir, "memory.memsw.limit_in_bytes")); err == nil {
		require.NoError(t, os.WriteFile(filepath.Join(cg.Dir, "memory.memsw.limit_in_bytes"), []byte("-1"), 0o600))
	}
	require.NoError(t, os.WriteFile(filepath.Join(cg.Dir, file), []byte(unlimited), 0o600))
	limitIs(-1, "removed")
	cg.SetLimit(t, 32<<20)
	limitIs(32<<20, "set again")
}
