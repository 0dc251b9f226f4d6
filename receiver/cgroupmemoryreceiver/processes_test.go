// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgroupmemoryreceiver

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/metadata"
)

// subtreeSink keeps the log records whose resource is a cgroup below
// prefix, with their resources.
type subtreeSink struct {
	prefix string
	mu     sync.Mutex
	recs   []plog.LogRecord
	res    []map[string]any
}

func (*subtreeSink) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (s *subtreeSink) ConsumeLogs(_ context.Context, ld plog.Logs) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		rl := ld.ResourceLogs().At(i)
		if p, ok := rl.Resource().Attributes().Get("cgroup.path"); !ok || !strings.HasPrefix(p.Str(), s.prefix) {
			continue
		}
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			lrs := rl.ScopeLogs().At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := plog.NewLogRecord()
				lrs.At(k).CopyTo(lr)
				s.recs = append(s.recs, lr)
				s.res = append(s.res, rl.Resource().Attributes().AsRaw())
			}
		}
	}
	return nil
}

// events returns the records of one EventName, with their resources.
func (s *subtreeSink) events(name string) ([]plog.LogRecord, []map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var recs []plog.LogRecord
	var res []map[string]any
	for i, lr := range s.recs {
		if lr.EventName() == name {
			recs = append(recs, lr)
			res = append(res, s.res[i])
		}
	}
	return recs, res
}

// startFullReceiver starts one receiver instance in a metrics and a logs
// pipeline (the sampler tells the limit zone; the records carry the
// snapshots).
func startFullReceiver(t *testing.T, cfg *Config, logs consumer.Logs) *cgroupReceiver {
	t.Helper()
	f := NewFactory()
	set := receivertest.NewNopSettings(metadata.Type)
	mr, err := f.CreateMetrics(t.Context(), set, cfg, new(consumertest.MetricsSink))
	require.NoError(t, err)
	lr, err := f.CreateLogs(t.Context(), set, cfg, logs)
	require.NoError(t, err)
	require.NoError(t, mr.Start(t.Context(), componenttest.NewNopHost()))
	require.NoError(t, lr.Start(t.Context(), componenttest.NewNopHost()))
	t.Cleanup(func() {
		require.NoError(t, lr.Shutdown(context.WithoutCancel(t.Context())))
		require.NoError(t, mr.Shutdown(context.WithoutCancel(t.Context())))
	})
	return lr.(*cgroupReceiver)
}

// processScene is a kubepods-shaped pod with a 100 MiB limit and one
// container in it: the pod's limit is the one hit, as on the Kubernetes
// cluster this project was tried on.
func processScene(t *testing.T) (pod, ctr *cgrouptest.Cgroup, memhog string) {
	env := cgrouptest.Require(t)
	base := fmt.Sprintf("oomsight-procs-%d-%s/kubepods/burstable/pod%s", os.Getpid(), t.Name(), testPodUID)
	pod = env.NewCgroup(t, base)
	pod.SetLimit(t, 100<<20)
	ctr = env.NewCgroup(t, base+"/"+testContainerID)
	return pod, ctr, cgrouptest.BuildMemhog(t)
}

func processConfig(pod *cgrouptest.Cgroup) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.Include = []string{pod.Path, pod.Path + "/**"}
	cfg.CollectionInterval = time.Second
	cfg.SamplingInterval = 100 * time.Millisecond
	cfg.Events.LinuxMemoryNearLimit.Enabled = true
	return cfg
}

// TestOOMRecordNamesTheWorker: two workers of the same executable (the
// kernel names both "memhog") with different command lines in one
// container; the one that grows is killed at the pod's limit, and its
// record names it by its command line (the other's credentials redacted),
// from the snapshot taken when the pod entered its limit zone. No
// near-limit record follows: the episode ended in a kill.
func TestOOMRecordNamesTheWorker(t *testing.T) {
	pod, ctr, memhog := processScene(t)
	sink := &subtreeSink{prefix: pod.Path}
	r := startFullReceiver(t, processConfig(pod), sink)
	require.NotNil(t, r.snaps, "snapshots are on by default")

	quiet := ctr.Start(t, memhog, "--worker=report-builder", "--queue=nightly", "--db-password=hunter2")
	grower := ctr.Start(t, memhog, "--worker=thumbnailer", "--queue=images")
	quiet.MustDo(t, "anon 8")
	grower.MustDo(t, "anon 84") // about 93 MiB in the pod: above 90 % of its limit
	time.Sleep(1500 * time.Millisecond)
	cgrouptest.PaceOOM(t)
	_, err := grower.Do("anon 40", 30*time.Second)
	require.Error(t, err, "the growing worker must be OOM-killed")
	_, err = grower.Wait(10 * time.Second)
	require.NoError(t, err)

	var recs []plog.LogRecord
	require.Eventually(t, func() bool {
		recs, _ = sink.events("linux.oom_kill")
		return len(recs) >= 1
	}, 10*time.Second, 20*time.Millisecond)
	require.Len(t, recs, 1)
	lr := recs[0]
	a := lr.Attributes().AsRaw()
	wantCmd := memhog + " --worker=thumbnailer --queue=images"
	assert.Equal(t, int64(grower.Pid), a["process.pid"])
	assert.Equal(t, "memhog", a["process.executable.name"], "the kernel's name does not tell the workers apart")
	assert.Equal(t, wantCmd, a["linux.oom.victim.cmdline"])
	assert.Contains(t, lr.Body().Str(), `Its command line was "`+wantCmd+`" (process snapshot `)
	assert.Equal(t, pod.Path, a["linux.oom.processes.cgroup"])
	procs, ok := a["linux.oom.processes"].([]any)
	require.True(t, ok, "linux.oom.processes: %v", a["linux.oom.processes"])
	byPID := map[int64]map[string]any{}
	for _, p := range procs {
		m := p.(map[string]any)
		byPID[m["pid"].(int64)] = m
	}
	require.Contains(t, byPID, int64(grower.Pid))
	require.Contains(t, byPID, int64(quiet.Pid))
	assert.Equal(t, memhog+" --worker=report-builder --queue=nightly --db-password=***", byPID[int64(quiet.Pid)]["cmdline"])
	assert.Equal(t, "memhog", byPID[int64(quiet.Pid)]["name"])
	assert.GreaterOrEqual(t, byPID[int64(grower.Pid)]["rss_anon"], int64(80<<20))
	assert.Equal(t, int64(grower.Pid), procs[0].(map[string]any)["pid"], "largest first")
	snapAt := time.UnixMilli(a["linux.oom.processes.time"].(int64))
	assert.False(t, snapAt.After(lr.Timestamp().AsTime()), "taken before the kill")
	assert.Less(t, lr.Timestamp().AsTime().Sub(snapAt), 2*time.Second, "at most one a second, the newest before the kill")
	b, err := json.Marshal(map[string]any{"body": lr.Body().Str(), "attributes": a})
	require.NoError(t, err)
	assert.NotContains(t, string(b), "hunter2")
	t.Logf("record: %s", b)

	time.Sleep(11 * time.Second) // procsnap.Quiet and a sweep
	near, _ := sink.events("linux.memory.near_limit")
	assert.Empty(t, near, "the episode ended in a kill: no near miss")
}

// TestNearLimitRecord: a cgroup that enters its limit zone and leaves it
// without a kill becomes one near-limit record, once it has been quiet for
// procsnap.Quiet, with its processes.
func TestNearLimitRecord(t *testing.T) {
	pod, ctr, memhog := processScene(t)
	sink := &subtreeSink{prefix: pod.Path}
	startFullReceiver(t, processConfig(pod), sink)

	w := ctr.Start(t, memhog, "--job=nightly-export", "--token", "tok-0123456789")
	w.MustDo(t, "anon 92") // above 90 % of the pod's limit
	time.Sleep(1500 * time.Millisecond)
	w.MustDo(t, "free")

	var recs []plog.LogRecord
	var res []map[string]any
	require.Eventually(t, func() bool {
		recs, res = sink.events("linux.memory.near_limit")
		return len(recs) >= 1
	}, 20*time.Second, 100*time.Millisecond)
	time.Sleep(1500 * time.Millisecond)
	recs, res = sink.events("linux.memory.near_limit")
	require.Len(t, recs, 1, "one record per episode")
	lr := recs[0]
	assert.Equal(t, plog.SeverityNumberWarn, lr.SeverityNumber())
	assert.Equal(t, pod.Path, res[0]["cgroup.path"])
	assert.Equal(t, testPodUID, res[0]["k8s.pod.uid"])
	a := lr.Attributes().AsRaw()
	assert.Equal(t, int64(100<<20), a["linux.memory.near_limit.limit"])
	assert.GreaterOrEqual(t, a["linux.memory.near_limit.usage"], int64(90<<20))
	wantCmd := memhog + " --job=nightly-export --token ***"
	assert.Contains(t, lr.Body().Str(), "Near miss: pod 0f5eb28f reached 9")
	assert.Contains(t, lr.Body().Str(), fmt.Sprintf(`pid %d %q`, w.Pid, wantCmd))
	procs := a["linux.oom.processes"].([]any)
	require.NotEmpty(t, procs)
	assert.Equal(t, wantCmd, procs[0].(map[string]any)["cmdline"])
	kills, _ := sink.events("linux.oom_kill")
	assert.Empty(t, kills)
	t.Logf("near-limit record: %s", lr.Body().Str())
}

// TestSnapshotsOffOutsideHostPIDNamespace: a collector that does not share
// the host's pid namespace (a procfs whose self/ns/pid is another
// namespace's, as in a container without hostPID) takes no snapshot, says
// why and how to fix it once, counts each snapshot it skips, and still
// emits the OOM record, without a process list.
func TestSnapshotsOffOutsideHostPIDNamespace(t *testing.T) {
	pod, ctr, memhog := processScene(t)
	proc := t.TempDir()
	require.NoError(t, os.MkdirAll(proc+"/self/ns", 0o755))
	require.NoError(t, os.Symlink("pid:[4026532123]", proc+"/self/ns/pid"))

	tel, set, _ := telemetryForTest(t)
	core, logs := observer.New(zap.WarnLevel)
	set.Logger = zap.New(core)
	sink := &subtreeSink{prefix: pod.Path}
	f := NewFactory()
	cfg := processConfig(pod)
	mr, err := f.CreateMetrics(t.Context(), set, cfg, new(consumertest.MetricsSink))
	require.NoError(t, err)
	lr, err := f.CreateLogs(t.Context(), set, cfg, sink)
	require.NoError(t, err)
	lr.(*cgroupReceiver).proc = proc
	require.NoError(t, mr.Start(t.Context(), componenttest.NewNopHost()))
	require.NoError(t, lr.Start(t.Context(), componenttest.NewNopHost()))
	t.Cleanup(func() {
		require.NoError(t, lr.Shutdown(context.WithoutCancel(t.Context())))
		require.NoError(t, mr.Shutdown(context.WithoutCancel(t.Context())))
	})
	warn := logs.FilterMessageSnippet("process snapshots are off: the collector does not share the host's pid namespace")
	require.Equal(t, 1, warn.Len(), "logged once, at start")
	assert.Contains(t, warn.All()[0].Message, "hostPID: true")

	w := ctr.Start(t, memhog, "--job=a")
	w.MustDo(t, "anon 92")
	require.Eventually(t, func() bool {
		m, getErr := tel.GetMetric("otelcol_cgroupmemory_process_snapshots_skipped")
		return getErr == nil && m.Data != nil
	}, 10*time.Second, 50*time.Millisecond, "skipped snapshots are counted")
	cgrouptest.PaceOOM(t)
	_, err = w.Do("anon 40", 30*time.Second)
	require.Error(t, err)
	var recs []plog.LogRecord
	require.Eventually(t, func() bool {
		recs, _ = sink.events("linux.oom_kill")
		return len(recs) == 1
	}, 10*time.Second, 20*time.Millisecond)
	a := recs[0].Attributes().AsRaw()
	assert.Equal(t, int64(w.Pid), a["process.pid"])
	assert.NotContains(t, a, "linux.oom.processes")
	assert.NotContains(t, a, "linux.oom.victim.cmdline")
	_, err = tel.GetMetric("otelcol_cgroupmemory_process_snapshots")
	assert.Error(t, err, "no snapshot taken")
}
