// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oompipeline

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
)

// TestOOMSlowConsumerNeverBlocksReading: with the consumer stuck, kills are
// still read and assembled; what does not fit the queue is dropped and
// counted instead of stalling the kernel log reader.
func TestOOMSlowConsumerNeverBlocksReading(t *testing.T) {
	s := newScene(t)
	tel, set, tb := telemetryForTest(t)

	gate := make(chan struct{})
	out := &sink{path: s.ctr.Path, gate: gate}
	p := New(set, options(out, tb))
	p.queueSize = 1
	require.NoError(t, p.Start(componenttest.NewNopHost()))

	for range 3 {
		s.kill(t)
	}
	// One record is stuck in the consumer, one waits in the queue, the
	// third cannot be queued.
	require.Eventually(t, func() bool {
		m, err := tel.GetMetric("otelcol_cgroupmemory_oom_records_dropped")
		return err == nil && m.Data != nil
	}, 10*time.Second, 20*time.Millisecond, "no drop counted while the consumer was stuck")
	// Reading went on all along: once the consumer moves again, a new kill
	// arrives. (Kills of other test packages running at the same time go
	// through this pipeline too, so the count of this test's records in
	// between is not fixed.)
	close(gate)
	pid := int64(s.kill(t))
	require.Eventually(t, func() bool { return slices.Contains(out.pids(), pid) },
		10*time.Second, 20*time.Millisecond, "no record of a kill after the consumer recovered")
	require.NoError(t, p.Shutdown(t.Context()))
}

// TestOOMCheckpointReplayLosesNone: kills made while the receiver is
// stopped are replayed from the ring on restart; a consumer slower than
// the queue holds the replay up instead of losing them (live, the same
// consumer would cost drops; see the test above).
func TestOOMCheckpointReplayLosesNone(t *testing.T) {
	s := newScene(t)
	_, set, tb := telemetryForTest(t)
	checkpointFile := filepath.Join(t.TempDir(), "oom.checkpoint")

	// A first run leaves a checkpoint at its one kill.
	first := &sink{path: s.ctr.Path}
	o := options(first, tb)
	o.CheckpointFile = checkpointFile
	p := New(set, o)
	require.NoError(t, p.Start(componenttest.NewNopHost()))
	s.kill(t)
	require.Eventually(t, func() bool { return first.count() == 1 }, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, p.Shutdown(t.Context()))

	var pids []int64
	for range 3 {
		pids = append(pids, int64(s.kill(t))) // while stopped
	}

	gate := make(chan struct{})
	out := &sink{path: s.ctr.Path, gate: gate}
	o.Next = out
	p = New(set, o)
	p.queueSize = 1
	require.NoError(t, p.Start(componenttest.NewNopHost()))
	time.Sleep(500 * time.Millisecond) // the replay runs into the stuck consumer
	close(gate)
	require.Eventually(t, func() bool { return out.count() == 3 }, 10*time.Second, 20*time.Millisecond, "kills made while stopped were lost")
	require.NoError(t, p.Shutdown(t.Context()))
	assert.Equal(t, pids, out.pids(), "every kill made while stopped, in order")
}

// TestOOMStandardReceiverTelemetry: OOM records count in the collector's
// standard receiver telemetry (receiverhelper's obsreport), accepted and
// refused, next to the receiver's own counters.
func TestOOMStandardReceiverTelemetry(t *testing.T) {
	s := newScene(t)
	tel, set, tb := telemetryForTest(t)
	out := &sink{path: s.ctr.Path}
	p := New(set, options(out, tb))
	require.NoError(t, p.Start(componenttest.NewNopHost()))
	t.Cleanup(func() { _ = p.Shutdown(context.WithoutCancel(t.Context())) })

	s.kill(t)
	require.Eventually(t, func() bool {
		m, err := tel.GetMetric("otelcol_receiver_accepted_log_records")
		return err == nil && m.Data != nil && out.count() >= 1
	}, 10*time.Second, 20*time.Millisecond, "no otelcol_receiver_accepted_log_records")
}
