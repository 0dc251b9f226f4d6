// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oompipeline

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/oomsight/oomsight/internal/discovery"
	"github.com/oomsight/oomsight/internal/kmsg"
	"github.com/oomsight/oomsight/internal/oomrecord"
	"github.com/oomsight/oomsight/internal/oomreport"
	"github.com/oomsight/oomsight/internal/sampler"
)

// TestRateLimitedKillLineIsAttributed: when the kernel rate-limits an OOM
// report down to its kill line, the line names no cgroup; the pipeline
// attributes it to the cgroup whose oom_kill counter rose at that moment
// and marks it inferred. The kill is real, and so is the kill line: the one
// the kernel printed for it, read from /dev/kmsg, fed alone to the
// assembler (the rest of the report is what rate-limiting drops).
func TestRateLimitedKillLineIsAttributed(t *testing.T) {
	s := newScene(t)
	if _, err := os.Stat("/dev/kmsg"); err != nil {
		t.Fatalf("/dev/kmsg: %v", err)
	}
	// The sampler of the pod and its container, as a metrics pipeline
	// starts it, after its first collection (the counters' starting
	// values); no collection runs after the kill: the counters are read at
	// the kill line.
	filter, err := discovery.NewFilter([]string{s.pod.Path, s.ctr.Path}, nil)
	require.NoError(t, err)
	smp := sampler.New(sampler.Options{Hierarchy: s.env.Hierarchy, Filter: filter, Events: true, Logger: zaptest.NewLogger(t)})
	_, err = smp.Start()
	require.NoError(t, err)
	t.Cleanup(smp.Close)
	_, err = smp.Collect(t.Context(), func(*sampler.Collected) {})
	require.NoError(t, err)

	kr, err := kmsg.Open("/dev/kmsg")
	require.NoError(t, err)
	defer kr.Close()
	require.NoError(t, kr.SeekEnd())
	pid := s.kill(t)
	var line kmsg.Record
	for {
		rec, err := kr.Next()
		if err != nil {
			continue
		}
		if strings.Contains(rec.Message, fmt.Sprintf("Killed process %d ", pid)) {
			line = rec
			break
		}
	}
	asm := oomreport.NewAssembler()
	reports := append(asm.Add(line), asm.Flush()...)
	require.Len(t, reports, 1)
	r := reports[0]
	require.Empty(t, r.TaskMemcg, "a kill line alone names no cgroup")

	_, set, tb := telemetryForTest(t)
	o := options(&sink{}, tb)
	o.Sampler = smp
	p := New(set, o)
	en := p.enrich(r, false)
	assert.True(t, en.inferred)
	assert.Equal(t, s.ctr.Path, r.TaskMemcg, "the victim's cgroup, from its counter")
	ld := buildOOMLogs(r, time.Now(), o.Resource, en)
	rl := ld.ResourceLogs().At(0)
	assert.Equal(t, s.ctr.Path, rl.Resource().Attributes().AsRaw()["cgroup.path"])
	lr := rl.ScopeLogs().At(0).LogRecords().At(0)
	assert.Equal(t, true, lr.Attributes().AsRaw()[oomrecord.TaskMemcgInferredKey])
	assert.Contains(t, lr.Body().Str(), "rate-limited to its kill line")

	// The same kill cannot be claimed twice.
	_, ok := smp.Infer(time.Now())
	assert.False(t, ok)
}
