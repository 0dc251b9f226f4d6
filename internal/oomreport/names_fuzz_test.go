// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oomreport

import (
	"strings"
	"testing"
)

// maxCommBytes is what a task name can hold: TASK_COMM_LEN 16 less the
// NUL that ends it (a name never holds a NUL).
const maxCommBytes = 15

// commOfBytes turns fuzz input into a name the kernel could print: cut at
// the first NUL and to 15 bytes, as set_task_comm does.
func commOfBytes(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	if len(b) > maxCommBytes {
		b = b[:maxCommBytes]
	}
	return string(b)
}

// addNameSeeds gives a fuzz target every byte value alone, each between
// two letters, and the hostile names of the table tests.
func addNameSeeds(f *testing.F) {
	for c := range 256 {
		f.Add([]byte{byte(c)})
		f.Add([]byte{'a', byte(c), 'b'})
	}
	for _, n := range hostileNames {
		f.Add([]byte(n))
	}
}

// FuzzKillLineName: the line classifier on the lines that print a name (the
// kill line, the oom-kill summary, a task row, the invoked line and the
// stack dump's header), one line each as a /dev/kmsg record gives it:
// whatever the name's bytes, the line is classified as the kernel printed
// it, with the pid and the name exact.
func FuzzKillLineName(f *testing.F) {
	addNameSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		name := commOfBytes(b)
		kill := "Memory cgroup out of memory: Killed process 1143 (" + name + ") total-vm:1288364kB, anon-rss:60888kB, file-rss:4kB, shmem-rss:844kB, UID:0 pgtables:200kB oom_score_adj:0"
		k, ok := parseKilled(kill, reKilled.FindStringSubmatch(kill))
		if !ok || k.pid != 1143 || k.comm != name || k.prefix != prefixMemcg || k.vals["anon-rss"] != 60888*1024 {
			t.Fatalf("kill line of %q: ok %v, %+v", name, ok, k)
		}
		m := reSumTail.FindStringSubmatch("oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/a,task_memcg=/a/b,task=" + name + ",pid=1143,uid=0")
		if len(m) < 4 || m[1] != "/a/b" || m[2] != name || m[3] != "1143" {
			t.Fatalf("summary of %q: %q", name, m)
		}
		row := "[   1143]     0  1143   322091    15434   204800        0             0 " + name
		cols := taskColumns("uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name")
		rm := reTaskRow.FindStringSubmatch(row)
		if rm == nil {
			t.Fatalf("task row of %q not matched", name)
		}
		task, ok, _ := parseTaskRow(cols, rm[1], rm[2], 4096)
		if !ok || task.PID != 1143 || task.Name != name || task.RSS != 15434*4096 {
			t.Fatalf("task row of %q: ok %v, %+v", name, ok, task)
		}
		if !isContextLine(row) || isKernelLine(row) {
			t.Fatalf("task row of %q: context %v, kernel line %v", name, isContextLine(row), isKernelLine(row))
		}
		im := reInvoked.FindStringSubmatch(name + " invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0")
		if len(im) < 2 || im[1] != name { // the kernel's words are longer than a name
			t.Fatalf("invoked line of %q: %q", name, im)
		}
		cm := reCPU.FindStringSubmatch("CPU: 0 PID: 1143 Comm: " + name + " Not tainted 6.1.0-56-cloud-amd64 #1  Debian 6.1.192-2")
		if len(cm) < 4 || cm[2] != "1143" || cm[3] != name {
			t.Fatalf("stack dump header of %q: %q", name, cm)
		}
	})
}

// FuzzAssemblerName: a whole real report (kernel 6.1, container-limit)
// whose victim has any name, read as the receiver reads /dev/kmsg and as
// explain reads it pasted: exactly one report, of pid 1143, with the name
// byte for byte, and the stat dump and task table still read.
func FuzzAssemblerName(f *testing.F) {
	addNameSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		name := commOfBytes(b)
		log := renamed(t, name)
		live := assembleKmsg(t, log)
		pasted, err := ReadAll(strings.NewReader(log))
		if err != nil {
			t.Fatal(err)
		}
		for _, reps := range [][]*Report{live, pasted} {
			if len(reps) != 1 {
				t.Fatalf("name %q: %d reports", name, len(reps))
			}
			r := reps[0]
			if r.PID != 1143 || r.Comm != name || r.TriggerName != name || len(r.Tasks) != 1 || r.Tasks[0].Name != name || len(r.MemcgStat) != 47 {
				t.Fatalf("name %q: pid %d comm %q trigger %q tasks %+v, %d stat keys", name, r.PID, r.Comm, r.TriggerName, r.Tasks, len(r.MemcgStat))
			}
		}
	})
}
