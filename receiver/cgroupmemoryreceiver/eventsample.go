package cgroupmemoryreceiver

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/oomsight/oomsight/internal/cgroupfs"
	"github.com/oomsight/oomsight/internal/events"
	"github.com/oomsight/oomsight/internal/registry"
	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/metadata"
)

// eventSampler takes a full sample of a cgroup the moment it hits its
// limit or has an OOM (capture at the limit). The events.Watcher calls it
// from its one goroutine.
type eventSampler struct {
	reg    *registry.Registry
	tb     *metadata.TelemetryBuilder
	logger *zap.Logger
	reader *cgroupfs.Reader
	sample cgroupfs.Sample
	now    func() time.Time
}

func newEventSampler(reg *registry.Registry, tb *metadata.TelemetryBuilder, logger *zap.Logger) *eventSampler {
	return &eventSampler{reg: reg, tb: tb, logger: logger, reader: cgroupfs.NewReader(), now: time.Now}
}

// on handles one event. v2 notifications reach every ancestor of the
// cgroup they are about: the cgroup's own memory.events.local counters
// tell whether it is the one.
func (s *eventSampler) on(path string, k events.Kind) {
	e := s.reg.Get(path)
	if e == nil {
		return
	}
	urgent := k == events.OOM
	if k == events.Changed {
		if err := s.reader.Counters(e.Cgroup, &s.sample); err != nil {
			return
		}
		hit, killed := e.CountersRose(&s.sample)
		if !hit && !killed {
			return
		}
		urgent = killed
	}
	now := s.now()
	if !e.EventDue(now, urgent) {
		return
	}
	err := s.reader.Read(e.Cgroup, now, &s.sample)
	if errors.Is(err, cgroupfs.ErrVanished) {
		return
	}
	e.Event(&s.sample)
	if s.tb != nil {
		s.tb.CgroupmemoryEventSamples.Add(context.Background(), 1)
	}
	s.logger.Debug("event sample", zap.String("cgroup.path", path), zap.Stringer("event", k))
}
