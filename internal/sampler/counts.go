// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

//go:build linux

package sampler // import "github.com/oomsight/oomsight/internal/sampler"

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
	// survived counts the kills its container survived
	// (cgroup.memory.oom_kill.survived).
	survived int64
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
	o.getLocked(path).byCause[cause]++
}

// addSurvived counts one kill in the cgroup at path that its container
// survived.
func (o *recordCounts) addSurvived(path string) {
	if path == "" {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.getLocked(path).survived++
}

// getLocked returns the cgroup's counts, made when new, marked as used now.
func (o *recordCounts) getLocked(path string) *cgroupCounts {
	now := o.now()
	c, ok := o.byCg[path]
	if !ok {
		if len(o.byCg) >= maxCountedCgroups {
			o.evictLocked()
		}
		c = &cgroupCounts{start: now, byCause: map[string]int64{}}
		o.byCg[path] = c
	}
	c.last = now
	return c
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

// Counts are one cgroup's OOM kill counts.
type Counts struct {
	// ByCause are its records by linux.oom.cause
	// (cgroup.memory.oom_kill.records).
	ByCause map[string]int64
	// Survived are its kills that its container survived
	// (cgroup.memory.oom_kill.survived).
	Survived int64
}

// each calls fn for every counted cgroup in path order, with the start of
// its series and its counts (valid during the call only).
func (o *recordCounts) each(fn func(path string, start time.Time, c Counts)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.paths = o.paths[:0]
	for p := range o.byCg {
		o.paths = append(o.paths, p)
	}
	sort.Strings(o.paths)
	for _, p := range o.paths {
		c := o.byCg[p]
		fn(p, c.start, Counts{ByCause: c.byCause, Survived: c.survived})
	}
}
