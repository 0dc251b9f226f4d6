// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

//go:build linux

package cgroupfs // import "github.com/oomsight/oomsight/internal/cgroupfs"

import "fmt"

// Optional selects memory files that are read only when a metric needs them,
// so that the default scrape reads as few files as possible.
type Optional uint16

// Optional files.
const (
	WithKernel   Optional = 1 << iota // v1 memory.kmem.usage_in_bytes (v2 reads kernel from memory.stat)
	WithSwap                          // v2 memory.swap.current (v1 reads total_swap from memory.stat)
	WithPressure                      // v2 memory.pressure
	// WithPeakReset resets v1 memory.max_usage_in_bytes after each Read
	// (opt-in: the reset is global, other readers see it too). v2 always
	// resets its own descriptor of memory.peak where the kernel allows it.
	WithPeakReset
	// WithLifetimePeak keeps the lifetime peak readable (PeakLifetime) when
	// the peak file is reset per read: v2 opens memory.peak a second time.
	WithLifetimePeak
	WithQoS        // v2 memory.high, memory.low, memory.min
	WithSwapLimit  // v2 memory.swap.max, v1 memory.memsw.limit_in_bytes
	WithSwapEvents // v2 memory.swap.events, v1 memory.memsw.failcnt
	WithMemswUsage // v1 memory.memsw.usage_in_bytes
	WithTreeEvents // v2 memory.events (hierarchical), next to memory.events.local
)

// fileSpec is one memory file of a cgroup version and how its contents
// become Sample fields.
type fileSpec struct {
	name     string
	optional Optional // 0: always read
	// required files make a cgroup without them unsampleable (the v2 root
	// cgroup has no memory.current).
	required bool
	// alt is read instead when the kernel has no file called name
	// (memory.events.local is 5.2+; before it, memory.events).
	alt string
	// peak marks the peak file, which Open may hold for writing so that
	// each Read resets it (see Cgroup.PeakResets).
	peak bool
	// counters marks the file of the failcnt and oom_kills counters that
	// Reader.Counters reads alone.
	counters bool
	// stat marks memory.stat, which Reader.Stat reads alone.
	stat bool
	// limit marks the limit files (memory.max and the other limit-like
	// files), which a LimitWatch lets Read skip while nobody wrote them.
	limit bool
	parse func(b []byte, s *Sample) error
}

// The file sets are fixed per version; the order is the read order.
var v1Files = []fileSpec{
	{name: "memory.usage_in_bytes", required: true, parse: single(Usage)},
	{name: "memory.limit_in_bytes", limit: true, parse: limitOf(Limit)},
	{name: "memory.max_usage_in_bytes", peak: true, parse: single(Peak)},
	{name: "memory.failcnt", counters: true, parse: single(Failcnt)},
	{name: "memory.stat", stat: true, parse: v1Stat},
	{name: "memory.oom_control", counters: true, parse: v1OOMControl},
	{name: "memory.kmem.usage_in_bytes", optional: WithKernel, parse: single(Kernel)},
	// memsw files exist only with swap accounting (CONFIG_MEMCG_SWAP and
	// swapaccount=1 on older kernels); without them the fields are absent.
	{name: "memory.memsw.limit_in_bytes", optional: WithSwapLimit, limit: true, parse: limitOf(MemswLimit)},
	{name: "memory.memsw.usage_in_bytes", optional: WithMemswUsage, parse: single(MemswUsage)},
	{name: "memory.memsw.failcnt", optional: WithSwapEvents, parse: single(SwapEventsMax)},
}

var v2Files = []fileSpec{
	{name: "memory.current", required: true, parse: single(Usage)},
	{name: "memory.max", limit: true, parse: limitOf(Limit)},
	{name: "memory.peak", peak: true, parse: single(Peak)},
	{name: "memory.stat", stat: true, parse: v2Stat},
	// memory.events is hierarchical (a pod counts its containers' limit
	// hits); the .local file counts this cgroup's own, like v1 failcnt.
	{name: "memory.events.local", alt: "memory.events", counters: true, parse: v2Events},
	{name: "memory.peak", optional: WithLifetimePeak, parse: single(PeakLifetime)},
	{name: "memory.swap.current", optional: WithSwap, parse: single(Swap)},
	{name: "memory.pressure", optional: WithPressure, parse: pressure},
	{name: "memory.high", optional: WithQoS, limit: true, parse: limitOf(High)},
	{name: "memory.low", optional: WithQoS, limit: true, parse: limitOf(Low)},
	{name: "memory.min", optional: WithQoS, limit: true, parse: limitOf(Min)},
	{name: "memory.swap.max", optional: WithSwapLimit, limit: true, parse: limitOf(SwapLimit)},
	{name: "memory.swap.events", optional: WithSwapEvents, parse: v2SwapEvents},
	{name: "memory.events", optional: WithTreeEvents, parse: v2TreeEvents},
}

func specsFor(v Version) []fileSpec {
	if v == V2 {
		return v2Files
	}
	return v1Files
}

func single(f Field) func([]byte, *Sample) error {
	return func(b []byte, s *Sample) error {
		v, err := ParseUint(b)
		if err != nil {
			return err
		}
		s.Set(f, v)
		return nil
	}
}

// limitOf parses a limit-like file into f, absent when unlimited ("max",
// or v1's near-2^63 value).
func limitOf(f Field) func([]byte, *Sample) error {
	return func(b []byte, s *Sample) error {
		v, limited, err := ParseLimit(b)
		if err != nil {
			return err
		}
		if limited {
			s.Set(f, v)
		}
		return nil
	}
}

// UnreclaimableV1 and UnreclaimableV2 are the memory.stat keys whose sum
// is the Unreclaimable field: the memory that reclaim cannot free, so that
// only a kill (or swap, see docs/oom-eta.md) brings it down. Page cache is
// not in it: it is what reclaim frees first. v1's memory.stat has no split
// of kernel memory (slab, stacks, page tables are only in
// memory.kmem.usage_in_bytes, reclaimable slab included), so v1 counts
// anonymous memory and shmem only. The field is set when the anonymous
// key is present; a key a kernel lacks (percpu before 5.7) adds nothing.
var (
	UnreclaimableV1 = []string{"total_rss", "total_shmem"}
	UnreclaimableV2 = []string{"anon", "shmem", "slab_unreclaimable", "kernel_stack", "pagetables", "percpu", "sock"}
)

// v1Stat uses the hierarchical total_* keys, as cAdvisor does: usage is
// hierarchical, so its parts must be too.
func v1Stat(b []byte, s *Sample) error {
	kv := KeyValues{Data: b, Prefix: "total_"}
	var st statSum
	for kv.Next() {
		st.add(s, v1StatKey(kv.Key()), kv.Value())
	}
	st.done(s)
	return kv.Err()
}

// v2Stat reads memory.stat, which is hierarchical in v2.
func v2Stat(b []byte, s *Sample) error {
	kv := KeyValues{Data: b}
	var st statSum
	for kv.Next() {
		st.add(s, v2StatKey(kv.Key()), kv.Value())
	}
	st.done(s)
	return kv.Err()
}

// v1OOMControl reads oom_kill (4.13+) and under_oom (1 while the cgroup
// is at its limit with nothing the OOM killer may kill, or with
// oom_kill_disable set) from memory.oom_control.
func v1OOMControl(b []byte, s *Sample) error {
	kv := KeyValues{Data: b}
	for kv.Next() {
		switch string(kv.Key()) {
		case "oom_kill":
			s.Set(OOMKills, kv.Value())
		case "under_oom":
			s.Set(UnderOOM, kv.Value())
		}
	}
	return kv.Err()
}

// v2Events reads memory.events.local (or memory.events): "max" counts the
// times usage hit memory.max (v1's failcnt), "oom_kill" the processes the
// OOM killer took; low, high, oom and oom_group_kill (5.17+) are the
// other events of Documentation/admin-guide/cgroup-v2.rst.
func v2Events(b []byte, s *Sample) error {
	kv := KeyValues{Data: b}
	for kv.Next() {
		var f Field
		switch string(kv.Key()) {
		case "max":
			f = Failcnt
		case "oom_kill":
			f = OOMKills
		case "low":
			f = EventsLow
		case "high":
			f = EventsHigh
		case "oom":
			f = EventsOOM
		case "oom_group_kill":
			f = EventsOOMGroupKill
		default:
			continue
		}
		s.Set(f, kv.Value())
	}
	return kv.Err()
}

// v2SwapEvents reads memory.swap.events (high since 5.8): high = swap
// over memory.swap.high, max = swap at memory.swap.max, fail = a swap-out
// that failed for either or for lack of swap space.
func v2SwapEvents(b []byte, s *Sample) error {
	kv := KeyValues{Data: b}
	for kv.Next() {
		var f Field
		switch string(kv.Key()) {
		case "high":
			f = SwapEventsHigh
		case "max":
			f = SwapEventsMax
		case "fail":
			f = SwapEventsFail
		default:
			continue
		}
		s.Set(f, kv.Value())
	}
	return kv.Err()
}

// v2TreeEvents reads memory.events, whose counters include the
// descendants' events (memory.events.local is the cgroup's own).
func v2TreeEvents(b []byte, s *Sample) error {
	kv := KeyValues{Data: b}
	for kv.Next() {
		var f Field
		switch string(kv.Key()) {
		case "low":
			f = TreeEventsLow
		case "high":
			f = TreeEventsHigh
		case "max":
			f = TreeEventsMax
		case "oom":
			f = TreeEventsOOM
		case "oom_kill":
			f = TreeEventsOOMKill
		case "oom_group_kill":
			f = TreeEventsOOMGroupKill
		default:
			continue
		}
		s.Set(f, kv.Value())
	}
	return kv.Err()
}

func pressure(b []byte, s *Sample) error {
	p, err := ParsePressure(b)
	if err != nil {
		return err
	}
	if p.HasSome {
		s.Set(PressureSome, p.Some.Total)
		s.Set(PressureSomeAvg10, p.Some.Avg10)
	}
	if p.HasFull {
		s.Set(PressureFull, p.Full.Total)
		s.Set(PressureFullAvg10, p.Full.Avg10)
	}
	return nil
}

// FileError is a memory file that could not be read or parsed; the fields it
// provides are left out of the sample.
type FileError struct {
	Path string // cgroup path
	File string
	Err  error
}

func (e *FileError) Error() string {
	return fmt.Sprintf("cgroup %s: %s: %v", e.Path, e.File, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }

// limitFields are the fields of the limit files (fileSpec.limit), which a
// LimitWatch lets Read take from the cache while nobody wrote them.
var limitFields = [...]Field{Limit, High, Low, Min, SwapLimit, MemswLimit}
