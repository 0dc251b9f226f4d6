// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oomreport

import (
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
)

func TestClimbSentence(t *testing.T) {
	const mib = uint64(1 << 20)
	const ms = int64(time.Millisecond)
	// Flat at 52 MiB for a minute, then 0.8 s to 1 GiB; killed at 120.8 s.
	var ts []int64
	var usage []uint64
	for t := int64(60000); t <= 120000; t += 100 {
		ts = append(ts, t)
		usage = append(usage, 52*mib)
	}
	ts = append(ts, 120400, 120800)
	usage = append(usage, 600*mib, 1024*mib)
	assert.Equal(t, " Usage climbed from 52 MiB to 1 GiB in 0.8 s; a 10 s sampler last saw 52 MiB, a 60 s sampler last saw 52 MiB.", ClimbSentence(ts, usage, 120800*ms, 0))

	// The kernel's usage at the kill is the top when given.
	assert.Contains(t, ClimbSentence(ts, usage, 120800*ms, 1<<30), "to 1 GiB")

	// Never below half the top: it stayed high.
	assert.Equal(t, " Usage stayed between 900 MiB and 950 MiB for the 2.5 s recorded before the kill.",
		ClimbSentence([]int64{1000, 2000, 3000}, []uint64{900 * mib, 950 * mib, 950 * mib}, 3500*ms, 0))

	// No history: nothing to say.
	assert.Empty(t, ClimbSentence(nil, nil, 1, 0))
}

func TestCountedBody(t *testing.T) {
	assert.Equal(t, "2 processes in cgroup /a were OOM-killed (its oom_kill counter rose); the kernel's report is not available (kmsg off), so the victim, the limit hit and what filled it are unknown.", CountedBody(2, "/a", "kmsg off"))
	assert.Contains(t, CountedBody(1, "/a", "x"), "A process in cgroup /a")
}

func TestSurvivedSentence(t *testing.T) {
	const pod = "/kubepods/burstable/pod0f5eb28f-6722-4cf5-ab0f-b62748c018d4/0dc1822caf9e150de25daa1cf572418426ce6b72757b5efdff52acef348368a3"
	assert.Equal(t, " The container kept running — a worker was killed, not its main process — so Kubernetes shows no OOMKilled and no restart.", SurvivedSentence(pod))
	// Not a pod's container (podman, docker): no Kubernetes wording.
	got := SurvivedSentence("/machine.slice/libpod-0dc1822caf9e150de25daa1cf572418426ce6b72757b5efdff52acef348368a3.scope")
	assert.Equal(t, " The container kept running — a worker was killed, not its main process — so its runtime reports no OOM kill and no restart.", got)
	assert.NotContains(t, got, "Kubernetes")
}

func TestVictimCmdlineSentence(t *testing.T) {
	assert.Equal(t, ` Its command line was "python worker.py --queue=reports" (process snapshot 0.4 s before the kill).`,
		VictimCmdlineSentence("python worker.py --queue=reports", 400*time.Millisecond))
	assert.Equal(t, ` Its command line was "app" (process snapshot 5 ms before the kill).`, VictimCmdlineSentence("app", 5*time.Millisecond))
}

func TestNearLimitBody(t *testing.T) {
	path := "/kubepods/burstable/pod0f5eb28f-6722-4cf5-ab0f-b62748c018d4/0dc1822caf9e150de25daa1cf572418426ce6b72757b5efdff52acef348368a3"
	procs := []SnapshotProcess{
		{PID: 10, Cmdline: "memhog --job=a", RSS: 40 << 20},
		{PID: 11, Cmdline: "memhog --job=b", RSS: 2 << 20},
		{PID: 12, RSS: 1 << 20},
		{PID: 13, RSS: 1 << 10},
	}
	assert.Equal(t, `Near miss: container 0dc1822caf9e of pod 0f5eb28f reached 94 % of its 64 MiB memory limit (60.5 MiB, page cache included) and no process of it was OOM-killed within 10 s; its largest processes: pid 10 "memhog --job=a" 40 MiB, pid 11 "memhog --job=b" 2 MiB, pid 12 1 MiB and 1 more.`,
		NearLimitBody(path, 61<<20-512<<10, 64<<20, procs, 10*time.Second))
	assert.Equal(t, `Near miss: cgroup /batch was in its limit zone at 1 MiB and no process of it was OOM-killed within 10 s.`,
		NearLimitBody("/batch", 1<<20, 0, nil, 10*time.Second))
}

// TestSentencesEscapeNames: every sentence a person reads shows the
// control bytes, bidi controls and non-UTF-8 bytes of a workload's names,
// paths and command lines as escapes, never raw; the report keeps them.
func TestSentencesEscapeNames(t *testing.T) {
	r := &Report{
		PID: 1143, Comm: "m\x1b[2J", TriggerName: "\u202egnp", TriggerPID: new(int64(7)),
		TaskMemcg: "/a\x1b]0;x\x07", Memcg: "/\xff", Constraint: "CONSTRAINT_MEMCG",
		MemcgLimit: new(int64(64 << 20)),
	}
	body := r.Body()
	assert.Equal(t, `Process m\x1b[2J (pid 1143) in cgroup /a\x1b]0;x\x07 was OOM-killed because the 64 MiB memory limit of cgroup /\xff was hit; the allocation that hit the limit came from \u202egnp (pid 7).`, body)
	assert.Equal(t, "m\x1b[2J", r.Comm, "the report keeps the bytes")
	for _, s := range []string{
		body,
		CountedBody(1, "/a\nb", "x"),
		SurvivedSentence("/a\x1b"),
		VictimCmdlineSentence("sh -c \x1b[2Jrm\x00x", time.Second),
		NearLimitBody("/a\x07", 1, 2, []SnapshotProcess{{PID: 1, Cmdline: "a\x9bb\u2066"}}, time.Second),
	} {
		assert.NotRegexp(t, "[\x00-\x1f\x7f\u0080-\u009f\u202a-\u202e\u2066-\u2069]", s)
		assert.True(t, utf8.ValidString(s), s)
	}
	assert.Contains(t, CountedBody(1, "/a\nb", "x"), `cgroup /a\x0ab`)
	assert.Contains(t, VictimCmdlineSentence("sh -c \x1b[2Jrm\x00x", time.Second), `"sh -c \x1b[2Jrm\x00x"`)
}
