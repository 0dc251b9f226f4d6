// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgroupfs // import "github.com/oomsight/oomsight/internal/cgroupfs"

import "strings"

// statKey is what one memory.stat key is to a Sample: the field it sets
// (set false: none), whether it adds to Unreclaimable (unrec), and whether
// it is the anonymous-memory key whose presence makes Unreclaimable known
// (anchor). The same mapping serves the files read (v1Stat, v2Stat) and
// the stat dump of a kernel OOM report (SetStatDump), so that a point made
// from a report means what a sampled one means.
type statKey struct {
	f                  Field
	set, unrec, anchor bool
}

// v1StatKey maps the hierarchical total_* keys of v1 memory.stat (the
// cgroup's own keys map to nothing).
func v1StatKey(k []byte) statKey {
	switch string(k) {
	case "total_rss": // UnreclaimableV1
		return statKey{f: Anon, set: true, unrec: true, anchor: true}
	case "total_cache":
		return statKey{f: File, set: true}
	case "total_active_file":
		return statKey{f: ActiveFile, set: true}
	case "total_inactive_file":
		return statKey{f: InactiveFile, set: true}
	case "total_shmem": // UnreclaimableV1
		return statKey{f: Shmem, set: true, unrec: true}
	case "total_mapped_file":
		return statKey{f: MappedFile, set: true}
	case "total_swap":
		return statKey{f: Swap, set: true}
	case "total_pgfault":
		return statKey{f: PgFault, set: true}
	case "total_pgmajfault":
		return statKey{f: PgMajFault, set: true}
	case "total_workingset_refault_anon":
		return statKey{f: RefaultAnon, set: true}
	case "total_workingset_refault_file":
		return statKey{f: RefaultFile, set: true}
	}
	return statKey{}
}

// v2StatKey maps the keys of v2 memory.stat.
func v2StatKey(k []byte) statKey {
	switch string(k) {
	case "anon": // UnreclaimableV2
		return statKey{f: Anon, set: true, unrec: true, anchor: true}
	// The rest of UnreclaimableV2 (sock and shmem below).
	case "slab_unreclaimable", "kernel_stack", "pagetables", "percpu":
		return statKey{unrec: true}
	case "file":
		return statKey{f: File, set: true}
	case "active_file":
		return statKey{f: ActiveFile, set: true}
	case "inactive_file":
		return statKey{f: InactiveFile, set: true}
	case "shmem":
		return statKey{f: Shmem, set: true, unrec: true}
	case "file_mapped":
		return statKey{f: MappedFile, set: true}
	case "kernel":
		return statKey{f: Kernel, set: true}
	case "sock":
		return statKey{f: Sock, set: true, unrec: true}
	case "slab":
		return statKey{f: Slab, set: true}
	case "pgfault":
		return statKey{f: PgFault, set: true}
	case "pgmajfault":
		return statKey{f: PgMajFault, set: true}
	case "workingset_refault_anon":
		return statKey{f: RefaultAnon, set: true}
	// Before 5.9 only file pages had workingset tracking, under the
	// unsuffixed keys.
	case "workingset_refault_file", "workingset_refault":
		return statKey{f: RefaultFile, set: true}
	case "workingset_activate_anon":
		return statKey{f: ActivateAnon, set: true}
	case "workingset_activate_file", "workingset_activate":
		return statKey{f: ActivateFile, set: true}
	case "pgscan":
		return statKey{f: PgScan, set: true}
	case "pgsteal":
		return statKey{f: PgSteal, set: true}
	}
	return statKey{}
}

// statSum adds up Unreclaimable over the keys of one stat file or dump.
type statSum struct {
	unrec    uint64
	anchored bool
}

func (st *statSum) add(s *Sample, k statKey, v uint64) {
	if k.set {
		s.Set(k.f, v)
	}
	if k.unrec {
		st.unrec += v
	}
	st.anchored = st.anchored || k.anchor
}

// done sets Unreclaimable when the anonymous key was there.
func (st *statSum) done(s *Sample) {
	if st.anchored {
		s.Set(Unreclaimable, st.unrec)
	}
}

// StatDumpForm is the key set of a memory cgroup stat dump.
type StatDumpForm uint8

// The forms a kernel prints in an OOM report's "Memory cgroup stats for"
// dump.
const (
	// DumpUnknown: neither of the forms below, such as the one-line dump
	// of kernels up to 5.2 ("cache:0KB rss:…KB"), which holds the
	// limiting cgroup's own pages, not its subtree's: no field is taken
	// from it.
	DumpUnknown StatDumpForm = iota
	// DumpV1: cgroup v1 keys with the hierarchical total_* ones (6.4+ on
	// v1).
	DumpV1
	// DumpV2: memory.stat's v2 keys (cgroup v2, and 5.3–6.3 on v1 too),
	// hierarchical.
	DumpV2
)

// FormOf tells the form of a stat dump from its keys: any total_* key is
// v1's (whose own keys share names with v2's: inactive_file, shmem), else
// an anon key is v2's.
func FormOf(stat map[string]int64) StatDumpForm {
	v2 := false
	for k := range stat {
		if strings.HasPrefix(k, "total_") {
			return DumpV1
		}
		v2 = v2 || k == "anon"
	}
	if v2 {
		return DumpV2
	}
	return DumpUnknown
}

// SetStatDump sets the fields of s that the stat dump of a kernel OOM
// report tells, with the same keys as a read of memory.stat (v1StatKey,
// v2StatKey), and the working set from s's Usage (set that first): the
// point a report gives means what a sampled one means. A negative value
// (never printed by a kernel) is left out; so is every key of a dump of
// unknown form (FormOf).
func (s *Sample) SetStatDump(stat map[string]int64) {
	var key func([]byte) statKey
	switch FormOf(stat) {
	case DumpV1:
		key = v1StatKey
	case DumpV2:
		key = v2StatKey
	default:
		return
	}
	var st statSum
	for k, v := range stat {
		if v < 0 {
			continue
		}
		st.add(s, key([]byte(k)), uint64(v))
	}
	st.done(s)
	s.deriveWorkingSet()
}
