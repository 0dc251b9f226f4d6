// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oomreport

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const kB = 1024

// Paths as the kernel printed them in the captures.
const (
	v2CtrFS  = "/kubepods/burstable/pod0f5eb28f-6722-4cf5-ab0f-b62748c018d4/0dc1822caf9e150de25daa1cf572418426ce6b72757b5efdff52acef348368a3"
	v2PodSD  = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-poddfc377c9_c533_4d51_af9e_6e0e0b3db83b.slice"
	v2CtrSD  = v2PodSD + "/cri-containerd-2260b35b008a15bd118e629c0c5d74e7f3a1fe18c724fbac61a54862fea196dc.scope"
	v2Group  = "/kubepods/burstable/pod41372d87-a599-4a2c-aa9c-ab180ac97655/007f2e65cd4e232d305c7125e968e44b06f991adc4386b602be75685ea545daa"
	v2GroupT = "/kubepods/burstable/pod6f1d2c3b-8e4a-4b7c-9d2e-5a6b7c8d9e0f/3c9e1f0a7b2d4e6f8a1c3e5b7d9f0a2c4e6b8d0f1a3c5e7b9d2f4a6c8e0b1d3f"
	v2TV     = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod438a990c_8651_48e4_a396_fe569600296a.slice/cri-containerd-a6857f0fde937a9ceef3ff4064da90d55637ca6af94cbc2ab842cdaf4ea95f0b.scope"
	v2Tmpfs  = "/kubepods/burstable/pod81086c51-3ebe-49d5-aa50-6eba2897d8e3/efccb9b65594dc68f917d1ef88bf786291c03f4a088cc527d958d2f1687f4244"
	v2Global = "/kubepods/besteffort/pod1e5a2372-c249-42ab-bd18-38bff4980869/76f8ab53bb1b41f2e8288fc05ba1573e5772343e25faa64808edf287d6e1752a"

	v1Base  = "/process_api/6de6decf731819356fa71d00e5f1e332/oomsight-oom-21963"
	v1CtrFS = v1Base + "/kubepods/burstable/pod0f5eb28f-6722-4cf5-ab0f-b62748c018d4/0dc1822caf9e150de25daa1cf572418426ce6b72757b5efdff52acef348368a3"
	v1PodSD = v1Base + "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-poddfc377c9_c533_4d51_af9e_6e0e0b3db83b.slice"
	v1CtrSD = v1PodSD + "/cri-containerd-2260b35b008a15bd118e629c0c5d74e7f3a1fe18c724fbac61a54862fea196dc.scope"
	v1TV    = v1Base + "/kubepods/besteffort/pod438a990c-8651-48e4-a396-fe569600296a/a6857f0fde937a9ceef3ff4064da90d55637ca6af94cbc2ab842cdaf4ea95f0b"
	v1Tmpfs = v1Base + "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod81086c51_3ebe_49d5_aa50_6eba2897d8e3.slice/cri-containerd-efccb9b65594dc68f917d1ef88bf786291c03f4a088cc527d958d2f1687f4244.scope"
)

// want is what a capture's report must say, read off the raw records.
type want struct {
	pid                               int
	comm                              string
	constraint                        string
	global                            bool
	memcg, taskMemcg                  string
	trigName                          string
	trigPID                           int64
	gfp                               string
	totalVM, anon, file, shmem, pgtbl int64 // bytes
	adj                               int64
	usage, limit, failcnt             int64 // 0: no memcg counters (global)
	stat                              map[string]int64
	tasks                             int
	group                             bool
	cause                             string
	seq                               uint64 // raw kmsg form only
}

const gfpKernel = "0xcc0(GFP_KERNEL)"

var captures = []struct {
	name  string
	files []string // forms of the same scenario; the first is raw kmsg
	want  []want
}{
	{"v2 container-limit", forms("../../testdata/v2/oom/container-limit", true), []want{{
		pid: 1143, comm: "memhog", constraint: "CONSTRAINT_MEMCG", memcg: v2CtrFS, taskMemcg: v2CtrFS,
		trigName: "memhog", trigPID: 1143, gfp: gfpKernel,
		totalVM: 1288364 * kB, anon: 60888 * kB, file: 4 * kB, shmem: 844 * kB, pgtbl: 200 * kB,
		usage: 65536 * kB, limit: 65536 * kB, failcnt: 3271,
		stat:  map[string]int64{"anon": 62558208, "file": 4198400, "shmem": 4198400, "kernel": 352256},
		tasks: 1, cause: CauseAnon, seq: 399,
	}}},
	{"v2 pod-limit", forms("../../testdata/v2/oom/pod-limit", true), []want{{
		pid: 1392, comm: "memhog", constraint: "CONSTRAINT_MEMCG", memcg: v2PodSD, taskMemcg: v2CtrSD,
		trigName: "memhog", trigPID: 1392, gfp: gfpKernel,
		totalVM: 1271980 * kB, anon: 44524 * kB, file: 4 * kB, shmem: 840 * kB, pgtbl: 172 * kB,
		usage: 49152 * kB, limit: 49152 * kB, failcnt: 3207,
		stat:  map[string]int64{"anon": 45809664, "shmem": 4194304, "percpu": 5256},
		tasks: 1, cause: CauseAnon, seq: 437,
	}}},
	{"v2 oom-group", forms("../../testdata/v2/oom/oom-group", true), groupWants()},
	{"v2 oom-group-thread", forms("../../testdata/v2/oom/oom-group-thread", true), groupThreadWants()},
	{"v2 trigger-victim", forms("../../testdata/v2/oom/trigger-victim", true), []want{{
		pid: 1964, comm: "dd", constraint: "CONSTRAINT_MEMCG", memcg: v2TV, taskMemcg: v2TV,
		trigName: "spiker", trigPID: 1970, gfp: gfpKernel,
		totalVM: 53460 * kB, anon: 51176 * kB, file: 0, shmem: 976 * kB, pgtbl: 140 * kB,
		usage: 65536 * kB, limit: 65536 * kB, failcnt: 47,
		stat:  map[string]int64{"anon": 66514944, "file": 0, "kernel": 593920},
		tasks: 4, cause: CauseAnon, seq: 522,
	}}},
	{"v2 tmpfs", forms("../../testdata/v2/oom/tmpfs", true), []want{{
		pid: 2251, comm: "dd", constraint: "CONSTRAINT_MEMCG", memcg: v2Tmpfs, taskMemcg: v2Tmpfs,
		trigName: "dd", trigPID: 2251, gfp: gfpKernel,
		totalVM: 3284 * kB, anon: 928 * kB, file: 4 * kB, shmem: 1588 * kB, pgtbl: 44 * kB,
		usage: 32768 * kB, limit: 32768 * kB, failcnt: 19,
		stat:  map[string]int64{"anon": 1048576, "file": 32411648, "shmem": 32411648},
		tasks: 1, cause: CauseShmem, seq: 581,
	}}},
	{"v2 global", forms("../../testdata/v2/oom/global", true), []want{{
		pid: 2530, comm: "memhog", constraint: "CONSTRAINT_NONE", global: true, taskMemcg: v2Global,
		trigName: "memhog", trigPID: 2530, gfp: "0x140dca(GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_ZERO)",
		totalVM: 1640620 * kB, anon: 413048 * kB, file: 4 * kB, shmem: 856 * kB, pgtbl: 892 * kB, adj: 1000,
		tasks: 2, cause: CauseAnon, seq: 635,
	}}},
	{"v1 container-limit", forms("../../testdata/oom/v1-container-limit", false), []want{{
		pid: 22022, comm: "memhog", constraint: "CONSTRAINT_MEMCG", memcg: v1CtrFS, taskMemcg: v1CtrFS,
		trigName: "memhog", trigPID: 22025, gfp: gfpKernel, // a thread of the victim
		totalVM: 1329576 * kB, anon: 65152 * kB, file: 1536 * kB, shmem: 0, pgtbl: 208 * kB,
		usage: 65536 * kB, limit: 65536 * kB, failcnt: 83,
		stat:  map[string]int64{"rss": 66797568, "total_rss": 66797568, "total_cache": 4096, "hierarchical_memory_limit": 67108864},
		tasks: 1, cause: CauseAnon, seq: 983,
	}}},
	{"v1 pod-limit", forms("../../testdata/oom/v1-pod-limit", false), []want{{
		pid: 22056, comm: "memhog", constraint: "CONSTRAINT_MEMCG", memcg: v1PodSD, taskMemcg: v1CtrSD,
		trigName: "memhog", trigPID: 22056, gfp: gfpKernel,
		totalVM: 1329320 * kB, anon: 48768 * kB, file: 1536 * kB, shmem: 0, pgtbl: 184 * kB,
		usage: 49152 * kB, limit: 49152 * kB, failcnt: 143,
		// 6.18 printed the pod's v1 stats as all zeros: the cause comes
		// from the victim.
		stat:  map[string]int64{"rss": 0, "total_rss": 0, "hierarchical_memory_limit": 50331648},
		tasks: 1, cause: CauseAnon, seq: 1064,
	}}},
	{"v1 trigger-victim", forms("../../testdata/oom/v1-trigger-victim", false), []want{{
		pid: 22074, comm: "memhog", constraint: "CONSTRAINT_MEMCG", memcg: v1TV, taskMemcg: v1TV,
		trigName: "memhog", trigPID: 22086, gfp: gfpKernel,
		totalVM: 1267880 * kB, anon: 41344 * kB, file: 1536 * kB, shmem: 0, pgtbl: 164 * kB,
		usage: 65536 * kB, limit: 65536 * kB, failcnt: 56,
		stat:  map[string]int64{"total_rss": 66617344, "total_cache": 0},
		tasks: 2, cause: CauseAnon, seq: 1146,
	}}},
	{"v1 tmpfs", forms("../../testdata/oom/v1-tmpfs", false), []want{{
		pid: 22112, comm: "memhog", constraint: "CONSTRAINT_MEMCG", memcg: v1Tmpfs, taskMemcg: v1Tmpfs,
		trigName: "memhog", trigPID: 22112, gfp: gfpKernel,
		totalVM: 1227176 * kB, anon: 1664 * kB, file: 1536 * kB, shmem: 0, pgtbl: 88 * kB,
		usage: 32768 * kB, limit: 32768 * kB, failcnt: 86,
		stat:  map[string]int64{"total_cache": 31571968, "total_shmem": 31571968, "total_rss": 1724416},
		tasks: 1, cause: CauseShmem, seq: 1263,
	}}},
}

// groupWants: the memory.oom.group kill reports memhog first, then the
// other members; the kernel's repeated kill line for memhog is dropped.
func groupWants() []want {
	common := want{
		constraint: "CONSTRAINT_MEMCG", memcg: v2Group, taskMemcg: v2Group,
		trigName: "memhog", trigPID: 1680, gfp: gfpKernel,
		usage: 65536 * kB, limit: 65536 * kB, failcnt: 32,
		stat:  map[string]int64{"anon": 66551808, "file": 4096},
		tasks: 3, group: true, cause: CauseAnon,
	}
	memhog, sleep, idle := common, common, common
	memhog.pid, memhog.comm, memhog.seq = 1680, "memhog", 477
	memhog.totalVM, memhog.anon, memhog.file, memhog.shmem, memhog.pgtbl = 1281196*kB, 54028*kB, 4*kB, 840*kB, 188*kB
	sleep.pid, sleep.comm, sleep.seq = 1673, "sleep", 479
	sleep.totalVM, sleep.anon, sleep.file, sleep.shmem, sleep.pgtbl = 2260*kB, 4*kB, 0, 0, 28*kB
	idle.pid, idle.comm, idle.seq = 1674, "idlehog", 480
	idle.totalVM, idle.anon, idle.file, idle.shmem, idle.pgtbl = 1237164*kB, 10736*kB, 4*kB, 836*kB, 104*kB
	return []want{memhog, sleep, idle}
}

// groupThreadWants: in this memory.oom.group kill the allocator's main
// thread exited before the group kill came round to it, so the kernel named
// threadhog a second time by its allocating thread's id (136, the trigger);
// that line is the victim again, not a third process.
func groupThreadWants() []want {
	common := want{
		constraint: "CONSTRAINT_MEMCG", memcg: v2GroupT, taskMemcg: v2GroupT,
		trigName: "threadhog", trigPID: 136, gfp: gfpKernel,
		usage: 65536 * kB, limit: 65536 * kB, failcnt: 27,
		stat:  map[string]int64{"anon": 66551808, "file": 4096},
		tasks: 2, group: true, cause: CauseAnon,
	}
	hog, idle := common, common
	hog.pid, hog.comm, hog.seq = 134, "threadhog", 395
	hog.totalVM, hog.anon, hog.file, hog.shmem, hog.pgtbl = 1281200*kB, 53848*kB, 4*kB, 1192*kB, 184*kB
	idle.pid, idle.comm, idle.seq = 128, "idlehog", 397
	idle.totalVM, idle.anon, idle.file, idle.shmem, idle.pgtbl = 1237168*kB, 10768*kB, 4*kB, 1620*kB, 100*kB
	return []want{hog, idle}
}

func forms(base string, busybox bool) []string {
	fs := []string{base + ".kmsg", base + ".dmesg"}
	if busybox {
		fs = append(fs, base+".busybox-dmesg")
	}
	return fs
}

func readFile(t *testing.T, path string) []*Report {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	reps, err := ReadAll(f)
	require.NoError(t, err)
	return reps
}

func TestCaptures(t *testing.T) {
	for _, c := range captures {
		t.Run(c.name, func(t *testing.T) {
			var first []*Report
			for i, file := range c.files {
				reps := readFile(t, file)
				require.Len(t, reps, len(c.want), file)
				for j, w := range c.want {
					checkReport(t, filepath.Base(file), reps[j], w, i == 0)
				}
				if i == 0 {
					first = reps
					continue
				}
				// Every form tells the same story, at the same kernel time.
				for j := range reps {
					assert.Equal(t, first[j].Monotonic, reps[j].Monotonic, file)
					assert.Equal(t, first[j].Tasks, reps[j].Tasks, file)
					assert.Equal(t, first[j].Body(), reps[j].Body(), file)
					for k, v := range reps[j].MemcgStat {
						assert.Equal(t, first[j].MemcgStat[k], v, "%s stat %s", file, k)
					}
					if filepath.Ext(file) == ".dmesg" {
						assert.Equal(t, first[j].MemcgStat, reps[j].MemcgStat, file)
					}
				}
			}
		})
	}
}

func checkReport(t *testing.T, file string, r *Report, w want, raw bool) {
	t.Helper()
	n := func(v *int64) any {
		if v == nil {
			return nil
		}
		return *v
	}
	orNil := func(v int64, present bool) any {
		if !present {
			return nil
		}
		return v
	}
	msg := file + " pid " + r.Comm
	assert.Equal(t, w.pid, r.PID, msg)
	assert.Equal(t, w.comm, r.Comm, msg)
	assert.Equal(t, int64(0), n(r.UID), msg)
	assert.Equal(t, w.constraint, r.Constraint, msg)
	assert.Equal(t, w.global, r.Global, msg)
	assert.Equal(t, w.memcg, r.Memcg, msg)
	assert.Equal(t, w.taskMemcg, r.TaskMemcg, msg)
	assert.Equal(t, w.trigName, r.TriggerName, msg)
	assert.Equal(t, w.trigPID, n(r.TriggerPID), msg)
	assert.Equal(t, w.gfp, r.GFPMask, msg)
	assert.Equal(t, int64(0), n(r.Order), msg)
	assert.Equal(t, w.totalVM, n(r.TotalVM), msg)
	assert.Equal(t, w.anon, n(r.AnonRSS), msg)
	assert.Equal(t, w.file, n(r.FileRSS), msg)
	assert.Equal(t, w.shmem, n(r.ShmemRSS), msg)
	assert.Equal(t, w.pgtbl, n(r.PgTables), msg)
	assert.Equal(t, w.adj, n(r.OOMScoreAdj), msg)
	assert.Equal(t, orNil(w.usage, w.usage != 0), n(r.MemcgUsage), msg)
	assert.Equal(t, orNil(w.limit, w.limit != 0), n(r.MemcgLimit), msg)
	assert.Equal(t, orNil(w.failcnt, w.usage != 0), n(r.MemcgFailcnt), msg)
	for k, v := range w.stat {
		assert.Equal(t, v, r.MemcgStat[k], "%s stat %s", msg, k)
	}
	if w.stat == nil {
		assert.Empty(t, r.MemcgStat, msg)
	}
	assert.Len(t, r.Tasks, w.tasks, msg)
	assert.Equal(t, w.group, r.GroupKill, msg)
	assert.Equal(t, w.cause, r.Cause, msg)
	if raw {
		assert.Equal(t, w.seq, *r.Seq, msg)
	} else {
		assert.Nil(t, r.Seq, msg)
	}
	require.NotNil(t, r.Monotonic, msg)
}

func TestBody(t *testing.T) {
	for _, tc := range []struct {
		file, want string
		n, i       int // reports in the file (0: 1) and the one checked
	}{
		{
			"../../testdata/v2/oom/container-limit.kmsg",
			"Process memhog (pid 1143) in container 0dc1822caf9e of pod 0f5eb28f was OOM-killed because its container's own 64 MiB memory limit was hit, filled mostly by 59.7 MiB of anonymous memory.", 0, 0,
		},
		{
			"../../testdata/v2/oom/pod-limit.kmsg",
			"Process memhog (pid 1392) in container 2260b35b008a of pod dfc377c9 was OOM-killed because its pod's 48 MiB memory limit was hit before the container's own (Kubernetes limits the pod to the sum of its containers' limits, and all the pod's memory counts there), filled mostly by 43.7 MiB of anonymous memory.", 0, 0,
		},
		{
			"../../testdata/v2/oom/trigger-victim.kmsg",
			"Process dd (pid 1964) in container a6857f0fde93 of pod 438a990c was OOM-killed because its container's own 64 MiB memory limit was hit, filled mostly by 63.4 MiB of anonymous memory; the allocation that hit the limit came from spiker (pid 1970).", 0, 0,
		},
		{
			"../../testdata/v2/oom/global.kmsg",
			"Process memhog (pid 2530) in container 76f8ab53bb1b of pod 1e5a2372 was OOM-killed because the machine ran out of memory (511.5 MiB of RAM, system-wide OOM); the victim held 403.4 MiB of anonymous memory.", 0, 0,
		},
		{
			"../../testdata/v2/oom/tmpfs.kmsg",
			"Process dd (pid 2251) in container efccb9b65594 of pod 81086c51 was OOM-killed because its container's own 32 MiB memory limit was hit, filled mostly by 30.9 MiB of shared memory (tmpfs, /dev/shm).", 0, 0,
		},
		{
			"../../testdata/oom/v1-pod-limit.kmsg",
			"Process memhog (pid 22056) in container 2260b35b008a of pod dfc377c9 was OOM-killed because its pod's 48 MiB memory limit was hit before the container's own (Kubernetes limits the pod to the sum of its containers' limits, and all the pod's memory counts there); the victim held 47.6 MiB of anonymous memory.", 0, 0,
		},
		{"../../testdata/oom/v1-container-limit.kmsg", // trigger is the victim's own thread
			"Process memhog (pid 22022) in container 0dc1822caf9e of pod 0f5eb28f was OOM-killed because its container's own 64 MiB memory limit was hit, filled mostly by 63.7 MiB of anonymous memory.", 0, 0},
		{"../../testdata/v2/oom/oom-group-thread.kmsg", // the trigger is thread 136 of threadhog, the first victim
			"Process idlehog (pid 128) in container 3c9e1f0a7b2d of pod 6f1d2c3b was OOM-killed with the rest of its cgroup (memory.oom.group) because its container's own 64 MiB memory limit was hit, filled mostly by 63.5 MiB of anonymous memory; the allocation that hit the limit came from threadhog (pid 134, thread 136).", 2, 1},
	} {
		reps := readFile(t, tc.file)
		require.Len(t, reps, max(tc.n, 1), tc.file)
		assert.Equal(t, tc.want, reps[tc.i].Body(), tc.file)
	}
}
