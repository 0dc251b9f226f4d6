// Package killcount finds OOM kills from the cgroups' oom_kill counters,
// for the kills the kernel log does not explain: a report rate-limited down
// to its kill line (no cgroup in it), or a kernel log that cannot be read at
// all (no /dev/kmsg in the container, no CAP_SYSLOG).
//
// cgroup v2's memory.events.local oom_kill counts the kills of a cgroup's
// own processes. cgroup v1's memory.oom_control oom_kill is hierarchical:
// a kill raises the victim's cgroup and every ancestor, so a cgroup's own
// kills are its rise minus the rises of its descendants read at the same
// time.
package killcount // import "github.com/oomsight/oomsight/internal/killcount"

import (
	"sort"
	"strings"

	"github.com/oomsight/oomsight/internal/cgpath"
)

// Counter remembers the last reading of every cgroup's counter.
type Counter struct {
	hierarchical bool
	last         map[string]uint64
	paths        []string // scratch, reused
}

// New returns a Counter; hierarchical is true for cgroup v1.
func New(hierarchical bool) *Counter {
	return &Counter{hierarchical: hierarchical, last: make(map[string]uint64)}
}

// Kill is a number of processes of one cgroup killed since its previous
// reading.
type Kill struct {
	Path string
	N    uint64
}

// Update takes readings (cgroup path → oom_kill counter) taken together and
// returns the cgroups whose own processes were killed since their previous
// reading, deepest first. A path read for the first time only sets its
// baseline; a counter that went down (a cgroup recreated at the same path)
// starts again from its new value. With hierarchical counters, readings
// should cover whole subtrees: a descendant read separately has already
// been accounted for by then and its ancestor's rise would be booked to the
// ancestor.
func (c *Counter) Update(readings map[string]uint64) []Kill {
	rise := make(map[string]uint64, 4)
	for p, v := range readings {
		old, seen := c.last[p]
		c.last[p] = v
		if seen && v > old {
			rise[p] = v - old
		}
	}
	if len(rise) == 0 {
		return nil
	}
	c.paths = c.paths[:0]
	for p := range rise {
		c.paths = append(c.paths, p)
	}
	// Deepest first, so that a cgroup's descendants are settled before it.
	sort.Slice(c.paths, func(i, j int) bool {
		di, dj := strings.Count(c.paths[i], "/"), strings.Count(c.paths[j], "/")
		if di != dj {
			return di > dj
		}
		return c.paths[i] < c.paths[j]
	})
	var out []Kill
	for i, p := range c.paths {
		own := rise[p]
		if c.hierarchical {
			// Subtract the rises of the nearest risen descendants (their own
			// rises already include theirs).
			for _, d := range c.paths[:i] {
				if cgpath.IsAncestor(p, d) && !hasRisenBetween(c.paths[:i], d, p) {
					own -= min(own, rise[d])
				}
			}
		}
		if own > 0 {
			out = append(out, Kill{Path: p, N: own})
		}
	}
	return out
}

// Forget drops a cgroup that left.
func (c *Counter) Forget(path string) { delete(c.last, path) }

// hasRisenBetween reports whether a risen path lies strictly between d and
// its ancestor p (then d was already subtracted from that one).
func hasRisenBetween(risen []string, d, p string) bool {
	for _, m := range risen {
		if m != d && cgpath.IsAncestor(m, d) && cgpath.IsAncestor(p, m) {
			return true
		}
	}
	return false
}
