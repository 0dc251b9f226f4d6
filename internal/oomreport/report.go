// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package oomreport turns the kernel's OOM-killer reports into one
// structured report per killed process.
//
// The kernel prints a report as many log records (the "invoked
// oom-killer" line, a stack, the memory cgroup's counters and stat dump,
// the task table, the oom-kill: summary and the "Killed process" line),
// interleaved with unrelated records and partly rate-limited away. The
// Assembler keeps the context of the report in progress and completes it at
// each kill line, so that the kill carries everything the kernel said about
// it. The package is pure: records come in, reports go out. The text forms
// of the kernel log (dmesg, syslog, journalctl, raw /dev/kmsg dumps) become
// the same records in kmsg/text, which finds the report's lines by Lines;
// ReadAll reads such a log whole.
package oomreport // import "github.com/oomsight/oomsight/internal/oomreport"

import "time"

// Report is what the kernel said about one killed process. Optional values
// are pointers or empty strings: nil or "" means the report did not tell
// (typically because the kernel rate-limited the header of the report).
type Report struct {
	// Seq, Monotonic and Time are those of the kill line (Time is zero when
	// the input has no wall clock).
	Seq       *uint64
	Monotonic *time.Duration
	Time      time.Time
	// TimeZoneUnknown: Time came from a stamp without a zone (dmesg -T,
	// syslog) and no UTC offset was given; its fields are the logging
	// machine's local wall clock, held in UTC.
	TimeZoneUnknown bool

	// The victim.
	PID  int
	Comm string
	UID  *int64

	// Constraint is the kernel's CONSTRAINT_* name; Global is true for a
	// system-wide OOM (meaningful when Constraint or Prefix is set).
	Constraint string
	Global     bool
	// Prefix is the kill line's prefix as printed ("Memory cgroup out of
	// memory", "Out of memory"); empty on kernels that print none.
	Prefix string
	// Memcg is the cgroup whose limit was hit; TaskMemcg the victim's.
	Memcg     string
	TaskMemcg string
	// MemcgInferred: the report was cut before the lines that name the
	// limiting cgroup, and Memcg is the first stat dump's cgroup, which
	// kernels up to 5.2 print for the limiting cgroup and then for each of
	// its descendants.
	MemcgInferred bool

	// The allocating task that ran into the limit (may be a thread id).
	TriggerName string
	TriggerPID  *int64
	GFPMask     string
	Order       *int64

	// Victim sizes from the kill line, in bytes.
	TotalVM, AnonRSS, FileRSS, ShmemRSS, PgTables *int64
	OOMScoreAdj                                   *int64

	// Memcg counters: usage and limit in bytes, failcnt a count. A limit
	// the kernel printed as its counter maximum (no limit) is nil.
	MemcgUsage, MemcgLimit, MemcgFailcnt *int64
	// MemswUsage and MemswLimit are v1's memory+swap counter, SwapUsage
	// and SwapLimit v2's swap counter, KmemUsage and KmemLimit v1's kmem
	// counter (the kernel-memory amount when the v1 stat dump has none);
	// bytes.
	MemswUsage, MemswLimit *int64
	SwapUsage, SwapLimit   *int64
	KmemUsage, KmemLimit   *int64
	// MemcgStat is the "Memory cgroup stats for" dump with the keys as
	// printed (v1 or v2); the ≤4.19 one-line "cache:0KB" form in bytes.
	MemcgStat map[string]int64
	// RAM is the machine's RAM in bytes ("N pages RAM", global OOMs).
	RAM *int64

	// Tasks are the task table's rows the report keeps: the largest by
	// rss, in the kernel's order (WithMaxTasks); TasksOmitted counts the
	// rest. The reports of one group kill share them: read only.
	Tasks        []Task
	TasksOmitted int
	// table indexes every row of the task table (membership, the
	// victim's oom_score_adj); nil for a report built by hand.
	table *taskTable
	// TasksElsewhere marks a memory.oom.group member after the first
	// victim: the table is the group's, carried by the first victim's
	// report, not repeated on every member's.
	TasksElsewhere bool
	// GroupKill marks a kill of a whole cgroup because of memory.oom.group.
	GroupKill bool
	// SharedWith is the victim whose memory this process shared, killed
	// with it ("Kill process P (comm) sharing same memory", up to 4.x).
	SharedWith *int64

	// Cause says what filled the limit: anon, shmem, file, kernel or
	// unknown; CauseBytes how much of it there was.
	Cause      string
	CauseBytes *int64
	// causeFromVictim: the memcg did not tell (no or empty stat dump), so
	// Cause and CauseBytes describe the victim's own memory.
	causeFromVictim bool
}

// Task is one row of the kernel's task table.
type Task struct {
	PID         int64
	Name        string
	RSS         int64 // bytes
	OOMScoreAdj int64
}

// Cause values.
const (
	CauseAnon    = "anon"
	CauseShmem   = "shmem"
	CauseFile    = "file"
	CauseKernel  = "kernel"
	CauseUnknown = "unknown"
)

// DefaultPageSize is the task table's unit unless told otherwise (see
// WithPageSize): 4 KiB, the page of amd64 and of 4K-page arm64 kernels.
const DefaultPageSize = 4096
