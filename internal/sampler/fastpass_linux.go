// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package sampler // import "github.com/oomsight/oomsight/internal/sampler"

import (
	"errors"
	"time"

	"github.com/oomsight/oomsight/internal/cgroupfs"
	"github.com/oomsight/oomsight/internal/events"
	"github.com/oomsight/oomsight/internal/registry"
)

// fastPass reads the usage of every cgroup each sampling_interval — one
// pread on a held descriptor per cgroup — and feeds the interval peaks and
// the flight recorders. It builds no pdata: the data points are made at
// collection time.
type fastPass struct {
	reg      *registry.Registry
	interval time.Duration
	reader   *cgroupfs.Reader
	entries  []*registry.Entry
	now      func() time.Time
	// snapshot is asked for a process snapshot of a cgroup in its limit
	// zone; nil when snapshots are off.
	snapshot func(path string, usage, limit uint64)
	// trend turns trend samples on (registry.Entry.FastTrend): the
	// time-to-OOM estimate is asked for. stat is their scratch sample.
	trend bool
	stat  cgroupfs.Sample

	stop chan struct{}
	done chan struct{}
}

func newFastPass(reg *registry.Registry, interval time.Duration, now func() time.Time, snapshot func(path string, usage, limit uint64), trend bool) *fastPass {
	return &fastPass{
		reg: reg, interval: interval, reader: cgroupfs.NewReader(), now: now, snapshot: snapshot, trend: trend,
		stop: make(chan struct{}), done: make(chan struct{}),
	}
}

func (f *fastPass) start() { go f.run() }

func (f *fastPass) run() {
	defer close(f.done)
	t := time.NewTicker(f.interval)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
			f.pass()
		}
	}
}

// pass samples every cgroup once. A cgroup found gone is dropped at once
// (its recorder is kept for registry.Keep); other errors wait for the
// collection, which reports them.
func (f *fastPass) pass() {
	f.entries = f.reg.Entries(f.entries[:0])
	for _, e := range f.entries {
		v, err := f.reader.Usage(e.Cgroup)
		if err != nil {
			if errors.Is(err, cgroupfs.ErrVanished) {
				f.reg.Drop(e.Path)
			}
			continue
		}
		now := f.now()
		limit, trendDue := e.FastTrend(now, v)
		if f.snapshot != nil && inZone(v, limit) {
			f.snapshot(e.Path, v, limit)
		}
		// A climbing cgroup's memory.stat once a second, for the
		// time-to-OOM fit, while it is below the limit zone: there the
		// event sampler reads every file at the limit, and a read of
		// memory.stat here (the kernel flushes its statistics for it)
		// would only compete with it in the last milliseconds before a
		// kill. A failed read waits for the collection, which reports it.
		if f.trend && trendDue && !inZone(v, limit) && f.reader.Stat(e.Cgroup, now, &f.stat) == nil {
			e.AddTrend(&f.stat, v)
		}
	}
	clear(f.entries) // do not pin removed cgroups until the next pass
}

func (f *fastPass) shutdown() {
	close(f.stop)
	<-f.done
}

// inZone tells whether usage is in the limit zone: at or above
// events.ThresholdRatio of a known limit (the v1 threshold event's level).
func inZone(usage, limit uint64) bool {
	return limit > 0 && float64(usage) >= float64(limit)*events.ThresholdRatio
}
