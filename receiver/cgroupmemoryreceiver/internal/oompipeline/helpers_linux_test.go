// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oompipeline

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/oomsight/oomsight/internal/kmsg"
	"github.com/oomsight/oomsight/internal/oomrecord"
	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/metadata"
)

const (
	testPodUID      = "0f5eb28f-6722-4cf5-ab0f-b62748c018d4"
	testContainerID = "0dc1822caf9e150de25daa1cf572418426ce6b72757b5efdff52acef348368a3"
)

// sink is a logs consumer that keeps the OOM records of one cgroup (other
// test packages' kills go through the same kernel log), and can be made to
// block.
type sink struct {
	path string
	all  bool // keep the records of every cgroup.path (or none), not only path's
	mu   sync.Mutex
	recs []plog.LogRecord
	gate chan struct{} // when set, ConsumeLogs waits on it
}

func (*sink) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (s *sink) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		if p, ok := rls.At(i).Resource().Attributes().Get("cgroup.path"); !s.all && (!ok || p.Str() != s.path) {
			continue
		}
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := plog.NewLogRecord()
				lrs.At(k).CopyTo(lr)
				s.recs = append(s.recs, lr)
			}
		}
	}
	return nil
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.recs)
}

// pids are the victims' pids of the records, in order.
func (s *sink) pids() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var pids []int64
	for _, lr := range s.recs {
		v, _ := lr.Attributes().Get("process.pid")
		pids = append(pids, v.Int())
	}
	return pids
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

// options are the receiver's default pipeline options (oom.kmsg_path
// /dev/kmsg) delivering to next, counted in tb.
func options(next consumer.Logs, tb *metadata.TelemetryBuilder) Options {
	return Options{
		KmsgPath:  "/dev/kmsg",
		MaxTasks:  oomrecord.DefaultMaxTasks,
		Next:      next,
		Telemetry: tb,
		Resource:  metadata.DefaultResourceAttributesConfig(),
	}
}

// scene is a kubepods-shaped cgroup pair below the test's own cgroup: a
// pod with a 64 MiB limit and an unlimited container in it, so that the
// pod's limit is the one hit.
type scene struct {
	env      cgrouptest.Env
	pod, ctr *cgrouptest.Cgroup
	memhog   string
}

func newScene(t *testing.T) *scene {
	env := cgrouptest.Require(t)
	base := fmt.Sprintf("oomsight-oompipeline-%d-%s/kubepods/burstable/pod%s", os.Getpid(), t.Name(), testPodUID)
	pod := env.NewCgroup(t, base)
	pod.SetLimit(t, 64<<20)
	ctr := env.NewCgroup(t, base+"/"+testContainerID)
	return &scene{env: env, pod: pod, ctr: ctr, memhog: cgrouptest.BuildMemhog(t)}
}

// kill runs memhog in the container until the kernel kills it at the
// pod's limit, and returns its pid.
func (s *scene) kill(t *testing.T) int {
	p := s.ctr.Start(t, s.memhog)
	p.MustDo(t, "anon 40")
	cgrouptest.PaceOOM(t)
	_, err := p.Do("anon 100", 30*time.Second)
	require.Error(t, err, "memhog must be OOM-killed")
	_, err = p.Wait(10 * time.Second)
	require.NoError(t, err)
	return p.Pid
}

// runStages runs p's assemble and send stages on recs instead of the
// kernel log (a queue of queue records), calling before (when not nil)
// ahead of each record, and shuts p down once all are assembled.
func runStages(tb testing.TB, p *Pipeline, queue int, recs []kmsg.Record, before func(kmsg.Record)) {
	tb.Helper()
	p.records = make(chan read, 1024)
	p.queue = make(chan queued, queue)
	p.stop = make(chan struct{})
	p.sender.Add(1)
	go p.send()
	p.producers.Add(1)
	go p.assemble()
	for _, r := range recs {
		if before != nil {
			before(r)
		}
		p.records <- read{Record: r}
	}
	close(p.records)
	require.NoError(tb, p.Shutdown(tb.Context()))
}
