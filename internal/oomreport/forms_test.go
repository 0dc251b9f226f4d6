// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oomreport

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oomsight/oomsight/internal/kmsg"
)

// The tests in this file hold one case per form the kernel or a log tool
// has printed, with the kernel versions taken from the kernel's source
// history (mm/oom_kill.c, mm/memcontrol.c, lib/dump_stack.c). The lines
// are written for the form; where a real line from a public report fits,
// it is that line (testdata/oom/public-fragments.txt).

// TestZonelessReport: a report read from dmesg -T carries its time as
// local with an unknown offset.
func TestZonelessReport(t *testing.T) {
	reps := readString(t, "[Thu Aug 17 17:29:27 2023] Out of memory: Killed process 1 (a)\n")
	require.Len(t, reps, 1)
	assert.True(t, reps[0].TimeZoneUnknown)
}

// TestPrefixDoesNotLeak: the trigger's name and the kill line's message
// come out clean behind dmesg -x, and an unknown prefix glued to the
// invoked line leaves the name to the stack dump's header line.
func TestPrefixDoesNotLeak(t *testing.T) {
	reps := readString(t, `kern  :warn  : [Thu Aug 17 17:29:27 2023] xray invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0
kern  :warn  : [Thu Aug 17 17:29:27 2023] CPU: 1 PID: 4243 Comm: xray Not tainted 5.10.184-175.731.amzn2.x86_64 #1
kern  :err   : [Thu Aug 17 17:29:27 2023] Memory cgroup out of memory: Killed process 4242 (java) total-vm:1000kB, anon-rss:800kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:40kB oom_score_adj:0
`)
	require.Len(t, reps, 1)
	assert.Equal(t, "xray", reps[0].TriggerName)
	assert.Equal(t, prefixMemcg, reps[0].Prefix)
	assert.Equal(t, "Process java (pid 4242) was OOM-killed because a cgroup's memory limit was hit; the victim held 800 KiB of anonymous memory; the allocation that hit the limit came from xray (pid 4243).", reps[0].Body())

	// A table export whose columns nothing here knows, space-separated.
	reps = readString(t, `2023-08-17 17:29:27.402 ip-10-0-1-2 xray invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0
2023-08-17 17:29:27.402 ip-10-0-1-2 CPU: 1 PID: 4243 Comm: xray Not tainted 5.10.184 #1
2023-08-17 17:29:27.403 ip-10-0-1-2 Memory cgroup out of memory: Killed process 4242 (java) total-vm:1000kB
`)
	require.Len(t, reps, 1)
	assert.Equal(t, "xray", reps[0].TriggerName, "from the CPU line: the invoked line's name has a prefix glued to it")
	assert.Equal(t, prefixMemcg, reps[0].Prefix)
}

// TestLearnedPrefix: the stat lines and task rows behind a prefix nothing
// here knows lose it as the lines that say what they are did.
func TestLearnedPrefix(t *testing.T) {
	reps := readString(t, `2023-08-17 17:29:27.402 | ip-10-0-1-2 | memory: usage 65536kB, limit 65536kB, failcnt 3
2023-08-17 17:29:27.402 | ip-10-0-1-2 | Memory cgroup stats for /docker/abc:
2023-08-17 17:29:27.402 | ip-10-0-1-2 | anon 60000000
2023-08-17 17:29:27.402 | ip-10-0-1-2 | file 1000
2023-08-17 17:29:27.402 | ip-10-0-1-2 | Tasks state (memory values in pages):
2023-08-17 17:29:27.402 | ip-10-0-1-2 | [  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name
2023-08-17 17:29:27.402 | ip-10-0-1-2 | [   4242]     0  4242    13365    13038   143360        0             0 java
2023-08-17 17:29:27.403 | ip-10-0-1-2 | oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/docker/abc,task_memcg=/docker/abc,task=java,pid=4242,uid=0
2023-08-17 17:29:27.403 | ip-10-0-1-2 | Memory cgroup out of memory: Killed process 4242 (java) total-vm:53460kB, anon-rss:51176kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:140kB oom_score_adj:0
`)
	require.Len(t, reps, 1)
	r := reps[0]
	assert.Equal(t, map[string]int64{"anon": 60000000, "file": 1000}, r.MemcgStat)
	require.Len(t, r.Tasks, 1)
	assert.Equal(t, Task{PID: 4242, Name: "java", RSS: 13038 * 4096}, r.Tasks[0])

	// A shape as loose as "word " leaves a bare stat line alone.
	reps = readString(t, `node1 Memory cgroup stats for /docker/abc:
anon 60000000
file 1000
node1 Memory cgroup out of memory: Killed process 4242 (java) total-vm:53460kB
`)
	require.Len(t, reps, 1)
	assert.Equal(t, map[string]int64{"anon": 60000000, "file": 1000}, reps[0].MemcgStat)
}

// TestKillLineForms: every form of the kill line since 2.6.32.
func TestKillLineForms(t *testing.T) {
	for _, tc := range []struct {
		kernel, line, comm, prefix string
		pid                        int
		uid, totalVM, anon, file   *int64
		shmem, pgtables, adj       *int64
		global                     bool
	}{
		{
			kernel: "2.6.32 (vsz: until 2.6.35)", line: "Killed process 2188 (mysqld) vsz:3330016kB, anon-rss:864176kB, file-rss:8072kB",
			pid: 2188, comm: "mysqld", totalVM: new(int64(3330016 * kB)), anon: new(int64(864176 * kB)), file: new(int64(8072 * kB)),
		},
		{
			kernel: "RHEL 6 (2.6.32-*.el6)", line: "Killed process 11726, UID 498, (mysqld) total-vm:7823732kB, anon-rss:2539268kB, file-rss:768kB",
			pid: 11726, comm: "mysqld", uid: new(int64(498)), totalVM: new(int64(7823732 * kB)), anon: new(int64(2539268 * kB)), file: new(int64(768 * kB)),
		},
		{
			kernel: "2.6.36–4.4", line: "Killed process 2188 (mysqld) total-vm:3330016kB, anon-rss:864176kB, file-rss:8072kB",
			pid: 2188, comm: "mysqld", totalVM: new(int64(3330016 * kB)), anon: new(int64(864176 * kB)), file: new(int64(8072 * kB)),
		},
		{
			kernel: "4.5–5.0 (shmem-rss:)", line: "Killed process 215701 (java) total-vm:11017300kB, anon-rss:7152432kB, file-rss:1232kB, shmem-rss:4kB",
			pid: 215701, comm: "java", totalVM: new(int64(11017300 * kB)), anon: new(int64(7152432 * kB)), file: new(int64(1232 * kB)), shmem: new(int64(4 * kB)),
		},
		{
			kernel: "vendor 4.x (', UID N,' after the name)", line: "Killed process 4242 (java), UID 1000, total-vm:8000kB, anon-rss:6000kB, file-rss:100kB, shmem-rss:0kB",
			pid: 4242, comm: "java", uid: new(int64(1000)), totalVM: new(int64(8000 * kB)), anon: new(int64(6000 * kB)), file: new(int64(100 * kB)), shmem: new(int64(0)),
		},
		{
			kernel: "5.1–5.2 (message prefix)", line: "Out of memory: Killed process 1532 (badsysprogram) total-vm:1000kB, anon-rss:900kB, file-rss:0kB, shmem-rss:0kB",
			pid: 1532, comm: "badsysprogram", prefix: prefixGlobal, global: true, totalVM: new(int64(1000 * kB)), anon: new(int64(900 * kB)), file: new(int64(0)), shmem: new(int64(0)),
		},
		{
			kernel: "5.3–5.4 (UID:)", line: "Memory cgroup out of memory: Killed process 1143 (memhog) total-vm:1000kB, anon-rss:900kB, file-rss:0kB, shmem-rss:0kB, UID:0",
			pid: 1143, comm: "memhog", prefix: prefixMemcg, uid: new(int64(0)), totalVM: new(int64(1000 * kB)), anon: new(int64(900 * kB)), file: new(int64(0)), shmem: new(int64(0)),
		},
		{
			kernel: "5.5+ (pgtables: oom_score_adj:), node-problem-detector", line: "Memory cgroup out of memory: Killed process 3504804 (kubectl) total-vm:753508kB, anon-rss:58776kB, file-rss:29400kB, shmem-rss:0kB, UID:0 pgtables:288kB oom_score_adj:999",
			pid: 3504804, comm: "kubectl", prefix: prefixMemcg, uid: new(int64(0)), totalVM: new(int64(753508 * kB)), anon: new(int64(58776 * kB)), file: new(int64(29400 * kB)), shmem: new(int64(0)), pgtables: new(int64(288 * kB)), adj: new(int64(999)),
		},
		{
			kernel: "2.6.24+ oom_kill_allocating_task", line: "Out of memory (oom_kill_allocating_task): Killed process 77 (a b) total-vm:8kB, anon-rss:4kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:4kB oom_score_adj:0",
			pid: 77, comm: "a b", prefix: "Out of memory (oom_kill_allocating_task)", global: true, uid: new(int64(0)), totalVM: new(int64(8 * kB)), anon: new(int64(4 * kB)), file: new(int64(0)), shmem: new(int64(0)), pgtables: new(int64(4 * kB)), adj: new(int64(0)),
		},
	} {
		t.Run(tc.kernel, func(t *testing.T) {
			reps := readString(t, tc.line+"\n")
			require.Len(t, reps, 1)
			r := reps[0]
			assert.Equal(t, tc.pid, r.PID)
			assert.Equal(t, tc.comm, r.Comm)
			assert.Equal(t, tc.prefix, r.Prefix)
			assert.Equal(t, tc.global, r.Global)
			assert.Equal(t, tc.uid, r.UID)
			assert.Equal(t, tc.totalVM, r.TotalVM)
			assert.Equal(t, tc.anon, r.AnonRSS)
			assert.Equal(t, tc.file, r.FileRSS)
			assert.Equal(t, tc.shmem, r.ShmemRSS)
			assert.Equal(t, tc.pgtables, r.PgTables)
			assert.Equal(t, tc.adj, r.OOMScoreAdj)
		})
	}
}

// TestChooseLineForms: the line that named the victim before its kill
// line, up to 5.0, and the processes killed because they shared its
// memory.
func TestChooseLineForms(t *testing.T) {
	for _, tc := range []struct{ kernel, choose, kill string }{
		{"2.6.32–2.6.35", "Memory cgroup out of memory: kill process 215701 (java) score 854 or a child", "Killed process 215701 (java) vsz:11017300kB, anon-rss:7152432kB, file-rss:1232kB"},
		{"2.6.36–5.0, RHEL 6", "Memory cgroup out of memory: Kill process 215701 (java) score 854 or sacrifice child", "Killed process 215701, UID 679, (java) total-vm:11017300kB, anon-rss:7152432kB, file-rss:1232kB"},
	} {
		t.Run(tc.kernel, func(t *testing.T) {
			reps := readString(t, tc.choose+"\n"+tc.kill+"\n")
			require.Len(t, reps, 1)
			assert.Equal(t, 215701, reps[0].PID)
			assert.Equal(t, "CONSTRAINT_MEMCG", reps[0].Constraint)
			assert.Equal(t, prefixMemcg, reps[0].Prefix)
			// The choice alone, its kill line lost, is still the kill.
			reps = readString(t, tc.choose+"\n")
			require.Len(t, reps, 1)
			assert.Equal(t, "java", reps[0].Comm)
		})
	}

	// 2.6.36–4.x: "Kill process P (comm) sharing same memory" after the
	// victim's kill line: a kill of its own.
	reps := readString(t, `Out of memory: Kill process 2188 (mysqld) score 60 or sacrifice child
Killed process 2188 (mysqld) total-vm:3330016kB, anon-rss:864176kB, file-rss:8072kB
Kill process 2190 (mysqld-helper) sharing same memory
`)
	require.Len(t, reps, 2)
	assert.Equal(t, 2190, reps[1].PID)
	assert.Equal(t, new(int64(2188)), reps[1].SharedWith)
	assert.Contains(t, reps[1].Body(), "was OOM-killed with pid 2188, whose memory it shared, because the machine ran out of memory")
}

// TestTaskInForms: the ≤4.20 line that names the victim's and the
// limiting cgroup, whole and split by another CPU's record, and the line
// printed when no victim had been chosen yet.
func TestTaskInForms(t *testing.T) {
	const kill = "Memory cgroup out of memory: Kill process 4242 (java) score 1000 or sacrifice child\nKilled process 4242 (java) total-vm:8kB, anon-rss:4kB, file-rss:0kB, shmem-rss:0kB\n"
	for _, tc := range []struct{ kernel, lines, memcg, taskMemcg string }{
		{"2.6.31–4.20, istio report", "Jan  5 02:12:02 iZbp153spuk45ulvkwxf34Z kernel: Task in /kubepods.slice/x.scope killed as a result of limit of /kubepods.slice\n", "/kubepods.slice", "/kubepods.slice/x.scope"},
		{"3.x–4.20, pr_cont split by another record", "[ 12.1] Task in /a/b\n[ 12.1] usb 1-1: new device\n[ 12.1]  killed as a result of limit of /a\n", "/a", "/a/b"},
		{"2.6.32, two printks", "[ 12.1] Task in /a/b killed\n[ 12.1]  as a result of limit of /a\n", "/a", "/a/b"},
		{"3.x–4.20, no victim chosen yet", "[ 935.562389] Memory limit reached of cgroup /syz0\n", "/syz0", ""},
	} {
		t.Run(tc.kernel, func(t *testing.T) {
			reps := readString(t, tc.lines+kill)
			require.Len(t, reps, 1)
			assert.Equal(t, tc.memcg, reps[0].Memcg)
			assert.Equal(t, tc.taskMemcg, reps[0].TaskMemcg)
			assert.False(t, reps[0].MemcgInferred)
		})
	}
}

// TestUsageForms: the memcg's usage lines since 2.6.31; a limit printed
// as the counter's maximum is no limit.
func TestUsageForms(t *testing.T) {
	const kill = "Memory cgroup out of memory: Killed process 1 (a) total-vm:8kB, anon-rss:4kB, file-rss:0kB, shmem-rss:0kB, UID:0\n"
	type usage struct{ usage, limit *int64 }
	for _, tc := range []struct {
		kernel, lines             string
		memory, memsw, kmem, swap usage
		limitClause               string
	}{
		{
			kernel: "v1 2.6.31–3.18 (res_counter max 9007199254740991kB)",
			lines:  "memory: usage 102400kB, limit 102400kB, failcnt 736\nmemory+swap: usage 102400kB, limit 9007199254740991kB, failcnt 0\n",
			memory: usage{new(int64(102400 * kB)), new(int64(102400 * kB))}, memsw: usage{new(int64(102400 * kB)), nil},
			limitClause: "a cgroup's 100 MiB memory limit was hit",
		},
		{
			kernel: "v1 3.19+ with kmem (3.8+), TKE 4.14 report",
			lines:  "memory: usage 122880kB, limit 122880kB, failcnt 83\nmemory+swap: usage 122880kB, limit 9007199254740988kB, failcnt 0\nkmem: usage 0kB, limit 9007199254740988kB, failcnt 0\n",
			memory: usage{new(int64(122880 * kB)), new(int64(122880 * kB))}, memsw: usage{new(int64(122880 * kB)), nil}, kmem: usage{new(int64(0)), nil},
			limitClause: "a cgroup's 120 MiB memory limit was hit",
		},
		{
			kernel: "v1, the memory+swap limit hit",
			lines:  "memory: usage 90000kB, limit 9007199254740988kB, failcnt 0\nmemory+swap: usage 102400kB, limit 102400kB, failcnt 12\n",
			memory: usage{new(int64(90000 * kB)), nil}, memsw: usage{new(int64(102400 * kB)), new(int64(102400 * kB))},
			limitClause: "a cgroup's 100 MiB memory+swap limit was hit",
		},
		{
			kernel: "v2 5.x+",
			lines:  "memory: usage 65536kB, limit 65536kB, failcnt 47\nswap: usage 1024kB, limit 2048kB, failcnt 0\n",
			memory: usage{new(int64(65536 * kB)), new(int64(65536 * kB))}, swap: usage{new(int64(1024 * kB)), new(int64(2048 * kB))},
			limitClause: "a cgroup's 64 MiB memory limit was hit",
		},
	} {
		t.Run(tc.kernel, func(t *testing.T) {
			reps := readString(t, tc.lines+kill)
			require.Len(t, reps, 1)
			r := reps[0]
			// Named, so that testifylint does not take the composite
			// literals of the report's fields for the expected values.
			memory, memsw := usage{r.MemcgUsage, r.MemcgLimit}, usage{r.MemswUsage, r.MemswLimit}
			kmem, swap := usage{r.KmemUsage, r.KmemLimit}, usage{r.SwapUsage, r.SwapLimit}
			assert.Equal(t, tc.memory, memory)
			assert.Equal(t, tc.memsw, memsw)
			assert.Equal(t, tc.kmem, kmem)
			assert.Equal(t, tc.swap, swap)
			assert.Contains(t, r.Body(), tc.limitClause)
		})
	}
}

// TestSummaryForms: the oom-kill: summary line (5.0+).
func TestSummaryForms(t *testing.T) {
	for _, tc := range []struct {
		kernel, line           string
		pid                    int
		memcg, taskMemcg, comm string
		global                 bool
		constraint             string
	}{
		{
			kernel: "5.0+ memcg, kubernetes-oomkill-exporter", line: "6,22743,6115623303887,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=9f02d9fa0049eb2655fc83c765f142362b2cb403b57b70ba3185071015ca3b64,mems_allowed=0-1,oom_memcg=/kubepods/burstable/podd11ab7b0-d6db-4a24-a7de-4a2faf1e6980/9f02d9fa0049eb2655fc83c765f142362b2cb403b57b70ba3185071015ca3b64,task_memcg=/kubepods/burstable/podd11ab7b0-d6db-4a24-a7de-4a2faf1e6980/9f02d9fa0049eb2655fc83c765f142362b2cb403b57b70ba3185071015ca3b64,task=prometheus-conf,pid=3401999,uid=0",
			pid: 3401999, comm: "prometheus-conf", constraint: "CONSTRAINT_MEMCG",
			memcg: "/kubepods/burstable/podd11ab7b0-d6db-4a24-a7de-4a2faf1e6980/9f02d9fa0049eb2655fc83c765f142362b2cb403b57b70ba3185071015ca3b64", taskMemcg: "/kubepods/burstable/podd11ab7b0-d6db-4a24-a7de-4a2faf1e6980/9f02d9fa0049eb2655fc83c765f142362b2cb403b57b70ba3185071015ca3b64",
		},
		{
			kernel: "5.0+ global", line: "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/system.slice/mysql.service,task=mysqld,pid=2188,uid=27",
			pid: 2188, comm: "mysqld", constraint: "CONSTRAINT_NONE", global: true, taskMemcg: "/system.slice/mysql.service",
		},
		{
			kernel: "5.0+ without CONFIG_MEMCG", line: "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,task=mysqld,pid=2188,uid=27",
			pid: 2188, comm: "mysqld", constraint: "CONSTRAINT_NONE", global: true,
		},
		{
			kernel: "5.0+ cpuset", line: "oom-kill:constraint=CONSTRAINT_CPUSET,nodemask=(null),cpuset=/pinned,mems_allowed=1,global_oom,task_memcg=/pinned,task=big,pid=77,uid=0",
			pid: 77, comm: "big", constraint: "CONSTRAINT_CPUSET", taskMemcg: "/pinned",
		},
	} {
		t.Run(tc.kernel, func(t *testing.T) {
			reps := readString(t, tc.line+"\n")
			require.Len(t, reps, 1)
			r := reps[0]
			assert.Equal(t, tc.pid, r.PID)
			assert.Equal(t, tc.comm, r.Comm)
			assert.Equal(t, tc.constraint, r.Constraint)
			assert.Equal(t, tc.global, r.Global)
			assert.Equal(t, tc.memcg, r.Memcg)
			assert.Equal(t, tc.taskMemcg, r.TaskMemcg)
		})
	}
}

// TestTriggerForms: the stack dump's header that names the allocating
// task, ≤3.9 and 3.10+.
func TestTriggerForms(t *testing.T) {
	const kill = "Out of memory: Killed process 1 (a)\n"
	for _, tc := range []struct{ kernel, line, name string }{
		{"≤3.9 x86", "[  204.308090] Pid: 2376, comm: mal-80 Not tainted 3.7.0+ #4", "mal-80"},
		{"3.10+", "CPU: 0 PID: 2376 Comm: mal-80 Not tainted 4.14.0 #1", "mal-80"},
		{"6.12+ (UID:)", "CPU: 1 UID: 0 PID: 2376 Comm: mal-80 Not tainted 6.18.44-fc-v1045 #1 PREEMPT(none)", "mal-80"},
	} {
		t.Run(tc.kernel, func(t *testing.T) {
			reps := readString(t, tc.line+"\n"+kill)
			require.Len(t, reps, 1)
			assert.Equal(t, tc.name, reps[0].TriggerName)
			assert.Equal(t, new(int64(2376)), reps[0].TriggerPID)
		})
	}
}

// TestInferredMemcg: a ≤5.2 report cut before its usage line shows only
// stat lines, one per cgroup of the limiting subtree; the first visible
// one is taken, and said to be inferred.
func TestInferredMemcg(t *testing.T) {
	const stats = "Memory cgroup stats for /kubepods/burstable/pod0f5e/c1: cache:0KB rss:4096KB\nMemory cgroup stats for /kubepods/burstable/pod0f5e/c2: cache:0KB rss:8KB\n"
	const kill = "Memory cgroup out of memory: Kill process 7 (app) score 1000 or sacrifice child\nKilled process 7 (app) total-vm:8kB, anon-rss:4kB, file-rss:0kB, shmem-rss:0kB\n"
	reps := readString(t, stats+kill)
	require.Len(t, reps, 1)
	r := reps[0]
	assert.Equal(t, "/kubepods/burstable/pod0f5e/c1", r.Memcg)
	assert.True(t, r.MemcgInferred)
	assert.Contains(t, r.Body(), "probably that of /kubepods/burstable/pod0f5e/c1 (inferred")
	assert.NotContains(t, r.Body(), "its container's own")

	// With the usage line before it, the first stat line is the limiting
	// cgroup's.
	reps = readString(t, "memory: usage 4104kB, limit 4104kB, failcnt 1\n"+stats+kill)
	require.Len(t, reps, 1)
	assert.False(t, reps[0].MemcgInferred)
	assert.NotContains(t, reps[0].Body(), "inferred")
}

// TestArchitecture: the log tells x86 by its release, registers or entry
// symbols; then the task table's page size is settled.
func TestArchitecture(t *testing.T) {
	for _, tc := range []struct {
		line, arch string
	}{
		{"CPU: 0 PID: 1 Comm: a Not tainted 5.14.0-284.11.1.el9_2.x86_64 #1", "x86"},
		{"CPU: 0 PID: 1 Comm: a Not tainted 6.1.0-13-amd64 #1 Debian 6.1.55-1", "x86"},
		{"RIP: 0033:0x4aacfe", "x86"},
		{" entry_SYSCALL_64_after_hwframe+0x6e/0xd8", "x86"},
		{"CPU: 0 PID: 1 Comm: a Not tainted 5.14.0-284.el9.aarch64 #1", "arm64"},
		{"CPU: 0 PID: 1 Comm: a Not tainted 6.8.0-1008-generic-64k #8", ""},
		{"CPU: 0 PID: 1 Comm: a Not tainted 4.15.0-1019-aws #19", ""},
	} {
		a := NewAssembler()
		a.Add(kmsg.Record{Message: tc.line})
		assert.Equal(t, tc.arch, a.Arch(), tc.line)
		assert.Equal(t, tc.arch == "x86", a.PageSizeKnown(), tc.line)
	}
	assert.True(t, NewAssembler(WithPageSize(65536)).PageSizeKnown())
}
