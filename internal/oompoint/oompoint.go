// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package oompoint turns a kernel OOM report into the data point of the
// memory cgroup whose limit was hit, as the kernel saw it at the kill: the
// closing point of a cgroup the sampler never read at its limit (created
// and killed between two passes, or reported after its series closed).
// It is pure: a report comes in, a sample goes out.
//
// The numbers of a report (the "memory: usage …, limit …, failcnt …" line
// and the "Memory cgroup stats for" dump) are those of the cgroup whose
// limit was hit (oom_memcg), not of the victim's (task_memcg) when they
// differ: the point is the limiting cgroup's. The victim's cgroup gets no
// point from the report — its usage is not in it, and the kill line's
// rss is the victim process's, not its cgroup's — only its record count
// (cgroup.memory.oom_kill.records), as for every kill.
package oompoint // import "github.com/oomsight/oomsight/internal/oompoint"

import (
	"time"

	"github.com/oomsight/oomsight/internal/cgroupfs"
	"github.com/oomsight/oomsight/internal/oomreport"
)

// Point is what a report tells of the limiting cgroup at the kill.
type Point struct {
	// Path is the cgroup whose limit was hit, as the kernel printed it.
	Path string
	// Sample holds usage, limit, the stat dump's fields (cgroupfs
	// SetStatDump), the working set and, on v1, failcnt and the kmem and
	// memory+swap counters; v2 the swap counter. Time is the kill's.
	Sample cgroupfs.Sample
	// Peak is the usage at the kill: the highest the kernel let it be.
	Peak uint64
	// Key tells this OOM of the cgroup from another one: the members of a
	// memory.oom.group kill share one report of the limit (one Key).
	Key Key
}

// Key identifies one OOM of a cgroup: its usage, limit and failcnt as
// printed (a later OOM of the same cgroup has failed more charges).
type Key struct {
	Usage, Limit, Failcnt int64
}

// FromReport returns the point of the report's limiting cgroup, on a
// hierarchy of version v (the failcnt a v2 kernel prints is its page
// counter's, not memory.events' max that cgroup.memory.failcnt counts
// there, so it is left out on v2). now dates a report without a wall
// clock. ok is false when the report does not tell: a system-wide OOM
// (no cgroup's counters), no limiting cgroup, or no usage line (the
// kernel rate-limited the report's header away).
func FromReport(r *oomreport.Report, v cgroupfs.Version, now time.Time) (Point, bool) {
	if r.Global || r.Memcg == "" || r.MemcgUsage == nil || *r.MemcgUsage < 0 {
		return Point{}, false
	}
	p := Point{Path: r.Memcg, Peak: uint64(*r.MemcgUsage)}
	s := &p.Sample
	s.Time = r.Time
	if s.Time.IsZero() {
		s.Time = now
	}
	s.Set(cgroupfs.Usage, p.Peak)
	p.Key.Usage = *r.MemcgUsage
	if set(s, cgroupfs.Limit, r.MemcgLimit) {
		p.Key.Limit = *r.MemcgLimit
	}
	if r.MemcgFailcnt != nil {
		p.Key.Failcnt = *r.MemcgFailcnt
	}
	switch v {
	case cgroupfs.V1:
		set(s, cgroupfs.Failcnt, r.MemcgFailcnt)
		set(s, cgroupfs.Kernel, r.KmemUsage)
		set(s, cgroupfs.MemswUsage, r.MemswUsage)
		set(s, cgroupfs.MemswLimit, r.MemswLimit)
	case cgroupfs.V2:
		set(s, cgroupfs.Swap, r.SwapUsage)
		set(s, cgroupfs.SwapLimit, r.SwapLimit)
	}
	if fresh(r.MemcgStat, p.Peak) {
		s.SetStatDump(r.MemcgStat)
	}
	return p, true
}

// fresh tells whether a stat dump accounts for the usage it comes with:
// its anonymous and file pages (v1 total_rss + total_cache, v2 anon +
// file), the bulk of any usage, make at least half of it. The kernel
// prints the dump without flushing the per-CPU deltas of its statistics
// first, and a captured 6.18 v1 report of a pod-level limit (48 MiB used)
// printed total_rss 0 and total_cache 0 (testdata/oom/v1-pod-limit.kmsg):
// such a dump would put anon 0 on a cgroup killed for its anonymous
// memory, so its fields are left out and the counters go alone.
func fresh(stat map[string]int64, usage uint64) bool {
	var bulk int64
	switch cgroupfs.FormOf(stat) {
	case cgroupfs.DumpV1:
		bulk = stat["total_rss"] + stat["total_cache"]
	case cgroupfs.DumpV2:
		bulk = stat["anon"] + stat["file"]
	default:
		return false
	}
	return bulk >= 0 && uint64(bulk) >= usage/2
}

// set stores *v as f when the report told it (not nil, not negative).
func set(s *cgroupfs.Sample, f cgroupfs.Field, v *int64) bool {
	if v == nil || *v < 0 {
		return false
	}
	s.Set(f, uint64(*v))
	return true
}
