// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgroupfs // import "github.com/oomsight/oomsight/internal/cgroupfs"

import "time"

// Field is one quantity read from a cgroup's memory files, independent of
// the cgroup version it came from.
type Field uint8

// The fields a Sample can hold. Byte amounts unless said otherwise.
const (
	Usage                  Field = iota // v1 memory.usage_in_bytes, v2 memory.current
	WorkingSet                          // Usage - InactiveFile, floored at 0
	Limit                               // absent when unlimited
	Peak                                // v1 memory.max_usage_in_bytes, v2 memory.peak: since the previous Read when Sample.PeakSinceRead, else the lifetime peak
	Anon                                // v1 total_rss, v2 anon
	File                                // v1 total_cache, v2 file
	ActiveFile                          // v1 total_active_file, v2 active_file
	InactiveFile                        // v1 total_inactive_file, v2 inactive_file
	Shmem                               // v1 total_shmem, v2 shmem
	Failcnt                             // count: v1 memory.failcnt, v2 memory.events max
	OOMKills                            // count: v1 memory.oom_control oom_kill, v2 memory.events oom_kill
	MappedFile                          // v1 total_mapped_file, v2 file_mapped
	Kernel                              // v1 memory.kmem.usage_in_bytes, v2 kernel
	Sock                                // v2 sock
	Slab                                // v2 slab
	Swap                                // v1 total_swap, v2 memory.swap.current
	PgFault                             // count of all page faults: v1 total_pgfault, v2 pgfault
	PgMajFault                          // count of major faults: v1 total_pgmajfault, v2 pgmajfault
	PressureSome                        // microseconds: v2 memory.pressure "some" total
	PressureFull                        // microseconds: v2 memory.pressure "full" total
	PeakLifetime                        // the cgroup's lifetime peak (v1 memory.max_usage_in_bytes unless reset, v2 memory.peak)
	EventsLow                           // count: v2 memory.events.local low
	EventsHigh                          // count: v2 memory.events.local high
	EventsOOM                           // count: v2 memory.events.local oom
	EventsOOMGroupKill                  // count: v2 memory.events.local oom_group_kill (5.17+)
	UnderOOM                            // 0 or 1: v1 memory.oom_control under_oom
	PressureSomeAvg10                   // hundredths of a percent: v2 memory.pressure "some" avg10
	PressureFullAvg10                   // hundredths of a percent: v2 memory.pressure "full" avg10
	RefaultAnon                         // count: v1 total_workingset_refault_anon, v2 workingset_refault_anon (5.9+)
	RefaultFile                         // count: v1 total_workingset_refault_file, v2 workingset_refault_file (workingset_refault before 5.9)
	ActivateAnon                        // count: v2 workingset_activate_anon (5.9+)
	ActivateFile                        // count: v2 workingset_activate_file (workingset_activate before 5.9)
	PgScan                              // count of pages scanned by reclaim: v2 pgscan
	PgSteal                             // count of pages reclaimed: v2 pgsteal
	High                                // v2 memory.high; absent when "max"
	Low                                 // v2 memory.low; absent when "max"
	Min                                 // v2 memory.min; absent when "max"
	SwapLimit                           // v2 memory.swap.max; absent when "max"
	MemswLimit                          // v1 memory.memsw.limit_in_bytes (memory + swap); absent when unlimited
	MemswUsage                          // v1 memory.memsw.usage_in_bytes (memory + swap)
	SwapEventsHigh                      // count: v2 memory.swap.events high
	SwapEventsMax                       // count: v2 memory.swap.events max, v1 memory.memsw.failcnt
	SwapEventsFail                      // count: v2 memory.swap.events fail
	TreeEventsLow                       // count: v2 memory.events low (this cgroup and its descendants)
	TreeEventsHigh                      // count: v2 memory.events high
	TreeEventsMax                       // count: v2 memory.events max
	TreeEventsOOM                       // count: v2 memory.events oom
	TreeEventsOOMKill                   // count: v2 memory.events oom_kill
	TreeEventsOOMGroupKill              // count: v2 memory.events oom_group_kill
	Unreclaimable                       // what only a kill frees: v1 total_rss + total_shmem; v2 anon + shmem + slab_unreclaimable + kernel_stack + pagetables + percpu + sock (see UnreclaimableV2)
	numFields
)

var fieldNames = [numFields]string{
	"usage", "working_set", "limit", "peak", "anon", "file", "active_file",
	"inactive_file", "shmem", "failcnt", "oom_kills", "mapped_file", "kernel",
	"sock", "slab", "swap", "pgfault", "pgmajfault", "pressure_some_us",
	"pressure_full_us", "peak_lifetime", "events_low", "events_high",
	"events_oom", "events_oom_group_kill", "under_oom", "pressure_some_avg10",
	"pressure_full_avg10", "refault_anon", "refault_file", "activate_anon",
	"activate_file", "pgscan", "pgsteal", "high", "low", "min", "swap_limit",
	"memsw_limit", "memsw_usage", "swap_events_high", "swap_events_max",
	"swap_events_fail", "tree_events_low", "tree_events_high",
	"tree_events_max", "tree_events_oom", "tree_events_oom_kill",
	"tree_events_oom_group_kill", "unreclaimable",
}

func (f Field) String() string {
	if f < numFields {
		return fieldNames[f]
	}
	return "unknown"
}

// Fields lists every field, in order.
func Fields() []Field {
	fs := make([]Field, numFields)
	for i := range fs {
		fs[i] = Field(i)
	}
	return fs
}

// Sample is one reading of a cgroup. A field the kernel did not provide (an
// old kernel, an unlimited limit, an unreadable file) is absent rather than
// zero, so that no wrong number is ever reported.
type Sample struct {
	Time time.Time
	// PeakSinceRead says that Peak is the highest usage since the previous
	// Read of this cgroup (the peak file is reset per read), not the
	// cgroup's lifetime peak.
	PeakSinceRead bool
	vals          [numFields]uint64
	has           uint64
}

// Get returns the value of f and whether it is present.
func (s *Sample) Get(f Field) (uint64, bool) {
	if f >= numFields || s.has&(1<<f) == 0 {
		return 0, false
	}
	return s.vals[f], true
}

// Set stores v as the value of f.
func (s *Sample) Set(f Field, v uint64) {
	if f >= numFields {
		return
	}
	s.vals[f] = v
	s.has |= 1 << f
}

// Reset clears every field, keeping the value usable for the next reading.
func (s *Sample) Reset() {
	*s = Sample{}
}

// deriveWorkingSet sets WorkingSet from Usage and InactiveFile the way
// kubelet and cAdvisor do, floored at 0 because the two are read at slightly
// different times.
func (s *Sample) deriveWorkingSet() {
	usage, ok := s.Get(Usage)
	if !ok {
		return
	}
	inactive, ok := s.Get(InactiveFile)
	if !ok {
		return
	}
	ws := uint64(0)
	if usage > inactive {
		ws = usage - inactive
	}
	s.Set(WorkingSet, ws)
}
