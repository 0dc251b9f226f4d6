// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package events wakes the sampler the moment a cgroup hits its limit or
// runs out of memory, so that the full memory files are read then, not at
// the next collection (which may be a minute away).
//
// One goroutine waits on one epoll instance for every source:
//
//   - cgroup v1: per limited cgroup, an eventfd for a usage threshold just
//     below the limit (it fires when usage crosses it, either way) and one
//     for the OOM notification, registered through cgroup.event_control with
//     github.com/containerd/cgroups/v3. Registering writes to the cgroup
//     filesystem: on a read-only mount it fails (EROFS) and v1 events are
//     off (ErrReadOnly).
//   - cgroup v2: one inotify instance (not one per cgroup: the default
//     fs.inotify.max_user_instances is 128) watching every cgroup's
//     memory.events, which the kernel marks modified when a limit is hit or
//     an OOM happens in the cgroup or below it. Works on a read-only mount.
//     Which cgroup it was about is for the caller to tell (from its
//     memory.events.local counters).
//
// The kernel rate-limits v2 notifications to one per 20 ms per file; v1
// thresholds fire on crossings. Callers rate-limit the work they do.
package events // import "github.com/oomsight/oomsight/internal/events"

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/containerd/cgroups/v3/cgroup1"
	"golang.org/x/sys/unix"

	"github.com/oomsight/oomsight/internal/cgroupfs"
	"github.com/oomsight/oomsight/internal/inotify"
)

// Kind is what woke a cgroup.
type Kind uint8

// Kinds of events.
const (
	// Threshold: v1 usage crossed the threshold below the limit.
	Threshold Kind = iota
	// OOM: v1 OOM notification (the cgroup or an ancestor is out of memory).
	OOM
	// Changed: v2 memory.events changed (a limit hit or an OOM in the
	// cgroup or one of its descendants).
	Changed
)

func (k Kind) String() string {
	switch k {
	case Threshold:
		return "threshold"
	case OOM:
		return "oom"
	}
	return "changed"
}

// ThresholdRatio places the v1 usage threshold: at 90 % of the limit.
const ThresholdRatio = 0.9

// ErrReadOnly means v1 events cannot be registered because the cgroup
// filesystem is not writable (a read-only mount, as in a DaemonSet).
var ErrReadOnly = errors.New("cgroup.event_control is not writable (read-only cgroup mount); events off, the fast pass still samples")

// Watcher delivers events of one hierarchy to a callback.
type Watcher struct {
	h      cgroupfs.Hierarchy
	notify func(path string, k Kind)
	epfd   int
	wake   int                       // eventfd that ends Run
	ino    *inotify.Instance[string] // v2: memory.events of each cgroup, by path; nil on v1

	mu       sync.Mutex
	watches  map[string]*watch // v1
	fds      map[int32]source  // v1 eventfds
	readOnly bool              // v1: registration refused; do not try again
	closed   bool
	done     chan struct{}
}

// watch is a v1 cgroup's event sources.
type watch struct {
	limit     uint64 // the limit the threshold was set for
	threshold int    // eventfd, -1 if none
	oom       int    // eventfd, -1 if none
}

type source struct {
	path string
	kind Kind
}

// New returns a watcher for h; Run delivers events to notify.
func New(h cgroupfs.Hierarchy, notify func(path string, k Kind)) (*Watcher, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	w := &Watcher{
		h: h, notify: notify, epfd: epfd,
		watches: make(map[string]*watch), fds: make(map[int32]source),
		done: make(chan struct{}),
	}
	w.wake, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err == nil {
		err = w.add(w.wake)
	}
	if err == nil && h.Version == cgroupfs.V2 {
		w.ino, err = inotify.New[string]()
		if err == nil {
			err = w.add(w.ino.Fd())
		}
	}
	if err != nil {
		w.closeAll()
		return nil, fmt.Errorf("events: %w", err)
	}
	return w, nil
}

func (w *Watcher) add(fd int) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
	return unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, fd, &ev)
}

// Watch starts or updates watching the cgroup at path. limit is its current
// limit (hasLimit false: unlimited). On v1 only limited cgroups are
// watched, and the threshold follows the limit; calling Watch again with
// the same limit does nothing. It returns ErrReadOnly (once) when v1
// registration is refused for want of write access.
func (w *Watcher) Watch(path string, limit uint64, hasLimit bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	if w.ino != nil {
		if w.ino.Watched(path) {
			return nil
		}
		if err := w.ino.Add(path, filepath.Join(w.h.Abs(path), "memory.events"), unix.IN_MODIFY); err != nil {
			return fmt.Errorf("watching %s/memory.events: %w", path, err)
		}
		return nil
	}
	if w.readOnly {
		return nil
	}
	cur, ok := w.watches[path]
	if !hasLimit {
		if ok {
			w.unwatchLocked(path)
		}
		return nil
	}
	if ok && cur.limit == limit {
		return nil
	}
	cg, err := w.load(path)
	if err != nil {
		return err
	}
	if !ok {
		cur = &watch{threshold: -1, oom: -1}
		w.watches[path] = cur
		oomFD, regErr := w.register(cg, cgroup1.OOMEvent(), source{path, OOM})
		if regErr != nil {
			w.unwatchLocked(path)
			return regErr
		}
		cur.oom = oomFD
	}
	if cur.threshold >= 0 {
		w.closeSource(cur.threshold)
		cur.threshold = -1
	}
	fd, err := w.register(cg, cgroup1.MemoryThresholdEvent(uint64(float64(limit)*ThresholdRatio), false), source{path, Threshold})
	if err != nil {
		w.unwatchLocked(path)
		return err
	}
	cur.threshold, cur.limit = fd, limit
	return nil
}

// load opens the cgroup with containerd/cgroups, over this hierarchy's
// directory whatever it is called (NewMemory appends "memory" to its root).
func (w *Watcher) load(path string) (cgroup1.Cgroup, error) {
	mem := cgroup1.NewMemory(w.h.Dir)
	rel := filepath.Join("..", path)
	cg, err := cgroup1.Load(cgroup1.StaticPath(rel), cgroup1.WithHierarchy(func() ([]cgroup1.Subsystem, error) {
		return []cgroup1.Subsystem{mem}, nil
	}))
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", path, err)
	}
	return cg, nil
}

func (w *Watcher) register(cg cgroup1.Cgroup, ev cgroup1.MemoryEvent, src source) (int, error) {
	efd, err := cg.RegisterMemoryEvent(ev)
	if err != nil {
		if errors.Is(err, unix.EROFS) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
			w.readOnly = true
			return -1, fmt.Errorf("%w: %w", ErrReadOnly, err)
		}
		return -1, fmt.Errorf("cgroup %s: registering the %s event: %w", src.path, src.kind, err)
	}
	fd := int(efd)
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return -1, fmt.Errorf("cgroup %s: %s eventfd: %w", src.path, src.kind, err)
	}
	if err := w.add(fd); err != nil {
		_ = unix.Close(fd)
		return -1, fmt.Errorf("cgroup %s: polling the %s eventfd: %w", src.path, src.kind, err)
	}
	w.fds[int32(fd)] = src
	return fd, nil
}

// Unwatch stops watching the cgroup at path (removed, or left out).
func (w *Watcher) Unwatch(path string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.unwatchLocked(path)
}

func (w *Watcher) unwatchLocked(path string) {
	if w.ino != nil {
		w.ino.Remove(path)
		return
	}
	cur, ok := w.watches[path]
	if !ok {
		return
	}
	delete(w.watches, path)
	for _, fd := range []int{cur.threshold, cur.oom} {
		if fd >= 0 {
			w.closeSource(fd)
		}
	}
}

// closeSource closes a v1 eventfd; the kernel drops its registration.
func (w *Watcher) closeSource(fd int) {
	delete(w.fds, int32(fd))
	_ = unix.Close(fd)
}

// Len is the number of cgroups watched.
func (w *Watcher) Len() int {
	if w.ino != nil {
		return w.ino.Len()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.watches)
}

// Run delivers events until Close. Call it on a goroutine of its own.
func (w *Watcher) Run() {
	defer close(w.done)
	evs := make([]unix.EpollEvent, 64)
	inoFd := -1
	if w.ino != nil {
		inoFd = w.ino.Fd()
	}
	var cnt [8]byte
	for {
		n, err := unix.EpollWait(w.epfd, evs, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		for _, ev := range evs[:n] {
			switch int(ev.Fd) {
			case w.wake:
				return
			case inoFd:
				w.readInotify()
			default:
				if _, err := unix.Read(int(ev.Fd), cnt[:]); err != nil {
					continue // closed meanwhile, or nothing to read
				}
				w.mu.Lock()
				src, ok := w.fds[ev.Fd]
				w.mu.Unlock()
				if ok {
					w.notify(src.path, src.kind)
				}
			}
		}
	}
}

// readInotify delivers the v2 notifications pending. After lost events
// (queue overflow) every watched cgroup is notified: the caller tells from
// its counters which ones changed.
func (w *Watcher) readInotify() {
	overflow := w.ino.Drain(func(ev inotify.Event[string]) {
		if !ev.Gone && ev.Mask&unix.IN_MODIFY != 0 {
			w.notify(ev.Key, Changed)
		}
	})
	if overflow {
		for _, path := range w.ino.Keys(nil) {
			w.notify(path, Changed)
		}
	}
}

// Close stops Run (waiting for it if it was started) and releases every
// descriptor. It is idempotent.
func (w *Watcher) Close(started bool) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	w.mu.Unlock()
	one := [8]byte{1}
	_, _ = unix.Write(w.wake, one[:])
	if started {
		<-w.done
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for path := range w.watches {
		w.unwatchLocked(path)
	}
	w.closeAll()
}

func (w *Watcher) closeAll() {
	if w.ino != nil {
		w.ino.Close()
	}
	for _, fd := range []int{w.wake, w.epfd} {
		if fd >= 0 {
			_ = unix.Close(fd)
		}
	}
}
