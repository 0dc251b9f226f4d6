// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package sampler // import "github.com/oomsight/oomsight/internal/sampler"

import (
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/oomsight/oomsight/internal/cgroupfs"
	"github.com/oomsight/oomsight/internal/events"
	"github.com/oomsight/oomsight/internal/registry"
)

// eventSampler takes a full sample of a cgroup the moment it hits its
// limit or has an OOM (capture at the limit). The events.Watcher calls on
// from its one goroutine.
type eventSampler struct {
	reg     *registry.Registry
	kills   *kills
	logger  *zap.Logger
	sampled func()
	reader  *cgroupfs.Reader
	sample  cgroupfs.Sample
	now     func() time.Time
	// snapshot is asked for a process snapshot of a cgroup that hit its
	// limit zone; nil when snapshots are off.
	snapshot func(path string, usage, limit uint64)

	mu      sync.Mutex
	scan    *time.Timer // the pending counter scan after a v1 OOM, if any
	stopped bool
}

// scanSoon reads every cgroup's oom_kill counter oomScanDelay from now: a
// v1 OOM notification comes before the kill and names the cgroup whose
// limit was hit, while the kill is counted only in the victim's own cgroup
// (possibly a descendant of it), so the victim's cgroup is found by reading
// them all.
// Notifications meanwhile share the one scan.
func (s *eventSampler) scanSoon() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || s.scan != nil {
		return
	}
	s.scan = time.AfterFunc(oomScanDelay, func() {
		s.mu.Lock()
		s.scan = nil
		stopped := s.stopped
		s.mu.Unlock()
		if !stopped {
			s.kills.scan()
		}
	})
}

// stop cancels a pending scan.
func (s *eventSampler) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	if s.scan != nil {
		s.scan.Stop()
	}
}

// snapHigh asks for a process snapshot of a cgroup that went over
// memory.high but not its max (no event sample is due): with its usage
// (one read) and the limit of its latest full sample.
func (s *eventSampler) snapHigh(e *registry.Entry) {
	if s.snapshot == nil {
		return
	}
	usage, err := s.reader.Usage(e.Cgroup)
	if err != nil {
		return
	}
	s.snapshot(e.Path, usage, e.Limit())
}

// on handles one event. v2 notifications reach every ancestor of the
// cgroup they are about: the cgroup's own memory.events.local counters
// tell whether it is the one (its failcnt rose, or the kill accounting
// books a kill of its own).
func (s *eventSampler) on(path string, k events.Kind) {
	e := s.reg.Get(path)
	if e == nil {
		return
	}
	urgent := k == events.OOM
	zone := k != events.Changed // a v1 threshold or OOM notification
	if k == events.Changed {
		if err := s.reader.Counters(e.Cgroup, &s.sample); err != nil {
			return
		}
		high := e.HighHit(&s.sample)
		hit := e.LimitHit(&s.sample)
		killed := false
		if n, ok := s.sample.Get(cgroupfs.OOMKills); ok {
			killed = s.kills.bookOne(path, n, s.now())
		}
		if !hit && !killed {
			if high {
				s.snapHigh(e)
			}
			return
		}
		zone, urgent = hit || high, killed
	}
	if k == events.OOM {
		s.scanSoon()
	}
	now := s.now()
	if !e.EventDue(now, urgent) {
		return
	}
	s.reg.LimitChanges() // a limit written since the last collection is read again
	err := s.reader.Read(e.Cgroup, now, &s.sample)
	if errors.Is(err, cgroupfs.ErrVanished) {
		return
	}
	e.Event(&s.sample)
	s.sampled()
	if zone && s.snapshot != nil {
		usage, _ := s.sample.Get(cgroupfs.Usage)
		limit, _ := s.sample.Get(cgroupfs.Limit)
		s.snapshot(path, usage, limit)
	}
	s.logger.Debug("event sample", zap.String("cgroup.path", path), zap.Stringer("event", k))
}
