// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oompipeline

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oomsight/oomsight/internal/oomreport"
	"github.com/oomsight/oomsight/internal/survival"
	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/metadata"
)

// verdictSource is a KillSource whose survival verdict is fixed; it
// counts the checks asked for and the survived kills counted.
type verdictSource struct {
	noSampler
	verdict  survival.Verdict
	mu       sync.Mutex
	checks   int
	survived map[string]int
}

func (v *verdictSource) Survival(<-chan struct{}, string, int) survival.Verdict {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.checks++
	return v.verdict
}

func (v *verdictSource) CountSurvived(path string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.survived[path]++
}

// TestSurvivalVerdictOnRecords: the pipeline's part, with the verdict
// given: which kills are checked at all, and what each verdict puts on
// the record and the counter.
func TestSurvivalVerdictOnRecords(t *testing.T) {
	const ctr = "/kubepods/burstable/pod" + testPodUID + "/" + testContainerID
	const podman = "/machine.slice/libpod-" + testContainerID + ".scope"
	for _, tc := range []struct {
		name      string
		path      string
		groupKill bool
		backlog   bool
		verdict   survival.Verdict
		// want: the attribute (nil: absent), the sentence, checks run, kills counted.
		want     any
		sentence string
		checks   int
		counted  int
	}{
		{"worker killed in a pod's container", ctr, false, false, survival.Survived, true, "so Kubernetes shows no OOMKilled and no restart.", 1, 1},
		{"worker killed in a podman container", podman, false, false, survival.Survived, true, "so its runtime reports no OOM kill and no restart.", 1, 1},
		{"main process killed", ctr, false, false, survival.Ended, false, "", 1, 0},
		{"unknown", ctr, false, false, survival.Unknown, nil, "", 1, 0},
		{"memory.oom.group kill: ended without looking", ctr, true, false, survival.Survived, false, "", 0, 0},
		{"replayed from the ring", ctr, false, true, survival.Survived, nil, "", 0, 0},
		{"not a container", "/system.slice/cron.service", false, false, survival.Survived, nil, "", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &verdictSource{verdict: tc.verdict, survived: map[string]int{}}
			_, set, tb := telemetryForTest(t)
			p := New(set, Options{Next: &sink{}, Telemetry: tb, Resource: metadata.DefaultResourceAttributesConfig(), Sampler: src})
			require.True(t, p.sampled, "a sampler, as with a metrics pipeline")
			p.stop = make(chan struct{})
			p.checkSlots = make(chan struct{}, maxChecks)
			r := &oomreport.Report{PID: 42, Comm: "worker", TaskMemcg: tc.path, GroupKill: tc.groupKill}
			item := queued{logs: buildOOMLogs(r, time.Now(), metadata.DefaultResourceAttributesConfig(), enrichment{}), path: tc.path, n: 1}
			item.verdict = p.survival(tc.path, r.PID, tc.groupKill, tc.backlog)
			p.complete(item)
			p.checks.Wait()

			lr := item.logs.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
			v, ok := lr.Attributes().Get("linux.oom.container.survived")
			if tc.want == nil {
				assert.False(t, ok, "attribute absent")
			} else {
				require.True(t, ok, "attribute present")
				assert.Equal(t, tc.want, v.Bool())
			}
			if tc.sentence != "" {
				assert.True(t, strings.HasSuffix(lr.Body().Str(), tc.sentence), lr.Body().Str())
			} else {
				assert.NotContains(t, lr.Body().Str(), "kept running")
			}
			assert.Equal(t, tc.checks, src.checks, "checks")
			assert.Equal(t, tc.counted, src.survived[tc.path], "survived kills counted")
		})
	}
}
