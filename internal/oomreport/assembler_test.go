// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oomreport

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oomsight/oomsight/internal/identity"
	"github.com/oomsight/oomsight/internal/kmsg"
	"github.com/oomsight/oomsight/internal/kmsg/text"
)

// fragments returns the groups of testdata/oom/public-fragments.txt by
// their "## " heading.
func fragments(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("../../testdata/oom/public-fragments.txt")
	require.NoError(t, err)
	defer f.Close()
	groups, cur := map[string]string{}, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			cur = strings.TrimPrefix(line, "## ")
		case cur != "" && strings.TrimSpace(line) != "":
			groups[cur] += line + "\n"
		}
	}
	require.NoError(t, sc.Err())
	return groups
}

func readString(t *testing.T, s string) []*Report {
	t.Helper()
	reps, err := ReadAll(strings.NewReader(s))
	require.NoError(t, err)
	return reps
}

func TestPublicFragments(t *testing.T) {
	g := fragments(t)
	require.Len(t, g, 10)
	get := func(heading string) string {
		s, ok := g[heading]
		require.True(t, ok, heading)
		return s
	}

	// A summary whose kill line is not in the input still names the kill.
	reps := readString(t, get("raw /dev/kmsg, cgroupfs, container-level limit (kubernetes-oomkill-exporter tests)"))
	require.Len(t, reps, 1)
	r := reps[0]
	assert.Equal(t, 3401999, r.PID)
	assert.Equal(t, "prometheus-conf", r.Comm)
	assert.Equal(t, "CONSTRAINT_MEMCG", r.Constraint)
	assert.Equal(t, r.Memcg, r.TaskMemcg)
	assert.Equal(t, "/kubepods/burstable/podd11ab7b0-d6db-4a24-a7de-4a2faf1e6980/9f02d9fa0049eb2655fc83c765f142362b2cb403b57b70ba3185071015ca3b64", r.TaskMemcg)
	assert.Equal(t, CauseUnknown, r.Cause)
	assert.Equal(t, "Process prometheus-conf (pid 3401999) in container 9f02d9fa0049 of pod d11ab7b0 was OOM-killed because its container's own memory limit was hit.", r.Body())

	for _, h := range []string{"raw /dev/kmsg, systemd driver, pod-level limit", "Linux 5.0 (Ubuntu 18.04), cAdvisor issue about 5.0 OOMs looking global"} {
		reps = readString(t, get(h))
		require.Len(t, reps, 1, h)
		assert.False(t, reps[0].Global, h)
		assert.Contains(t, reps[0].Body(), "its pod's memory limit was hit before the container's own (Kubernetes limits the pod to the sum of its containers' limits, and all the pod's memory counts there)", h)
	}
	assert.Equal(t, "manager", reps[0].Comm)
	assert.Equal(t, 966, reps[0].PID)

	reps = readString(t, get("Linux 3.13 system OOM"))
	require.Len(t, reps, 1)
	assert.Equal(t, 1532, reps[0].PID)
	assert.Equal(t, "badsysprogram", reps[0].Comm)
	assert.True(t, reps[0].Global)
	assert.Equal(t, "Process badsysprogram (pid 1532) was OOM-killed because the machine ran out of memory (system-wide OOM).", reps[0].Body())

	reps = readString(t, get("node-problem-detector OOMKilling event message"))
	require.Len(t, reps, 1)
	r = reps[0]
	assert.Equal(t, 3504804, r.PID)
	assert.Equal(t, "kubectl", r.Comm)
	assert.Equal(t, int64(0), *r.UID)
	assert.Equal(t, int64(753508*kB), *r.TotalVM)
	assert.Equal(t, int64(58776*kB), *r.AnonRSS)
	assert.Equal(t, int64(29400*kB), *r.FileRSS)
	assert.Equal(t, int64(0), *r.ShmemRSS)
	assert.Equal(t, int64(288*kB), *r.PgTables)
	assert.Equal(t, int64(999), *r.OOMScoreAdj)
	assert.Equal(t, "CONSTRAINT_MEMCG", r.Constraint)
	assert.Equal(t, CauseAnon, r.Cause)
	assert.Equal(t, "Process kubectl (pid 3504804) was OOM-killed because a cgroup's memory limit was hit; the victim held 57.4 MiB of anonymous memory.", r.Body())

	reps = readString(t, get("cgroup v2 node, dmesg format (aws-efs-csi-driver report)"))
	require.Len(t, reps, 1)
	r = reps[0]
	assert.Equal(t, 142321, r.PID)
	assert.Equal(t, "python3", r.TriggerName)
	assert.Nil(t, r.TriggerPID)
	assert.Equal(t, "0xcc0(GFP_KERNEL)", r.GFPMask)
	assert.Equal(t, int64(-997), *r.OOMScoreAdj)
	assert.Equal(t, 18149128628*time.Microsecond, *r.Monotonic)
	assert.Empty(t, r.MemcgStat, "a stat line without its header is not a stat dump")
	assert.Contains(t, r.Body(), "the allocation that hit the limit came from python3.")

	// Header fragments alone are no kill.
	for _, h := range []string{
		"cgroup v1, systemd driver, docker runtime, syslog format (istio report)",
		"page cache at the moment of a kill (kubedirector report)",
		"Linux 5.4, dmesg -T format",
		"Linux 4.14 (TKE), v1 cgroupfs, dmesg format, memcg dump of a pod cgroup",
	} {
		assert.Empty(t, readString(t, get(h)), h)
	}

	// With the kill lines of the same era appended (synthetic, marked
	// below), the 4.14 header fragments give the report its context.
	reps = readString(t, get("Linux 4.14 (TKE), v1 cgroupfs, dmesg format, memcg dump of a pod cgroup")+
		"[198542.576800] Memory cgroup out of memory: Kill process 4242 (java) score 1000 or sacrifice child\n"+ // synthetic
		"[198542.576900] Killed process 4242 (java) total-vm:2000000kB, anon-rss:120000kB, file-rss:2000kB, shmem-rss:0kB\n") // synthetic
	require.Len(t, reps, 1)
	r = reps[0]
	assert.Equal(t, 4242, r.PID)
	assert.Equal(t, "CONSTRAINT_MEMCG", r.Constraint)
	assert.Equal(t, "/kubepods/burstable/pod0f5eb28f-6722-4cf5-ab0f-b62748c018d4", r.Memcg)
	assert.Equal(t, "/kubepods/burstable/pod0f5eb28f-6722-4cf5-ab0f-b62748c018d4/0dc1822caf9e150de25daa1cf572418426ce6b72757b5efdff52acef348368a3", r.TaskMemcg)
	assert.Equal(t, int64(122880*kB), *r.MemcgUsage)
	assert.Equal(t, int64(83), *r.MemcgFailcnt)
	assert.Equal(t, int64(0), r.MemcgStat["cache"])
	assert.Len(t, r.MemcgStat, 13)
	assert.Nil(t, r.UID)
	assert.Equal(t, CauseAnon, r.Cause, "all-zero v1 stats: the victim tells")
	assert.Contains(t, r.Body(), "its pod's 120 MiB memory limit was hit before the container's own (Kubernetes limits the pod to the sum of its containers' limits, and all the pod's memory counts there)")

	reps = readString(t, get("cgroup v1, systemd driver, docker runtime, syslog format (istio report)")+
		"Jan  5 02:12:02 iZbp153spuk45ulvkwxf34Z kernel: Killed process 77 (envoy) total-vm:100kB, anon-rss:50kB, file-rss:0kB, shmem-rss:0kB\n") // synthetic
	require.Len(t, reps, 1)
	assert.Equal(t, reps[0].Memcg, reps[0].TaskMemcg)
	assert.Equal(t, "docker", identity.FromPath(reps[0].TaskMemcg).Runtime)
	assert.Equal(t, "0330b2c1-a15b-4cdd-b5e5-72d4a90bee82", identity.FromPath(reps[0].TaskMemcg).PodUID)
}

func records(t *testing.T) []kmsg.Record {
	t.Helper()
	f, err := os.Open("../../testdata/v2/oom/container-limit.kmsg")
	require.NoError(t, err)
	defer f.Close()
	var rs []kmsg.Record
	for r, err := range text.Records(f, Lines) {
		require.NoError(t, err)
		rs = append(rs, r)
	}
	return rs
}

func feed(a *Assembler, rs []kmsg.Record) []*Report {
	var out []*Report
	for _, r := range rs {
		out = append(out, a.Add(r)...)
	}
	return out
}

func TestInterleaved(t *testing.T) {
	rs := records(t)
	noise := []string{
		"usb 1-1: new high-speed USB device number 2 using xhci_hcd",
		"audit: type=1400 audit(1700000000.000:42): apparmor=\"DENIED\"",
		"EXT4-fs (sda1): mounted filesystem",
		"nf_conntrack: table full, dropping packet",
	}
	var mixed []kmsg.Record
	for i, r := range rs {
		mixed = append(mixed, r, kmsg.Record{Priority: -1, Message: noise[i%len(noise)]})
	}
	want := feed(NewAssembler(), rs)
	a := NewAssembler()
	got := append(feed(a, mixed), a.Flush()...)
	require.Len(t, got, 1)
	assert.Empty(t, want, "the kill report waits for the next record")
	ref := readFile(t, "../../testdata/v2/oom/container-limit.kmsg")[0]
	assert.Equal(t, ref, got[0])
}

func TestFlushAndIdle(t *testing.T) {
	rs := records(t)
	a := NewAssembler()
	assert.Empty(t, feed(a, rs), "held back to see whether a memory.oom.group kill follows")
	reps := a.Idle()
	require.Len(t, reps, 1)
	assert.Equal(t, 1143, reps[0].PID)
	assert.Empty(t, a.Flush())

	// The next record releases it too.
	a = NewAssembler()
	feed(a, rs)
	reps = a.Add(kmsg.Record{Message: "oom_reaper: reaped process 1143 (memhog), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB"})
	require.Len(t, reps, 1)
	assert.Empty(t, a.Flush())
}

func TestTruncated(t *testing.T) {
	rs := records(t)
	last := len(rs) - 1
	require.Contains(t, rs[last].Message, "Killed process")

	// Cut before the kill line: the summary still names the victim.
	a := NewAssembler()
	require.Empty(t, feed(a, rs[:last]))
	reps := a.Flush()
	require.Len(t, reps, 1)
	r := reps[0]
	assert.Equal(t, 1143, r.PID)
	assert.Equal(t, "memhog", r.Comm)
	assert.Nil(t, r.AnonRSS)
	require.NotNil(t, r.Seq, "the summary's sequence number: a checkpoint can skip it")
	assert.Equal(t, rs[last-1].Seq, *r.Seq)
	assert.Equal(t, int64(65536*kB), *r.MemcgLimit)
	assert.Equal(t, CauseAnon, r.Cause)

	// Stopping with a checkpoint: Release drops the partial report (the
	// restart reads it whole from the ring) but returns a held kill.
	a = NewAssembler()
	require.Empty(t, feed(a, rs[:last]))
	assert.Empty(t, a.Release())
	a = NewAssembler()
	require.Empty(t, feed(a, rs), "the kill is held for a possible group line")
	held := a.Release()
	require.Len(t, held, 1)
	assert.Equal(t, rs[last].Seq, *held[0].Seq)

	// Cut before the summary: nothing says who was killed.
	a = NewAssembler()
	feed(a, rs[:last-1])
	assert.Empty(t, a.Flush())

	// Only the kill line (the header was rate-limited away).
	a = NewAssembler()
	reps = append(feed(a, rs[last:]), a.Flush()...)
	require.Len(t, reps, 1)
	assert.Equal(t, "Process memhog (pid 1143) was OOM-killed because a cgroup's memory limit was hit; the victim held 59.5 MiB of anonymous memory.", reps[0].Body())
	assert.Empty(t, reps[0].Tasks)
	assert.Equal(t, uint64(399), *reps[0].Seq)
}

// A kill whose header was rate-limited away must not inherit the previous
// kill's context.
func TestNoContextLeak(t *testing.T) {
	rs := records(t)
	kill := rs[len(rs)-1]
	kill.Seq++
	kill.Message = "Memory cgroup out of memory: Killed process 2000 (other) total-vm:1000kB, anon-rss:500kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:8kB oom_score_adj:0"
	a := NewAssembler()
	reps := append(feed(a, append(rs, kill)), a.Flush()...)
	require.Len(t, reps, 2)
	assert.Equal(t, 1143, reps[0].PID)
	r := reps[1]
	assert.Equal(t, 2000, r.PID)
	assert.Empty(t, r.Memcg)
	assert.Empty(t, r.TaskMemcg)
	assert.Empty(t, r.TriggerName)
	assert.Nil(t, r.MemcgLimit)
	assert.Empty(t, r.MemcgStat)
	assert.Equal(t, int64(1000), *r.UID)

	// A new report after a finished one starts from scratch.
	reps = append(feed(a, rs), a.Flush()...)
	require.Len(t, reps, 1)
	assert.Equal(t, readFile(t, "../../testdata/v2/oom/container-limit.kmsg")[0], reps[0])
}

func TestGarbage(t *testing.T) {
	in := "\x00\x01\x02\n" +
		"Killed process\n" +
		"Killed process x (y)\n" +
		"Killed process 99999999999999999999 (x) total-vm:1kB\n" +
		"oom-kill:constraint=CONSTRAINT_MEMCG,\n" +
		"[  pid  ]   uid  tgid total_vm      rss name\n" +
		"[  12]  a b c d e\n" +
		"Memory cgroup stats for /x:\n" +
		"anon 99999999999999999999999\n" +
		"1,2,3,-\n" +
		"999,abc,1,-;hello\n" +
		"[ 12.34] \n" +
		"Jan  5 02:12:02 host systemd[1]: Killed process 5 (x) total-vm:1kB\n" +
		strings.Repeat("x", 70000) + "\n"
	reps, err := ReadAll(strings.NewReader(in))
	require.NoError(t, err)
	assert.Empty(t, reps)

	// A real report after the garbage is still found.
	raw, err := os.ReadFile("../../testdata/v2/oom/tmpfs.dmesg")
	require.NoError(t, err)
	reps = readString(t, in+string(raw)+in)
	require.Len(t, reps, 1)
	assert.Equal(t, CauseShmem, reps[0].Cause)
}

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1 KiB", 48 << 20: "48 MiB", 46661632: "44.5 MiB", 3 << 30: "3 GiB"} {
		assert.Equal(t, want, Bytes(n))
	}
}

// TestPublicFragmentsDoNotMix feeds the whole corpus at once: pieces of
// different reports follow each other there, and no kill may take another
// report's victim, cgroups or limit (a summary whose kill line is missing
// is still reported, with its own details).
func TestPublicFragmentsDoNotMix(t *testing.T) {
	type key struct {
		pid                 int
		comm, memcg, taskMc string
		global              bool
		limit               int64
	}
	keyOf := func(r *Report) key {
		k := key{pid: r.PID, comm: r.Comm, memcg: r.Memcg, taskMc: r.TaskMemcg, global: r.Global}
		if r.MemcgLimit != nil {
			k.limit = *r.MemcgLimit
		}
		return k
	}
	var alone []key
	for _, s := range fragments(t) {
		for _, r := range readString(t, s) {
			alone = append(alone, keyOf(r))
		}
	}
	whole, err := os.ReadFile("../../testdata/oom/public-fragments.txt")
	require.NoError(t, err)
	var together []key
	for _, r := range readString(t, string(whole)) {
		together = append(together, keyOf(r))
	}
	assert.ElementsMatch(t, alone, together)
	assert.Len(t, together, 6)
}

// TestDamagedCaptures: real captures with one line changed the way other
// systems change it.
func TestDamagedCaptures(t *testing.T) {
	read := func(path string) string {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		return string(b)
	}
	// A cpuset-constrained OOM prints global_oom too (no memcg was
	// involved), but it is not a system-wide OOM.
	cpuset := strings.Replace(read("../../testdata/v2/oom/global.kmsg"), "constraint=CONSTRAINT_NONE", "constraint=CONSTRAINT_CPUSET", 1)
	reps := readString(t, cpuset)
	require.Len(t, reps, 1)
	assert.False(t, reps[0].Global)
	assert.Equal(t, "CONSTRAINT_CPUSET", reps[0].Constraint)
	assert.Contains(t, reps[0].Body(), "memory ran out under CONSTRAINT_CPUSET")

	// A summary cut short by a syslog line limit still belongs to the kill
	// line that follows: the report keeps its limit and stats.
	lines := strings.Split(read("../../testdata/v2/oom/container-limit.dmesg"), "\n")
	cut := false
	for i, l := range lines {
		if j := strings.Index(l, "task_memcg="); j >= 0 && strings.Contains(l, "oom-kill:") {
			lines[i], cut = l[:j+len("task_memcg=/kubepods/burstable/pod0f5e")], true
		}
	}
	require.True(t, cut)
	reps = readString(t, strings.Join(lines, "\n"))
	require.Len(t, reps, 1)
	assert.Equal(t, 1143, reps[0].PID)
	require.NotNil(t, reps[0].MemcgLimit)
	assert.Equal(t, int64(64<<20), *reps[0].MemcgLimit)
	assert.Equal(t, v2CtrFS, reps[0].Memcg)
}

// TestKillAfterGroupKill: a kill line that comes after a memory.oom.group
// kill without a header of its own (rate-limited or lost) is not one more
// member of that group: its pid is in no row of the group's task table.
func TestKillAfterGroupKill(t *testing.T) {
	group, err := os.ReadFile("../../testdata/v2/oom/oom-group.kmsg")
	require.NoError(t, err)
	other, err := os.ReadFile("../../testdata/v2/oom/container-limit.kmsg")
	require.NoError(t, err)
	var kill string
	for l := range strings.SplitSeq(string(other), "\n") {
		if strings.Contains(l, "Killed process 1143") {
			kill = l
		}
	}
	require.NotEmpty(t, kill)
	reps := readString(t, string(group)+kill+"\n")
	require.Len(t, reps, 4)
	last := reps[3]
	assert.Equal(t, 1143, last.PID)
	assert.False(t, last.GroupKill)
	assert.Empty(t, last.TaskMemcg, "not the group's cgroup")
	assert.Nil(t, last.MemcgLimit, "not the group's limit")
}

// TestRsyslogNewlines: rsyslog (RHEL's /var/log/messages) writes the
// newlines inside a record as "#012"; the 5.3–6.3 stat dump, one record of
// many lines, must still be read. The real tmpfs capture is turned into
// what rsyslog writes of it.
func TestRsyslogNewlines(t *testing.T) {
	raw, err := os.ReadFile("../../testdata/v2/oom/tmpfs.kmsg")
	require.NoError(t, err)
	var syslog strings.Builder
	for l := range strings.SplitSeq(strings.TrimSpace(string(raw)), "\n") {
		_, msg, ok := strings.Cut(l, ";")
		if !ok || strings.HasPrefix(l, " ") {
			continue
		}
		syslog.WriteString("Nov 23 06:00:00 node1 kernel: " + strings.ReplaceAll(msg, `\x0a`, "#012") + "\n")
	}
	want := readString(t, string(raw))
	got := readString(t, syslog.String())
	require.Len(t, got, 1)
	require.Len(t, want, 1)
	assert.Equal(t, want[0].MemcgStat, got[0].MemcgStat)
	assert.Equal(t, want[0].Body(), got[0].Body())
}

// TestVictimAlreadyExiting: when the chosen victim is already exiting the
// kernel prints "OOM victim P (c) is already exiting. Skip killing the
// task" instead of the kill line: nobody was killed, so no report. (The
// real container-limit capture with its kill line replaced so.)
func TestVictimAlreadyExiting(t *testing.T) {
	raw, err := os.ReadFile("../../testdata/v2/oom/container-limit.kmsg")
	require.NoError(t, err)
	lines := strings.Split(string(raw), "\n")
	replaced := false
	for i, l := range lines {
		if head, msg, ok := strings.Cut(l, ";"); ok && strings.HasPrefix(msg, "Memory cgroup out of memory: Killed process 1143") {
			lines[i], replaced = head+";Memory cgroup out of memory: OOM victim 1143 (memhog) is already exiting. Skip killing the task", true
		}
	}
	require.True(t, replaced)
	assert.Empty(t, readString(t, strings.Join(lines, "\n")))
}

// TestGroupLineAfterIdle: the live receiver releases a held kill after a
// moment of silence; when the memory.oom.group line comes later than that,
// the first victim, named again by the group kill, is still reported once.
func TestGroupLineAfterIdle(t *testing.T) {
	f, err := os.Open("../../testdata/v2/oom/oom-group.kmsg")
	require.NoError(t, err)
	defer f.Close()
	a := NewAssembler()
	var reps []*Report
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rec, err := kmsg.ParseRecord(sc.Bytes())
		if err != nil {
			continue // a continuation line of the previous record
		}
		reps = append(reps, a.Add(rec)...)
		reps = append(reps, a.Idle()...)
	}
	reps = append(reps, a.Flush()...)
	var pids []int
	for _, r := range reps {
		pids = append(pids, r.PID)
	}
	assert.Equal(t, []int{1680, 1673, 1674}, pids)
}
