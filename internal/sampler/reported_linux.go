// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package sampler // import "github.com/oomsight/oomsight/internal/sampler"

import (
	"sync"
	"time"

	"github.com/oomsight/oomsight/internal/identity"
	"github.com/oomsight/oomsight/internal/oompoint"
	"github.com/oomsight/oomsight/internal/oomreport"
	"github.com/oomsight/oomsight/internal/registry"
)

// reported keeps what kernel OOM reports said of cgroups whose series
// cannot carry it (see Sampler.Reported): their closing points, handed on
// with the next collection, and the OOMs already handled, so that each is
// handed on once.
type reported struct {
	mu      sync.Mutex
	pending []oompoint.Point
	// seen is the last OOM handled per cgroup path, kept registry.Keep
	// (the members of a memory.oom.group kill come with one report of the
	// limit each, the last ones after their cgroup's series closed); at
	// most registry.MaxDeparted paths, the oldest go first.
	seen map[string]seenOOM
}

type seenOOM struct {
	key oompoint.Key
	at  time.Time
}

func newReported() *reported { return &reported{seen: make(map[string]seenOOM)} }

// first reports whether the OOM key of the cgroup at path is new, and
// remembers it.
func (r *reported) first(path string, key oompoint.Key, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.seen[path]; ok && s.key == key && now.Sub(s.at) <= registry.Keep {
		return false
	}
	if len(r.seen) >= registry.MaxDeparted {
		oldest, at := "", time.Time{}
		for p, s := range r.seen {
			if now.Sub(s.at) > registry.Keep {
				delete(r.seen, p)
				continue
			}
			if oldest == "" || s.at.Before(at) {
				oldest, at = p, s.at
			}
		}
		if len(r.seen) >= registry.MaxDeparted {
			delete(r.seen, oldest)
		}
	}
	r.seen[path] = seenOOM{key: key, at: now}
	return true
}

// add queues a closing point, at most registry.MaxDeparted (the oldest
// go first).
func (r *reported) add(p oompoint.Point) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pending) >= registry.MaxDeparted {
		r.pending = r.pending[1:]
	}
	r.pending = append(r.pending, p)
}

// take moves the queued closing points to dst.
func (r *reported) take(dst []oompoint.Point) []oompoint.Point {
	r.mu.Lock()
	defer r.mu.Unlock()
	dst = append(dst, r.pending...)
	clear(r.pending)
	r.pending = r.pending[:0]
	return dst
}

// Reported takes what a kernel OOM report says of the cgroup whose limit
// was hit (package oompoint: usage, limit, failcnt, the stat dump, the
// peak = usage at the kill, dated at the kill) into that cgroup's
// series, once per OOM: a cgroup created and killed between two passes,
// or removed before the next collection, still shows it hit its limit.
// A cgroup in the registry whose series does not carry the kill yet gets
// it as an event sample (registry.Entry.Reported); one the sampler never
// discovered, or whose last interval was already exported, gets one
// closing set of points with the next collection (Collected.Reported).
// Cgroups the include/exclude filter leaves out get nothing. The OOM
// pipeline calls it for every report not handed on before a restart;
// safe for concurrent use.
func (s *Sampler) Reported(r *oomreport.Report) {
	p, ok := oompoint.FromReport(r, s.h.Version, s.now())
	if !ok || !s.filter.Match(p.Path) || !s.reported.first(p.Path, p.Key, s.now()) {
		return
	}
	if e := s.reg.Find(p.Path); e != nil && e.Reported(&p.Sample, p.Peak) {
		return
	}
	s.reported.add(p)
}

// closeReported hands on the closing points of reported kills (see
// Reported) and returns how many.
func (s *Sampler) closeReported(visit func(*Collected)) int64 {
	s.points = s.reported.take(s.points[:0])
	c := &s.got
	for i := range s.points {
		p := &s.points[i]
		*c = Collected{
			Path: p.Path, Identity: identity.FromPath(p.Path), Sample: &p.Sample,
			Peak: p.Peak, HasPeak: true, Start: p.Sample.Time, Reported: true,
		}
		visit(c)
	}
	n := int64(len(s.points))
	clear(s.points)
	return n
}
