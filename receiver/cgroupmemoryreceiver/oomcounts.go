//go:build linux

package cgroupmemoryreceiver

import (
	"sort"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/oomsight/oomsight/internal/identity"
	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/metadata"
)

// maxCountedCgroups bounds the cgroups whose OOM record counts are kept
// (the least recently incremented go first): a node that OOM-kills
// containers of new cgroups all day does not grow the receiver without end.
const maxCountedCgroups = 1024

// oomCounts counts the OOM records emitted per victim cgroup and cause,
// for cgroup.memory.oom_kill.records: the OOM pipeline adds, the scraper
// exports, whether the cgroup still exists or not.
type oomCounts struct {
	mu    sync.Mutex
	byCg  map[string]*cgroupCounts
	now   func() time.Time
	paths []string // scratch for emit, sorted
}

type cgroupCounts struct {
	start   time.Time
	last    time.Time
	byCause map[string]int64
}

func newOOMCounts() *oomCounts {
	return &oomCounts{byCg: make(map[string]*cgroupCounts), now: time.Now}
}

// add counts one record of a kill in the cgroup at path.
func (o *oomCounts) add(path, cause string) {
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

func (o *oomCounts) evictLocked() {
	oldest, at := "", time.Time{}
	for p, c := range o.byCg {
		if oldest == "" || c.last.Before(at) {
			oldest, at = p, c.last
		}
	}
	delete(o.byCg, oldest)
}

// emit records the counts as data points at ts, one resource per cgroup.
func (o *oomCounts) emit(mb *metadata.MetricsBuilder, ts pcommon.Timestamp) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.paths = o.paths[:0]
	for p := range o.byCg {
		o.paths = append(o.paths, p)
	}
	sort.Strings(o.paths)
	for _, p := range o.paths {
		c := o.byCg[p]
		for cause, n := range c.byCause {
			mb.RecordCgroupMemoryOomKillRecordsDataPoint(ts, n, cause)
		}
		rb := mb.NewResourceBuilder()
		setResource(rb, p, identity.FromPath(p))
		mb.EmitForResource(metadata.WithResource(rb.Emit()), metadata.WithStartTimeOverride(pcommon.NewTimestampFromTime(c.start)))
	}
}
