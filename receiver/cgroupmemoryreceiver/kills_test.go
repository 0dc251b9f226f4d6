// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgroupmemoryreceiver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/metadata"
)

// statusHost records the component status events reported to it.
type statusHost struct {
	component.Host
	mu     sync.Mutex
	events []*componentstatus.Event
}

func (h *statusHost) Report(ev *componentstatus.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, ev)
}

func (h *statusHost) last() *componentstatus.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.events) == 0 {
		return nil
	}
	return h.events[len(h.events)-1]
}

// TestUnreadableKernelLogKeepsRunning: with a kernel log that cannot be
// read (a path that does not exist yet), the receiver starts, exports
// metrics, says why in the log and the component status, and each OOM kill
// still becomes a record from the cgroup's oom_kill counter. Once the path
// becomes readable the kernel's reports take over, with no double record.
func TestUnreadableKernelLogKeepsRunning(t *testing.T) {
	s := newOOMScene(t)
	kmsgPath := filepath.Join(t.TempDir(), "kmsg")
	cfg := oomTestConfig(s)
	cfg.Include = []string{s.pod.Path, s.ctr.Path}
	cfg.CollectionInterval = 500 * time.Millisecond
	cfg.OOM.KmsgPath = kmsgPath

	f := NewFactory()
	set := receivertest.NewNopSettings(metadata.Type)
	core, logObs := observer.New(zap.DebugLevel)
	set.Logger = zap.New(core)
	metrics := new(consumertest.MetricsSink)
	logs := &arrival{path: s.ctr.Path}
	mr, err := f.CreateMetrics(t.Context(), set, cfg, metrics)
	require.NoError(t, err)
	_, err = f.CreateLogs(t.Context(), set, cfg, logs)
	require.NoError(t, err)
	host := &statusHost{Host: componenttest.NewNopHost()}
	require.NoError(t, mr.Start(t.Context(), host), "an unreadable kernel log does not stop the collector")
	t.Cleanup(func() { require.NoError(t, mr.Shutdown(context.WithoutCancel(t.Context()))) })

	warn := logObs.FilterMessageSnippet("the kernel log cannot be read")
	require.Equal(t, 1, warn.Len())
	assert.Contains(t, fmt.Sprint(warn.All()[0].Context), "oom.kmsg_path")
	assert.Contains(t, fmt.Sprint(warn.All()[0].Context), "CAP_SYSLOG")
	require.NotNil(t, host.last())
	assert.Equal(t, componentstatus.StatusRecoverableError, host.last().Status())
	require.Eventually(t, func() bool { return latest(metrics, s.ctr.Path) != nil }, 5*time.Second, 20*time.Millisecond, "metrics flow")

	s.kill(t)
	require.Eventually(t, func() bool { return logs.count() >= 1 }, 5*time.Second, 20*time.Millisecond, "no counter-based record")
	time.Sleep(1200 * time.Millisecond) // two more collections: no second record for the same kill
	require.Equal(t, 1, logs.count())
	lr := logs.recs[0]
	a := lr.Attributes().AsRaw()
	assert.Equal(t, int64(1), a[countedKey])
	assert.Equal(t, s.ctr.Path, a["linux.oom.task_memcg"])
	assert.Equal(t, s.ctr.Path, logs.res[0]["cgroup.path"])
	assert.Contains(t, a, historyKey)
	assert.NotContains(t, a, "process.pid", "the victim is unknown")
	assert.Contains(t, lr.Body().Str(), "A process in container 0dc1822caf9e of pod 0f5eb28f was OOM-killed (its oom_kill counter rose); the kernel's report is not available")
	assert.WithinDuration(t, time.Now(), lr.Timestamp().AsTime(), 5*time.Second)
	assert.Less(t, logObs.FilterMessageSnippet("the kernel log is still unreadable").Len()+warn.Len(), 10, "no error every second")

	// The kernel log appears: the kernel's report is used again.
	require.NoError(t, os.Symlink("/dev/kmsg", kmsgPath))
	require.Eventually(t, func() bool {
		return logObs.FilterMessageSnippet("the kernel log is readable now").Len() == 1
	}, 10*time.Second, 50*time.Millisecond)
	assert.Equal(t, componentstatus.StatusOK, host.last().Status())
	pid := s.kill(t)
	require.Eventually(t, func() bool { return logs.count() >= 2 }, 5*time.Second, 20*time.Millisecond)
	time.Sleep(1200 * time.Millisecond)
	require.Equal(t, 2, logs.count(), "the kernel's record only, not a counted one too")
	assert.Equal(t, int64(pid), logs.recs[1].Attributes().AsRaw()["process.pid"])
}

// TestCountersOnly: an empty oom.kmsg_path (the restricted DaemonSet, no
// /dev/kmsg) reads no kernel log and says so at info level, with no
// warning, no recoverable-error status and no retries; each real OOM kill
// still becomes exactly one record from the cgroup's oom_kill counter.
func TestCountersOnly(t *testing.T) {
	s := newOOMScene(t)
	cfg := oomTestConfig(s)
	cfg.Include = []string{s.pod.Path, s.ctr.Path}
	cfg.CollectionInterval = 500 * time.Millisecond
	cfg.OOM.KmsgPath = ""

	f := NewFactory()
	set := receivertest.NewNopSettings(metadata.Type)
	core, logObs := observer.New(zap.DebugLevel)
	set.Logger = zap.New(core)
	logs := &arrival{path: s.ctr.Path}
	mr, err := f.CreateMetrics(t.Context(), set, cfg, new(consumertest.MetricsSink))
	require.NoError(t, err)
	_, err = f.CreateLogs(t.Context(), set, cfg, logs)
	require.NoError(t, err)
	host := &statusHost{Host: componenttest.NewNopHost()}
	require.NoError(t, mr.Start(t.Context(), host))
	t.Cleanup(func() { require.NoError(t, mr.Shutdown(context.WithoutCancel(t.Context()))) })

	assert.Equal(t, 1, logObs.FilterMessageSnippet("oom.kmsg_path is empty").FilterLevelExact(zap.InfoLevel).Len())
	assert.Zero(t, logObs.FilterLevelExact(zap.WarnLevel).Len(), "nothing to warn about: %v", logObs.FilterLevelExact(zap.WarnLevel).All())
	host.mu.Lock()
	for _, ev := range host.events {
		assert.NotEqual(t, componentstatus.StatusRecoverableError, ev.Status())
	}
	host.mu.Unlock()

	s.kill(t)
	require.Eventually(t, func() bool { return logs.count() >= 1 }, 5*time.Second, 20*time.Millisecond, "no counter-based record")
	time.Sleep(1200 * time.Millisecond)
	require.Equal(t, 1, logs.count())
	a := logs.recs[0].Attributes().AsRaw()
	assert.Equal(t, int64(1), a[countedKey])
	assert.Equal(t, s.ctr.Path, a["linux.oom.task_memcg"])
	assert.Contains(t, logs.recs[0].Body().Str(), "oom.kmsg_path is empty: the kernel log is not read")
	assert.Zero(t, logObs.FilterMessageSnippet("the kernel log is still unreadable").Len(), "no retries")
	// The cgroup outlives the kill and is sampled after it, usage down: the
	// climb ends at its highest point, before the kill, not on the fall.
	hist, ok := logs.recs[0].Attributes().Get(historyKey)
	require.True(t, ok, "the record's climb")
	usage, _ := hist.Map().Get("usage")
	u := usage.Slice()
	require.Positive(t, u.Len())
	var top int64
	for i := 0; i < u.Len(); i++ {
		top = max(top, u.At(i).Int())
	}
	assert.Equal(t, top, u.At(u.Len()-1).Int(), "the history ends at its highest point; body: %s", logs.recs[0].Body().Str())
}
