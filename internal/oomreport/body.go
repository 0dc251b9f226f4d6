// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oomreport // import "github.com/oomsight/oomsight/internal/oomreport"

import (
	"fmt"
	"strings"

	"github.com/oomsight/oomsight/internal/cgpath"
	"github.com/oomsight/oomsight/internal/identity"
	"github.com/oomsight/oomsight/internal/printable"
)

// causeWords names a cause in a sentence.
var causeWords = map[string]string{
	CauseAnon:   "anonymous memory",
	CauseShmem:  "shared memory (tmpfs, /dev/shm)",
	CauseFile:   "page cache",
	CauseKernel: "kernel memory",
}

// Body is one sentence a person reads first: who was killed where, which
// limit was hit and how big it was, what filled it, and who triggered it
// when that was another task. Every part is left out when the report does
// not tell it, so a lone kill line still reads as a sentence. The names
// and paths in it are the workload's choice: they are written through
// printable.Escape, so that the sentence is safe on a terminal (the
// report's fields keep their exact bytes).
func (r *Report) Body() string {
	var b strings.Builder
	b.WriteString("Process ")
	b.WriteString(r.victim())
	if where := Place(r.TaskMemcg); where != "" {
		b.WriteString(" in ")
		b.WriteString(where)
	}
	b.WriteString(" was OOM-killed")
	if r.GroupKill {
		b.WriteString(" with the rest of its cgroup (memory.oom.group)")
	}
	if r.SharedWith != nil {
		fmt.Fprintf(&b, " with pid %d, whose memory it shared,", *r.SharedWith)
	}
	b.WriteString(" because ")
	b.WriteString(r.limitClause())
	if what := r.causeClause(); what != "" {
		b.WriteString(what)
	}
	if r.triggeredByOther() {
		fmt.Fprintf(&b, "; the allocation that hit the limit came from %s", r.trigger())
	}
	b.WriteString(".")
	return b.String()
}

func (r *Report) victim() string {
	if r.Comm == "" {
		return fmt.Sprintf("pid %d", r.PID)
	}
	return fmt.Sprintf("%s (pid %d)", printable.Escape(r.Comm), r.PID)
}

func (r *Report) trigger() string {
	name := printable.Escape(r.TriggerName)
	switch {
	case r.TriggerPID == nil:
		return name
	case r.TriggerName == "":
		return fmt.Sprintf("pid %d", *r.TriggerPID)
	}
	if pid, ok := r.threadOf(*r.TriggerPID, r.TriggerName); ok {
		return fmt.Sprintf("%s (pid %d, thread %d)", name, pid, *r.TriggerPID)
	}
	return fmt.Sprintf("%s (pid %d)", name, *r.TriggerPID)
}

// threadOf finds the process whose thread tid is: the kernel names the
// allocating task by its thread id, which the task table (one row per
// process) lists only for a single-threaded process. When tid is not in the
// table and exactly one row has the task's name, that row is its process.
func (r *Report) threadOf(tid int64, name string) (int64, bool) {
	if t := r.table; t != nil && t.triggerName == name {
		// The table counted the rows of that name as they came.
		return t.triggerPID, !t.listed(tid) && t.triggerRows == 1
	}
	var pid int64
	n := 0
	for _, t := range r.Tasks {
		if t.PID == tid {
			return 0, false
		}
		if t.Name == name {
			pid, n = t.PID, n+1
		}
	}
	return pid, n == 1
}

// triggeredByOther tells whether another task triggered the kill. The
// trigger pid may be a thread of the victim; a thread id that the task
// table does not list as a process of its own, with the victim's name, is
// taken to be the victim's thread.
func (r *Report) triggeredByOther() bool {
	if r.TriggerPID == nil {
		return r.TriggerName != "" && r.Comm != "" && r.TriggerName != r.Comm
	}
	if *r.TriggerPID == int64(r.PID) {
		return false
	}
	if r.TriggerName != "" && r.TriggerName != r.Comm {
		return true
	}
	if r.table != nil {
		return r.table.listed(*r.TriggerPID)
	}
	return inTasks(r.Tasks, *r.TriggerPID)
}

// Place names where a cgroup is, for a sentence: pod and container by
// short id when the path tells them ("container 2260b35b008a of pod
// dfc377c9"), else the path itself ("cgroup /system.slice"), escaped for
// display (printable.Escape).
func Place(path string) string {
	return printable.Escape(place(path))
}

func place(path string) string {
	id := identity.FromPath(path)
	switch {
	case id.PodUID != "" && id.ContainerID != "":
		return fmt.Sprintf("container %s of pod %s", short(id.ContainerID, 12), short(id.PodUID, 8))
	case id.PodUID != "":
		return "pod " + short(id.PodUID, 8)
	case id.ContainerID != "":
		return "container " + short(id.ContainerID, 12)
	case path != "":
		return "cgroup " + path
	}
	return ""
}

func short(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// limitClause says which limit was hit: the whole machine's memory, the
// container's own limit, its pod's (the memcg is an ancestor with the pod
// identity and no container), or another cgroup's; and which of the
// cgroup's limits, memory or v1's memory+swap.
func (r *Report) limitClause() string {
	limit, kind := r.MemcgLimit, "memory"
	if r.memswHit() {
		limit, kind = r.MemswLimit, "memory+swap"
	}
	size := ""
	if limit != nil && !r.Global {
		size = " " + Bytes(*limit)
	}
	switch {
	case r.Global:
		if r.RAM != nil {
			return fmt.Sprintf("the machine ran out of memory (%s of RAM, system-wide OOM)", Bytes(*r.RAM))
		}
		return "the machine ran out of memory (system-wide OOM)"
	case r.Memcg == "":
		if r.Constraint != "" && r.Constraint != "CONSTRAINT_MEMCG" {
			return fmt.Sprintf("memory ran out under %s", printable.Escape(r.Constraint))
		}
		if r.Constraint == "" && r.Prefix == "" && r.MemcgLimit == nil && r.MemcgUsage == nil {
			return "memory ran out (the log does not tell which limit)"
		}
		return fmt.Sprintf("a cgroup's%s %s limit was hit", size, kind)
	case r.MemcgInferred:
		return fmt.Sprintf("a cgroup's%s %s limit was hit, probably that of %s (inferred: the report is cut before the line that names the limiting cgroup, and this is the first cgroup whose stats it shows)", size, kind, printable.Escape(r.Memcg))
	case r.TaskMemcg == "" || r.Memcg == r.TaskMemcg:
		id := identity.FromPath(r.Memcg)
		owner := "its cgroup's own"
		switch {
		case id.ContainerID != "":
			owner = "its container's own"
		case id.PodUID != "":
			owner = "its pod's"
		}
		return fmt.Sprintf("%s%s %s limit was hit", owner, size, kind)
	case cgpath.IsAncestor(r.Memcg, r.TaskMemcg):
		if id := identity.FromPath(r.Memcg); id.PodUID != "" && id.ContainerID == "" {
			// Its user set container limits only; the kubelet put their sum
			// on the pod, where the pause container's and every sibling's
			// pages count too, so the pod can fill first even with one
			// limited container.
			return fmt.Sprintf("its pod's%s %s limit was hit before the container's own (Kubernetes limits the pod to the sum of its containers' limits, and all the pod's memory counts there)", size, kind)
		}
		return fmt.Sprintf("the%s %s limit of its ancestor cgroup %s was hit", size, kind, printable.Escape(r.Memcg))
	}
	return fmt.Sprintf("the%s %s limit of cgroup %s was hit", size, kind, printable.Escape(r.Memcg))
}

// memswHit tells whether v1's memory+swap limit, not the memory limit, is
// the one the cgroup ran into: memory+swap at its limit, memory below its
// own (or unlimited).
func (r *Report) memswHit() bool {
	if r.MemswUsage == nil || r.MemswLimit == nil || *r.MemswUsage < *r.MemswLimit {
		return false
	}
	return r.MemcgLimit == nil || r.MemcgUsage == nil || *r.MemcgUsage < *r.MemcgLimit
}

func (r *Report) causeClause() string {
	words, ok := causeWords[r.Cause]
	if !ok || r.CauseBytes == nil {
		return ""
	}
	if r.causeFromVictim {
		return fmt.Sprintf("; the victim held %s of %s", Bytes(*r.CauseBytes), words)
	}
	return fmt.Sprintf(", filled mostly by %s of %s", Bytes(*r.CauseBytes), words)
}

// Bytes formats a byte count in binary units with at most one decimal
// ("48 MiB", "44.5 MiB", "512 B").
func Bytes(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), -1
	for (v >= unit || v <= -unit) && i < 5 {
		v /= unit
		i++
	}
	s := strings.TrimSuffix(fmt.Sprintf("%.1f", v), ".0")
	return s + " " + string("KMGTPE"[i]) + "iB"
}
