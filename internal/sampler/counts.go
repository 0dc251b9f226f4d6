package sampler

import (
	"sort"
	"sync"
	"time"
)

// maxCountedCgroups bounds the cgroups whose OOM record counts are kept
// (the least recently incremented go first): a node that OOM-kills
// containers of new cgroups all day does not grow the receiver without end.
const maxCountedCgroups = 1024

// recordCounts counts the OOM records emitted per victim cgroup and cause,
// for cgroup.memory.oom_kill.records: the OOM pipeline adds, each
// collection exports, whether the cgroup still exists or not.
type recordCounts struct {
	mu    sync.Mutex
	byCg  map[string]*cgroupCounts
	now   func() time.Time
	paths []string // scratch for each, sorted
}

type cgroupCounts struct {
	start   time.Time
	last    time.Time
	byCause map[string]int64
}

func newRecordCounts(now func() time.Time) *recordCounts {
	return &recordCounts{byCg: make(map[string]*cgroupCounts), now: now}
}

// add counts one record of a kill in the cgroup at path.
func (o *recordCounts) add(path, cause string) {
	if path == "" {
		return // a report that names no cgroup (rate-limited, not inferred)
	}
	if cause == "" {
		cause = "unknown"
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.now()
	c, ok := o.byCg[path]
	if !ok {
		if len(o.byCg) >= maxCountedCgroups {
			o.evictLocked()
		}
		c = &cgroupCounts{start: now, byCause: map[string]int64{}}
		o.byCg[path] = c
	}
	c.byCause[cause]++
	c.last = now
}

func (o *recordCounts) evictLocked() {
	oldest, at := "", time.Time{}
	for p, c := range o.byCg {
		if oldest == "" || c.last.Before(at) {
			oldest, at = p, c.last
		}
	}
	delete(o.byCg, oldest)
}

// each calls fn for every counted cgroup in path order, with the start of
// its series and its counts by cause (valid during the call only).
func (o *recordCounts) each(fn func(path string, start time.Time, byCause map[string]int64)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.paths = o.paths[:0]
	for p := range o.byCg {
		o.paths = append(o.paths, p)
	}
	sort.Strings(o.paths)
	for _, p := range o.paths {
		c := o.byCg[p]
		fn(p, c.start, c.byCause)
	}
}
