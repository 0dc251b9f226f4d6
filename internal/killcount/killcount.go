// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package killcount finds OOM kills from the cgroups' oom_kill counters,
// for the kills the kernel log does not explain: a report rate-limited down
// to its kill line (no cgroup in it), or a kernel log that cannot be read at
// all (no /dev/kmsg in the container, no CAP_SYSLOG).
//
// Both counters the receiver reads count the kills of a cgroup's own
// processes only: cgroup v2's memory.events.local oom_kill, and cgroup v1's
// memory.oom_control oom_kill, which is not hierarchical even with
// memory.use_hierarchy 1 (the kernel's memcg_memory_event raises only the
// victim's own memory cgroup on v1; measured: a child cgroup's process
// killed, the child says oom_kill 1, its parent 0). So a cgroup's own kills
// are simply its rise, and a kill is seen only while the victim's own cgroup
// still exists at the next reading: a cgroup removed in between takes its
// count with it, and no ancestor holds it.
package killcount // import "github.com/oomsight/oomsight/internal/killcount"

import (
	"sort"
)

// Counter remembers the last reading of every cgroup's counter.
type Counter struct {
	last map[string]uint64
}

// New returns a Counter.
func New() *Counter {
	return &Counter{last: make(map[string]uint64)}
}

// Kill is a number of processes of one cgroup killed since its previous
// reading.
type Kill struct {
	Path string
	N    uint64
}

// Update takes readings (cgroup path → oom_kill counter, the cgroup's own
// kills) and returns the cgroups whose own processes were killed since their
// previous reading, sorted by path. Readings may cover any subset of the
// cgroups: one not read keeps its previous reading. A path read for the
// first time only sets its baseline; a counter that went down (a cgroup
// recreated at the same path) starts again from its new value.
func (c *Counter) Update(readings map[string]uint64) []Kill {
	var out []Kill
	for p, v := range readings {
		old, seen := c.last[p]
		c.last[p] = v
		if seen && v > old {
			out = append(out, Kill{Path: p, N: v - old})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// Forget drops a cgroup that left.
func (c *Counter) Forget(path string) { delete(c.last, path) }
