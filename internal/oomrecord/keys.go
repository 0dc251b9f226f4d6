// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package oomrecord is the collector's schema for an OOM kill: the
// attributes of the linux.oom_kill record (metadata.yaml's
// events.linux.oom_kill.attributes, in that order) and the resource keys,
// each with where its value comes from in an oomreport.Report. The
// receiver's log records and `oomsight explain --format json` both render
// through it, so their keys are the same; oomreport itself knows only the
// kernel's report. To add an attribute: add it to metadata.yaml (make
// generate) and to the table below; TestKeysMatchMetadata holds the two
// together.
package oomrecord // import "github.com/oomsight/oomsight/internal/oomrecord"

import (
	"github.com/oomsight/oomsight/internal/identity"
	"github.com/oomsight/oomsight/internal/oomreport"
)

// Keys the receiver sets itself: no report tells them.
const (
	// TaskMemcgKey is the victim's cgroup (also set on counter-based
	// records, which have no report).
	TaskMemcgKey = "linux.oom.task_memcg"
	// TaskMemcgInferredKey marks a victim's cgroup taken from the oom_kill
	// counters, not from the kernel's report.
	TaskMemcgInferredKey = "linux.oom.task_memcg.inferred"
	// CountedKillsKey is the number of kills a counter-based record
	// stands for.
	CountedKillsKey = "linux.oom.counted_kills"
	// HistoryKey is the limiting cgroup's flight recorder.
	HistoryKey = "cgroup.memory.history"
	// ContainerSurvivedKey tells whether the victim's container kept
	// running after the kill (package survival); absent when unknown.
	ContainerSurvivedKey = "linux.oom.container.survived"
	// ProcessesKey and the keys after it are the process snapshot taken
	// nearest before the kill (package procsnap): its processes, the cgroup
	// it is of, its time (unix ms), the processes left out and those not
	// visible; VictimCmdlineKey is the victim's command line from it.
	ProcessesKey        = "linux.oom.processes"
	ProcessesCgroupKey  = "linux.oom.processes.cgroup"
	ProcessesTimeKey    = "linux.oom.processes.time"
	ProcessesOmittedKey = "linux.oom.processes.omitted"
	ProcessesHiddenKey  = "linux.oom.processes.hidden"
	VictimCmdlineKey    = "linux.oom.victim.cmdline"
)

// Key is one attribute of the record.
type Key struct {
	Name string
	// Type is its metadata.yaml type: int, string, bool, map or slice.
	Type string
	// Bytes: an amount in bytes (the text form adds units).
	Bytes bool
	// get returns the value a report gives, and whether it tells it; nil
	// for the keys only the receiver sets.
	get func(r *oomreport.Report, o Options) (any, bool)
}

// ReceiverOnly tells whether only the receiver sets the key.
func (k Key) ReceiverOnly() bool { return k.get == nil }

func str(f func(r *oomreport.Report) string) func(*oomreport.Report, Options) (any, bool) {
	return func(r *oomreport.Report, _ Options) (any, bool) {
		v := f(r)
		return v, v != ""
	}
}

func num(f func(r *oomreport.Report) *int64) func(*oomreport.Report, Options) (any, bool) {
	return func(r *oomreport.Report, _ Options) (any, bool) {
		v := f(r)
		if v == nil {
			return nil, false
		}
		return *v, true
	}
}

// Attributes is the record's attribute table, in metadata.yaml's order.
var Attributes = []Key{
	{Name: "process.pid", Type: "int", get: func(r *oomreport.Report, _ Options) (any, bool) { return int64(r.PID), true }},
	{Name: "process.executable.name", Type: "string", get: str(func(r *oomreport.Report) string { return r.Comm })},
	{Name: "process.user.id", Type: "int", get: num(func(r *oomreport.Report) *int64 { return r.UID })},
	{Name: "linux.oom.constraint", Type: "string", get: str(func(r *oomreport.Report) string { return r.Constraint })},
	// Present when the report tells the kind of OOM.
	{Name: "linux.oom.global", Type: "bool", get: func(r *oomreport.Report, _ Options) (any, bool) {
		return r.Global, r.Constraint != "" || r.Prefix != "" || r.Global
	}},
	{Name: "linux.oom.memcg", Type: "string", get: str(func(r *oomreport.Report) string { return r.Memcg })},
	{Name: "linux.oom.memcg.inferred", Type: "bool", get: func(r *oomreport.Report, _ Options) (any, bool) { return true, r.MemcgInferred }},
	{Name: TaskMemcgKey, Type: "string", get: str(func(r *oomreport.Report) string { return r.TaskMemcg })},
	{Name: TaskMemcgInferredKey, Type: "bool"},
	{Name: CountedKillsKey, Type: "int"},
	{Name: "linux.oom.trigger.name", Type: "string", get: str(func(r *oomreport.Report) string { return r.TriggerName })},
	{Name: "linux.oom.trigger.pid", Type: "int", get: num(func(r *oomreport.Report) *int64 { return r.TriggerPID })},
	{Name: "linux.oom.gfp_mask", Type: "string", get: str(func(r *oomreport.Report) string { return r.GFPMask })},
	{Name: "linux.oom.order", Type: "int", get: num(func(r *oomreport.Report) *int64 { return r.Order })},
	{Name: "linux.oom.victim.total_vm", Type: "int", Bytes: true, get: num(func(r *oomreport.Report) *int64 { return r.TotalVM })},
	{Name: "linux.oom.victim.anon_rss", Type: "int", Bytes: true, get: num(func(r *oomreport.Report) *int64 { return r.AnonRSS })},
	{Name: "linux.oom.victim.file_rss", Type: "int", Bytes: true, get: num(func(r *oomreport.Report) *int64 { return r.FileRSS })},
	{Name: "linux.oom.victim.shmem_rss", Type: "int", Bytes: true, get: num(func(r *oomreport.Report) *int64 { return r.ShmemRSS })},
	{Name: "linux.oom.victim.pgtables", Type: "int", Bytes: true, get: num(func(r *oomreport.Report) *int64 { return r.PgTables })},
	{Name: "linux.oom.victim.oom_score_adj", Type: "int", get: num(func(r *oomreport.Report) *int64 { return r.OOMScoreAdj })},
	{Name: "linux.oom.memcg.usage", Type: "int", Bytes: true, get: num(func(r *oomreport.Report) *int64 { return r.MemcgUsage })},
	{Name: "linux.oom.memcg.limit", Type: "int", Bytes: true, get: num(func(r *oomreport.Report) *int64 { return r.MemcgLimit })},
	{Name: "linux.oom.memcg.failcnt", Type: "int", get: num(func(r *oomreport.Report) *int64 { return r.MemcgFailcnt })},
	{Name: "linux.oom.memcg.memsw.usage", Type: "int", Bytes: true, get: num(func(r *oomreport.Report) *int64 { return r.MemswUsage })},
	{Name: "linux.oom.memcg.memsw.limit", Type: "int", Bytes: true, get: num(func(r *oomreport.Report) *int64 { return r.MemswLimit })},
	{Name: "linux.oom.memcg.swap.usage", Type: "int", Bytes: true, get: num(func(r *oomreport.Report) *int64 { return r.SwapUsage })},
	{Name: "linux.oom.memcg.swap.limit", Type: "int", Bytes: true, get: num(func(r *oomreport.Report) *int64 { return r.SwapLimit })},
	{Name: "linux.oom.memcg.kmem.usage", Type: "int", Bytes: true, get: num(func(r *oomreport.Report) *int64 { return r.KmemUsage })},
	{Name: "linux.oom.memcg.kmem.limit", Type: "int", Bytes: true, get: num(func(r *oomreport.Report) *int64 { return r.KmemLimit })},
	{Name: "linux.oom.memcg.stat", Type: "map", get: func(r *oomreport.Report, _ Options) (any, bool) { return r.MemcgStat, len(r.MemcgStat) > 0 }},
	{Name: "linux.oom.tasks", Type: "slice", get: func(r *oomreport.Report, o Options) (any, bool) {
		if len(r.Tasks) == 0 || r.TasksElsewhere {
			return nil, false
		}
		rows, _ := topTasks(r.Tasks, o.maxTasks())
		tasks := make([]map[string]any, len(rows))
		for i, t := range rows {
			tasks[i] = map[string]any{"pid": t.PID, "name": t.Name, "rss": t.RSS, "oom_score_adj": t.OOMScoreAdj}
		}
		return tasks, true
	}},
	{Name: "linux.oom.tasks.omitted", Type: "int", get: func(r *oomreport.Report, o Options) (any, bool) {
		if len(r.Tasks) == 0 || r.TasksElsewhere {
			return nil, false
		}
		// The assembler may have kept fewer rows already (its own cap).
		_, omitted := topTasks(r.Tasks, o.maxTasks())
		omitted += r.TasksOmitted
		return int64(omitted), omitted > 0
	}},
	{Name: ProcessesKey, Type: "slice"},
	{Name: ProcessesCgroupKey, Type: "string"},
	{Name: ProcessesTimeKey, Type: "int"},
	{Name: ProcessesOmittedKey, Type: "int"},
	{Name: ProcessesHiddenKey, Type: "int"},
	{Name: VictimCmdlineKey, Type: "string"},
	{Name: "linux.oom.group_kill", Type: "bool", get: func(r *oomreport.Report, _ Options) (any, bool) { return r.GroupKill, true }},
	{Name: "linux.oom.shared_with.pid", Type: "int", get: num(func(r *oomreport.Report) *int64 { return r.SharedWith })},
	{Name: "linux.oom.cause", Type: "string", get: func(r *oomreport.Report, _ Options) (any, bool) {
		if r.Cause == "" {
			return oomreport.CauseUnknown, true
		}
		return r.Cause, true
	}},
	{Name: "linux.kmsg.seq", Type: "int", get: func(r *oomreport.Report, _ Options) (any, bool) {
		if r.Seq == nil {
			return nil, false
		}
		return int64(*r.Seq & (1<<63 - 1)), true // kmsg sequence numbers are far below 2^63
	}},
	{Name: ContainerSurvivedKey, Type: "bool"},
	{Name: HistoryKey, Type: "map"},
}

// ResourceKeys are the keys that describe the victim's cgroup. The receiver
// puts them on the record's resource, exactly as on that cgroup's metrics,
// so that records and metrics join on cgroup.path; JSON output has them
// after the attributes.
var ResourceKeys = []Key{
	{Name: "cgroup.path", Type: "string", get: str(func(r *oomreport.Report) string { return r.TaskMemcg })},
	{Name: "k8s.pod.uid", Type: "string", get: str(func(r *oomreport.Report) string { return identity.FromPath(r.TaskMemcg).PodUID })},
	{Name: "k8s.pod.qos_class", Type: "string", get: str(func(r *oomreport.Report) string { return identity.FromPath(r.TaskMemcg).QOSClass })},
	{Name: "container.id", Type: "string", get: str(func(r *oomreport.Report) string { return identity.FromPath(r.TaskMemcg).ContainerID })},
	{Name: "container.runtime.name", Type: "string", get: str(func(r *oomreport.Report) string { return identity.FromPath(r.TaskMemcg).Runtime })},
}

// IsBytes tells whether the attribute key holds an amount in bytes.
func IsBytes(key string) bool {
	for _, k := range Attributes {
		if k.Name == key {
			return k.Bytes
		}
	}
	return false
}
