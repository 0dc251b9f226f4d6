// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oompipeline

import (
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"

	"github.com/oomsight/oomsight/internal/oomreport"
)

// reportSource is a KillSource that lists the victims of the reports
// handed to Reported (those of the cgroup at path only: kills of other
// test packages go through the same kernel log).
type reportSource struct {
	noSampler
	path string
	mu   sync.Mutex
	pids []int
}

func (r *reportSource) Reported(rep *oomreport.Report) {
	if rep.TaskMemcg != r.path {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pids = append(r.pids, rep.PID)
}

func (r *reportSource) got() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.pids)
}

// TestReportedOnceAcrossRestart: each kill's report reaches the metrics
// (KillSource.Reported) once across a checkpointed restart: a kill
// delivered before the restart is not handed on again, a kill made while
// the receiver was stopped is (from the backlog after the checkpoint), and
// a first start, without a position to resume from, hands on no backlog
// report (the ring may hold kills of long ago) while still emitting their
// records.
func TestReportedOnceAcrossRestart(t *testing.T) {
	s := newScene(t)
	_, set, tb := telemetryForTest(t)
	run := func(checkpointFile string) (*Pipeline, *sink, *reportSource) {
		out := &sink{path: s.ctr.Path}
		src := &reportSource{path: s.ctr.Path}
		o := options(out, tb)
		o.CheckpointFile = checkpointFile
		o.Sampler = src
		p := New(set, o)
		require.NoError(t, p.Start(componenttest.NewNopHost()))
		return p, out, src
	}
	checkpointFile := filepath.Join(t.TempDir(), "oom.checkpoint")

	p, out, src := run(checkpointFile)
	live := s.kill(t)
	require.Eventually(t, func() bool { return out.count() == 1 }, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, p.Shutdown(t.Context()))
	assert.Equal(t, []int{live}, src.got(), "a live kill")

	stopped := s.kill(t) // while stopped

	p, out, src = run(checkpointFile)
	require.Eventually(t, func() bool { return out.count() == 1 }, 10*time.Second, 20*time.Millisecond)
	time.Sleep(200 * time.Millisecond) // a repeat would come now
	require.NoError(t, p.Shutdown(t.Context()))
	assert.Equal(t, []int{stopped}, src.got(), "the kill made while stopped, and not the one delivered before")

	p, out, src = run(filepath.Join(t.TempDir(), "new.checkpoint"))
	require.Eventually(t, func() bool { return out.count() == 2 }, 10*time.Second, 20*time.Millisecond, "the ring's kills become records")
	require.NoError(t, p.Shutdown(t.Context()))
	assert.Empty(t, src.got(), "no metrics from a backlog without a position to resume from")
}
