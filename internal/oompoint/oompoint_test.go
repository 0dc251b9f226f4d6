// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oompoint

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oomsight/oomsight/internal/cgroupfs"
	"github.com/oomsight/oomsight/internal/oomreport"
)

const kib = 1024

// reports reads a captured kernel log (testdata) into its reports.
func reports(t *testing.T, file string) []*oomreport.Report {
	t.Helper()
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	reps, err := oomreport.ReadAll(f)
	require.NoError(t, err)
	require.NotEmpty(t, reps, file)
	return reps
}

// fragment reads the public fragment under the header that starts with
// heading (testdata/oom/public-fragments.txt) into its reports.
func fragment(t *testing.T, heading string) []*oomreport.Report {
	t.Helper()
	b, err := os.ReadFile("../../testdata/oom/public-fragments.txt")
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(b), "## "+heading)
	require.True(t, ok, heading)
	_, rest, _ = strings.Cut(rest, "\n")
	lines, _, _ := strings.Cut(rest, "\n##")
	reps, err := oomreport.ReadAll(strings.NewReader(lines))
	require.NoError(t, err)
	return reps
}

// TestFromReport maps real captured reports (v1 on 6.18, v2 on 6.1, a
// public 4.14 fragment) onto the point of the limiting cgroup. The
// numbers expected are the fixtures' own lines (memory: usage …, the stat
// dump), converted to bytes; unreclaimable and working set are computed as
// the sampler computes them from memory.stat.
func TestFromReport(t *testing.T) {
	const v1Ctr = "/process_api/6de6decf731819356fa71d00e5f1e332/oomsight-oom-21963/kubepods/burstable/pod0f5eb28f-6722-4cf5-ab0f-b62748c018d4/0dc1822caf9e150de25daa1cf572418426ce6b72757b5efdff52acef348368a3"
	type fields map[cgroupfs.Field]uint64
	tests := []struct {
		name    string
		reps    func(t *testing.T) []*oomreport.Report
		v       cgroupfs.Version
		path    string
		want    fields
		absent  []cgroupfs.Field
		noPoint bool
	}{
		{
			name: "v1 container limit (6.18: v1 keys with total_*)",
			reps: func(t *testing.T) []*oomreport.Report {
				return reports(t, "../../testdata/oom/v1-container-limit.kmsg")
			},
			v: cgroupfs.V1, path: v1Ctr,
			want: fields{
				cgroupfs.Usage: 65536 * kib, cgroupfs.Limit: 65536 * kib, cgroupfs.Failcnt: 83,
				cgroupfs.Kernel: 300 * kib, cgroupfs.MemswUsage: 65536 * kib,
				cgroupfs.Anon: 66797568, cgroupfs.File: 4096, cgroupfs.ActiveFile: 0, cgroupfs.InactiveFile: 4096,
				cgroupfs.Shmem: 0, cgroupfs.Unreclaimable: 66797568, cgroupfs.WorkingSet: 65536*kib - 4096,
			},
			// The own keys (inactive_file 4096, shmem 0) are not v2's.
			absent: []cgroupfs.Field{cgroupfs.MemswLimit, cgroupfs.SwapLimit},
		},
		{
			name: "v1 tmpfs: shmem fills the limit",
			reps: func(t *testing.T) []*oomreport.Report { return reports(t, "../../testdata/oom/v1-tmpfs.kmsg") },
			v:    cgroupfs.V1,
			path: "/process_api/6de6decf731819356fa71d00e5f1e332/oomsight-oom-21963/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod81086c51_3ebe_49d5_aa50_6eba2897d8e3.slice/cri-containerd-efccb9b65594dc68f917d1ef88bf786291c03f4a088cc527d958d2f1687f4244.scope",
			want: fields{
				cgroupfs.Usage: 32768 * kib, cgroupfs.Limit: 32768 * kib, cgroupfs.Failcnt: 86, cgroupfs.Kernel: 252 * kib,
				cgroupfs.Anon: 1724416, cgroupfs.File: 31571968, cgroupfs.Shmem: 31571968, cgroupfs.InactiveFile: 0,
				cgroupfs.Unreclaimable: 1724416 + 31571968, cgroupfs.WorkingSet: 32768 * kib,
			},
		},
		{
			name:   "v1 pod limit: a stale dump (total_rss 0 at 48 MiB used) gives counters only",
			reps:   func(t *testing.T) []*oomreport.Report { return reports(t, "../../testdata/oom/v1-pod-limit.kmsg") },
			v:      cgroupfs.V1,
			path:   "/process_api/6de6decf731819356fa71d00e5f1e332/oomsight-oom-21963/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-poddfc377c9_c533_4d51_af9e_6e0e0b3db83b.slice",
			want:   fields{cgroupfs.Usage: 49152 * kib, cgroupfs.Limit: 49152 * kib, cgroupfs.Failcnt: 143, cgroupfs.Kernel: 288 * kib},
			absent: []cgroupfs.Field{cgroupfs.Anon, cgroupfs.File, cgroupfs.InactiveFile, cgroupfs.Unreclaimable, cgroupfs.WorkingSet},
		},
		{
			name: "v2 container limit (6.1: v2 keys in one record)",
			reps: func(t *testing.T) []*oomreport.Report {
				return reports(t, "../../testdata/v2/oom/container-limit.kmsg")
			},
			v:    cgroupfs.V2,
			path: "/kubepods/burstable/pod0f5eb28f-6722-4cf5-ab0f-b62748c018d4/0dc1822caf9e150de25daa1cf572418426ce6b72757b5efdff52acef348368a3",
			want: fields{
				cgroupfs.Usage: 65536 * kib, cgroupfs.Limit: 65536 * kib, cgroupfs.Swap: 0,
				cgroupfs.Anon: 62558208, cgroupfs.File: 4198400, cgroupfs.Kernel: 352256, cgroupfs.Shmem: 4198400,
				cgroupfs.ActiveFile: 0, cgroupfs.InactiveFile: 0, cgroupfs.Slab: 86000, cgroupfs.Sock: 0,
				// anon + shmem + slab_unreclaimable + kernel_stack + pagetables + percpu + sock
				cgroupfs.Unreclaimable: 62558208 + 4198400 + 39296 + 49152 + 192512,
				cgroupfs.WorkingSet:    65536 * kib,
			},
			// v2 prints its page counter's failcnt, not memory.events max.
			absent: []cgroupfs.Field{cgroupfs.Failcnt, cgroupfs.SwapLimit, cgroupfs.MemswUsage},
		},
		{
			name: "v2 pod limit: the pod's point, not the victim container's",
			reps: func(t *testing.T) []*oomreport.Report { return reports(t, "../../testdata/v2/oom/pod-limit.kmsg") },
			v:    cgroupfs.V2,
			path: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-poddfc377c9_c533_4d51_af9e_6e0e0b3db83b.slice",
			want: fields{
				cgroupfs.Usage: 49152 * kib, cgroupfs.Limit: 49152 * kib,
				cgroupfs.Anon: 45809664, cgroupfs.File: 4194304, cgroupfs.Kernel: 327680,
				cgroupfs.Unreclaimable: 45809664 + 4194304 + 39296 + 49152 + 159744 + 5256,
				cgroupfs.WorkingSet:    49152 * kib,
			},
		},
		{
			name:    "v2 global OOM: no cgroup's counters",
			reps:    func(t *testing.T) []*oomreport.Report { return reports(t, "../../testdata/v2/oom/global.kmsg") },
			v:       cgroupfs.V2,
			noPoint: true,
		},
	}
	now := time.Unix(1700000000, 0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reps := tt.reps(t)
			r := reps[0]
			p, ok := FromReport(r, tt.v, now)
			if tt.noPoint {
				assert.False(t, ok)
				return
			}
			require.True(t, ok)
			assert.Equal(t, tt.path, p.Path)
			if strings.Contains(tt.name, "pod limit") {
				assert.NotEqual(t, r.TaskMemcg, p.Path, "the victim's cgroup is below the limiting one")
			}
			at := r.Time
			if at.IsZero() { // raw kmsg: monotonic time only
				at = now
			}
			assert.Equal(t, at, p.Sample.Time, "the kill's time")
			assert.Equal(t, uint64(*r.MemcgUsage), p.Peak, "the peak is the usage at the kill")
			for f, want := range tt.want {
				got, ok := p.Sample.Get(f)
				if assert.True(t, ok, "%s present", f) {
					assert.Equal(t, want, got, "%s", f)
				}
			}
			for _, f := range tt.absent {
				_, ok := p.Sample.Get(f)
				assert.False(t, ok, "%s absent", f)
			}
		})
	}
}

// TestGroupKillOneKey: the members of a memory.oom.group kill share one
// report of the limit, so they share one Key (one closing point).
func TestGroupKillOneKey(t *testing.T) {
	reps := reports(t, "../../testdata/v2/oom/oom-group.kmsg")
	require.Greater(t, len(reps), 1)
	first, ok := FromReport(reps[0], cgroupfs.V2, time.Now())
	require.True(t, ok)
	for _, r := range reps[1:] {
		p, ok := FromReport(r, cgroupfs.V2, time.Now())
		if ok {
			assert.Equal(t, first.Key, p.Key)
			assert.Equal(t, first.Path, p.Path)
		}
	}
}

// TestOldDumpNoStat: the one-line dump of 4.x kernels ("cache:0KB
// rss:0KB …") holds the limiting cgroup's own pages, not its subtree's:
// no stat field comes from it.
func TestOldDumpNoStat(t *testing.T) {
	reps := fragment(t, "Linux 4.14 (TKE)")
	if len(reps) == 0 {
		// The fragment ends before the kill line: map its dump alone.
		var s cgroupfs.Sample
		s.SetStatDump(map[string]int64{"cache": 0, "rss": 0, "inactive_file": 0, "shmem": 0})
		for _, f := range cgroupfs.Fields() {
			_, ok := s.Get(f)
			assert.False(t, ok, "%s", f)
		}
		return
	}
	p, ok := FromReport(reps[0], cgroupfs.V1, time.Now())
	require.True(t, ok)
	_, has := p.Sample.Get(cgroupfs.Anon)
	assert.False(t, has)
	v, _ := p.Sample.Get(cgroupfs.Usage)
	assert.Equal(t, uint64(122880*kib), v)
}
