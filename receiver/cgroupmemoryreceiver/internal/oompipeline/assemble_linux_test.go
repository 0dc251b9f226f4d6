// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oompipeline

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oomsight/oomsight/internal/kmsg"
	"github.com/oomsight/oomsight/internal/sampler"
)

// The memory.oom.group kill captured in the cgroup v2 VM: its kmsg records
// and the cgroup tree at that moment (memory.oom.group=1 on the container).
const (
	groupFixture  = "../../../../testdata/v2/oom/oom-group"
	groupPod      = "/kubepods/burstable/pod41372d87-a599-4a2c-aa9c-ab180ac97655"
	groupCtr      = groupPod + "/007f2e65cd4e232d305c7125e968e44b06f991adc4386b602be75685ea545daa"
	groupFirstPID = 1680
)

func TestOOMGroupSet(t *testing.T) {
	dir := filepath.Join(groupFixture, "cgroupfs")
	for name, c := range map[string]struct {
		task, memcg string
		want        bool
	}{
		"the container has it":           {groupCtr, groupCtr, true},
		"a pod-level OOM of a container": {groupCtr, groupPod, true},
		"system-wide OOM":                {groupCtr, "", true},
		"the pod has it not":             {groupPod, groupPod, false},
		"below the OOM's memcg only":     {groupPod + "/other", groupPod, false},
		"no task memcg (rate-limited)":   {"", "", true},
		"not a path":                     {"kubepods", "", false},
		"a cgroup that is gone":          {"/gone/away", "", false},
	} {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, c.want, sampler.OOMGroupSet(dir, c.task, c.memcg))
		})
	}
}

// TestGroupLineLate: the kernel's memory.oom.group line arriving 30 ms
// after the first victim's kill line (a loaded node) still marks that
// victim's record as part of the group kill, because the victim's cgroup
// has memory.oom.group set; without that knowledge the record goes out
// after flushAfter without it (the control).
//
// Rate-limited: the kernel prints the header and the oom-kill summary of
// at most 10 reports in 5 s (oom_rs in mm/oom_kill.c); past that only the
// kill lines, the group line and the members' kill lines, so the first
// victim's cgroup is unknown when its kill line is read. The same capture
// from its first kill line on is that case: the record still waits for
// the group line (seen on the v2 node of make e2e-k8s, where a group
// member's record went out without linux.oom.group_kill).
func TestGroupLineLate(t *testing.T) {
	all := readKmsgFixture(t, groupFixture+".kmsg")
	first := slices.IndexFunc(all, func(r kmsg.Record) bool { return strings.Contains(r.Message, ": Killed process ") })
	require.Positive(t, first)
	for name, c := range map[string]struct {
		recs      []kmsg.Record
		withGroup bool
	}{
		"memory.oom.group read":              {all, true},
		"control":                            {all, false},
		"rate-limited: cgroup unknown, wait": {all[first:], true},
		"rate-limited: control":              {all[first:], false},
	} {
		recs, withGroup := c.recs, c.withGroup
		t.Run(name, func(t *testing.T) {
			_, set, tb := telemetryForTest(t)
			// Every record: a rate-limited one released before the group
			// line has no cgroup at all.
			out := &sink{all: true}
			o := options(out, tb)
			if withGroup {
				o.Sampler = groupFixtureSampler{dir: filepath.Join(groupFixture, "cgroupfs")}
			}
			p := New(set, o)
			runStages(t, p, 16, recs, func(r kmsg.Record) {
				if strings.HasPrefix(r.Message, "Tasks in ") {
					time.Sleep(30 * time.Millisecond)
				}
			})

			var first map[string]any
			for _, lr := range out.recs {
				if a := lr.Attributes().AsRaw(); a["process.pid"] == int64(groupFirstPID) {
					first = a
				}
			}
			require.NotNil(t, first, "no record for the first victim")
			assert.Equal(t, withGroup, first["linux.oom.group_kill"])
			if withGroup {
				assert.Equal(t, groupCtr, first["linux.oom.task_memcg"], "the victim's cgroup: the group's")
			}
		})
	}
}

// groupFixtureSampler knows the memory.oom.group files of a captured v2
// hierarchy, and nothing else.
type groupFixtureSampler struct {
	noSampler
	dir string
}

func (g groupFixtureSampler) OOMGroup(task, memcg string) bool {
	return sampler.OOMGroupSet(g.dir, task, memcg)
}

func readKmsgFixture(t *testing.T, file string) []kmsg.Record {
	t.Helper()
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	var recs []kmsg.Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		r, err := kmsg.ParseRecord(sc.Bytes())
		require.NoError(t, err)
		recs = append(recs, r)
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, recs)
	return recs
}
