// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgroupmemoryreceiver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/oomsight/oomsight/internal/oomrecord"
	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/metadata"
	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/oompipeline"
)

const (
	testPodUID      = "0f5eb28f-6722-4cf5-ab0f-b62748c018d4"
	testContainerID = "0dc1822caf9e150de25daa1cf572418426ce6b72757b5efdff52acef348368a3"
)

// arrival is a logs consumer that remembers when each OOM record of one
// cgroup arrived, and can be made to block.
type arrival struct {
	path string
	mu   sync.Mutex
	recs []plog.LogRecord
	res  []map[string]any
	at   []time.Time
	gate chan struct{} // when set, ConsumeLogs waits on it
}

func (*arrival) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (a *arrival) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	now := time.Now()
	if a.gate != nil {
		select {
		case <-a.gate:
		case <-ctx.Done():
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		rl := ld.ResourceLogs().At(i)
		if p, ok := rl.Resource().Attributes().Get("cgroup.path"); !ok || p.Str() != a.path {
			continue
		}
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			lrs := rl.ScopeLogs().At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := plog.NewLogRecord()
				lrs.At(k).CopyTo(lr)
				a.recs = append(a.recs, lr)
				a.res = append(a.res, rl.Resource().Attributes().AsRaw())
				a.at = append(a.at, now)
			}
		}
	}
	return nil
}

func (a *arrival) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.recs)
}

// oomScene is a kubepods-shaped cgroup pair below the test's own cgroup:
// a pod with a 64 MiB limit and an unlimited container in it, so that the
// pod's limit is the one hit.
type oomScene struct {
	pod, ctr *cgrouptest.Cgroup
	memhog   string
}

func newOOMScene(tb testing.TB) *oomScene {
	env := cgrouptest.Require(tb)
	base := fmt.Sprintf("oomsight-oom-%d-%s/kubepods/burstable/pod%s", os.Getpid(), tb.Name(), testPodUID)
	pod := env.NewCgroup(tb, base)
	pod.SetLimit(tb, 64<<20)
	ctr := env.NewCgroup(tb, base+"/"+testContainerID)
	return &oomScene{pod: pod, ctr: ctr, memhog: cgrouptest.BuildMemhog(tb)}
}

// kill runs memhog in the container until the kernel kills it at the
// pod's limit, and returns its pid.
func (s *oomScene) kill(tb testing.TB) int { return s.killBy(tb, "anon 100") }

// killBy is kill with the last climb (from 40 MiB past the limit) as the
// memhog command climb: "anon 100" at the speed of memory, a "ramp" at a
// leak's.
func (s *oomScene) killBy(tb testing.TB, climb string) int {
	p := s.ctr.Start(tb, s.memhog)
	p.MustDo(tb, "anon 40")
	cgrouptest.PaceOOM(tb)
	_, err := p.Do(climb, 30*time.Second)
	require.Error(tb, err, "memhog must be OOM-killed")
	_, err = p.Wait(10 * time.Second)
	require.NoError(tb, err)
	return p.Pid
}

func startLogsReceiver(tb testing.TB, cfg *Config, next consumer.Logs) func() {
	rcv, err := NewFactory().CreateLogs(tb.Context(), receivertest.NewNopSettings(metadata.Type), cfg, next)
	require.NoError(tb, err)
	require.NoError(tb, rcv.Start(tb.Context(), componenttest.NewNopHost()))
	var once sync.Once
	stop := func() { once.Do(func() { require.NoError(tb, rcv.Shutdown(context.WithoutCancel(tb.Context()))) }) }
	tb.Cleanup(stop)
	return stop
}

func oomTestConfig(s *oomScene) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.Include = []string{s.ctr.Path}
	return cfg
}

// TestOOMRecordRealKill: a real OOM kill at a pod-level limit becomes one
// log record with the kernel's facts, delivered within a second.
func TestOOMRecordRealKill(t *testing.T) {
	s := newOOMScene(t)
	sink := &arrival{path: s.ctr.Path}
	startLogsReceiver(t, oomTestConfig(s), sink)

	pid := s.kill(t)
	require.Eventually(t, func() bool { return sink.count() >= 1 }, 10*time.Second, 20*time.Millisecond, "no OOM record for %s", s.ctr.Path)
	time.Sleep(300 * time.Millisecond) // a second record would be a duplicate
	require.Equal(t, 1, sink.count())

	lr, res, at := sink.recs[0], sink.res[0], sink.at[0]
	assert.Equal(t, "linux.oom_kill", lr.EventName())
	assert.Equal(t, plog.SeverityNumberError, lr.SeverityNumber())
	assert.Equal(t, map[string]any{
		"cgroup.path":       s.ctr.Path,
		"k8s.pod.uid":       testPodUID,
		"k8s.pod.qos_class": "Burstable",
		"container.id":      testContainerID,
	}, res)
	a := lr.Attributes().AsRaw()
	assert.Equal(t, int64(pid), a["process.pid"])
	assert.Equal(t, "memhog", a["process.executable.name"])
	assert.Equal(t, s.pod.Path, a["linux.oom.memcg"], "the pod's limit was hit")
	assert.Equal(t, s.ctr.Path, a["linux.oom.task_memcg"])
	assert.Equal(t, "CONSTRAINT_MEMCG", a["linux.oom.constraint"])
	assert.Equal(t, int64(64<<20), a["linux.oom.memcg.limit"])
	assert.GreaterOrEqual(t, a["linux.oom.victim.anon_rss"], int64(40<<20))
	assert.Equal(t, "anon", a["linux.oom.cause"])
	assert.Contains(t, lr.Body().Str(), "memhog")
	assert.Contains(t, lr.Body().Str(), "pod")

	killed := lr.Timestamp().AsTime()
	assert.WithinDuration(t, time.Now(), killed, time.Minute, "kernel time converted to wall clock")
	assert.Less(t, at.Sub(killed), time.Second, "delivered within 1 s of the kill")
}

// TestOOMCheckpointRestart: a kill while the receiver is stopped is emitted
// exactly once after restart; another restart emits nothing again.
func TestOOMCheckpointRestart(t *testing.T) {
	s := newOOMScene(t)
	cfg := oomTestConfig(s)
	cfg.OOM.CheckpointFile = filepath.Join(t.TempDir(), "oom.checkpoint")

	first := &arrival{path: s.ctr.Path}
	stop := startLogsReceiver(t, cfg, first)
	pid1 := s.kill(t)
	require.Eventually(t, func() bool { return first.count() == 1 }, 10*time.Second, 20*time.Millisecond)
	stop()

	pid2 := s.kill(t) // while stopped

	second := &arrival{path: s.ctr.Path}
	stop = startLogsReceiver(t, cfg, second)
	require.Eventually(t, func() bool { return second.count() >= 1 }, 10*time.Second, 20*time.Millisecond, "the kill made while stopped was lost")
	time.Sleep(500 * time.Millisecond)
	require.Equal(t, 1, second.count(), "exactly the kill not emitted yet")
	assert.Equal(t, int64(pid2), second.recs[0].Attributes().AsRaw()["process.pid"])
	assert.NotEqual(t, pid1, pid2)
	stop()

	third := &arrival{path: s.ctr.Path}
	startLogsReceiver(t, cfg, third)
	time.Sleep(time.Second)
	assert.Zero(t, third.count(), "nothing is repeated after another restart")
}

// telemetryForTest returns receiver settings whose own telemetry the test
// can read back, and the receiver's telemetry builder on them.
func telemetryForTest(t *testing.T) (*componenttest.Telemetry, receiver.Settings, *metadata.TelemetryBuilder) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.WithoutCancel(t.Context())) })
	set := receivertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	require.NoError(t, err)
	return tel, set, tb
}

func TestOOMStartErrors(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.OOM.CheckpointFile = filepath.Join(t.TempDir(), "missing-dir", "cp")
	rcv, err := NewFactory().CreateLogs(t.Context(), receivertest.NewNopSettings(metadata.Type), cfg, &arrival{})
	require.NoError(t, err)
	err = rcv.Start(t.Context(), componenttest.NewNopHost())
	assert.ErrorContains(t, err, "oom.checkpoint_file")
	require.NoError(t, rcv.Shutdown(t.Context()))
}

// TestLogsOnlyNeedsNoHierarchy: a receiver only in a logs pipeline reads
// the kernel log and opens no cgroup, so a root_path without a memory
// hierarchy does not stop it.
func TestLogsOnlyNeedsNoHierarchy(t *testing.T) {
	if _, err := os.Stat("/dev/kmsg"); err != nil || os.Geteuid() != 0 {
		cgrouptest.Unavailable(t, "reading /dev/kmsg needs root")
	}
	cfg := createDefaultConfig().(*Config)
	cfg.RootPath = filepath.Join(t.TempDir(), "no-cgroups")
	rcv, err := NewFactory().CreateLogs(t.Context(), receivertest.NewNopSettings(metadata.Type), cfg, &arrival{})
	require.NoError(t, err)
	require.NoError(t, rcv.Start(t.Context(), componenttest.NewNopHost()))
	assert.Nil(t, rcv.(*cgroupReceiver).smp, "no cgroup is held open")
	require.NoError(t, rcv.Shutdown(t.Context()))
}

// refuser refuses the first `fails` records it is given (all with -1),
// then hands them to an arrival.
type refuser struct {
	*arrival
	mu    sync.Mutex
	fails int
	calls int
}

func (r *refuser) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	r.mu.Lock()
	r.calls++
	refuse := r.fails < 0 || r.calls <= r.fails
	r.mu.Unlock()
	if refuse {
		return errors.New("gateway unavailable")
	}
	return r.arrival.ConsumeLogs(ctx, ld)
}

// TestOOMRefusedRecordRetriedAndKeptUndelivered: a refusal is retried; a
// record refused for good is counted, stays undelivered in the checkpoint
// (it used to move past it), and is emitted after the restart — once.
func TestOOMRefusedRecordRetriedAndKeptUndelivered(t *testing.T) {
	s := newOOMScene(t)
	cfg := oomTestConfig(s)
	cfg.OOM.CheckpointFile = filepath.Join(t.TempDir(), "oom.checkpoint")

	flaky := &refuser{arrival: &arrival{path: s.ctr.Path}, fails: 2}
	stop := startLogsReceiver(t, cfg, flaky)
	pid1 := s.kill(t)
	require.Eventually(t, func() bool { return flaky.count() == 1 }, 10*time.Second, 20*time.Millisecond, "refused twice, then delivered")
	stop()

	down := &refuser{arrival: &arrival{path: s.ctr.Path}, fails: -1}
	stop = startLogsReceiver(t, cfg, down)
	pid2 := s.kill(t)
	require.Eventually(t, func() bool {
		down.mu.Lock()
		defer down.mu.Unlock()
		return down.calls >= oompipeline.SendAttempts
	}, 10*time.Second, 20*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	stop()
	b, err := os.ReadFile(cfg.OOM.CheckpointFile)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"undelivered":[`, "the refused kill is not taken for delivered: %s", b)

	again := &arrival{path: s.ctr.Path}
	stop = startLogsReceiver(t, cfg, again)
	require.Eventually(t, func() bool { return again.count() >= 1 }, 10*time.Second, 20*time.Millisecond, "the refused kill was lost")
	time.Sleep(500 * time.Millisecond)
	require.Equal(t, 1, again.count())
	assert.Equal(t, int64(pid2), again.recs[0].Attributes().AsRaw()["process.pid"])
	assert.NotEqual(t, pid1, pid2)
	stop()

	last := &arrival{path: s.ctr.Path}
	startLogsReceiver(t, cfg, last)
	time.Sleep(time.Second)
	assert.Zero(t, last.count(), "delivered now: not repeated")
}

// The record keys the receiver's tests look for (oomrecord's table).
const (
	historyKey = oomrecord.HistoryKey
	countedKey = oomrecord.CountedKillsKey
)
