// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package sampler // import "github.com/oomsight/oomsight/internal/sampler"

import (
	"errors"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/oomsight/oomsight/internal/cgroupfs"
	"github.com/oomsight/oomsight/internal/registry"
)

// discoverer registers a created cgroup at its creation event rather than
// at the next collection: it waits on discovery's inotify descriptor
// (registry.ChangeFd), brings the registry up to date when a cgroup
// directory is created or removed, and takes a first fast sample (usage)
// of each cgroup added. The fast pass samples it from then on, and its
// last interval is exported when it goes (Sampler.final), so that a
// container created and gone between two collections still has a series
// — before, it was found only by the next collection's discovery, if it
// was still there. Its event sources (capture at the limit) are armed by
// its first collection, as before: at its creation event the runtime has
// not written its limit yet.
type discoverer struct {
	reg    *registry.Registry
	reader *cgroupfs.Reader
	now    func() time.Time
	logger *zap.Logger
	wake   int // eventfd that ends run
	done   chan struct{}
}

// pollEvery bounds a wait on the discovery descriptor, after which it is
// asked for again: discovery closes it when it falls back to walking.
const pollEvery = time.Second

func newDiscoverer(reg *registry.Registry, now func() time.Time, logger *zap.Logger) (*discoverer, error) {
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, err
	}
	return &discoverer{
		reg: reg, reader: cgroupfs.NewReader(), now: now, logger: logger, wake: wake,
		done: make(chan struct{}),
	}, nil
}

func (d *discoverer) start() { go d.run() }

func (d *discoverer) run() {
	defer close(d.done)
	for {
		fds := []unix.PollFd{{Fd: int32(d.wake), Events: unix.POLLIN}}
		if fd := d.reg.ChangeFd(); fd >= 0 {
			fds = append(fds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
		}
		_, err := unix.Poll(fds, int(pollEvery/time.Millisecond))
		if err != nil && !errors.Is(err, unix.EINTR) {
			d.logger.Debug("waiting for cgroup creation events failed; cgroups are found by the collections only", zap.Error(err))
			return
		}
		if fds[0].Revents != 0 {
			return
		}
		if len(fds) > 1 && fds[1].Revents&unix.POLLIN != 0 {
			d.refresh()
		}
	}
}

// refresh brings the registry up to date and samples the cgroups added.
// What it cannot open is left to the collection, which reports it.
func (d *discoverer) refresh() {
	ch, err := d.reg.RefreshNew()
	if err != nil {
		return
	}
	for _, e := range ch.New {
		if v, err := d.reader.Usage(e.Cgroup); err == nil {
			e.Fast(d.now(), v)
		}
	}
	clear(ch.New)
}

func (d *discoverer) shutdown() {
	one := [8]byte{1}
	_, _ = unix.Write(d.wake, one[:])
	<-d.done
	_ = unix.Close(d.wake)
}
