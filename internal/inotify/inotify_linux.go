// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package inotify is the one inotify decoder of the project: discovery
// (directories created and removed), the limit cache (limit files written)
// and cgroup v2 capture at the limit (memory.events modified) each own an
// Instance of it.
//
// An Instance maps watch descriptors to the keys of its user (a cgroup
// path, an open cgroup), several keys per watch when the same file is
// watched twice (inotify gives one descriptor per inode and instance). It
// handles what every user must handle the same way, once: IN_IGNORED (the
// kernel dropped a watch because its file or directory is gone: the keys
// are forgotten and reported Gone) and IN_Q_OVERFLOW (events were lost:
// Drain reports it, and the user takes everything as changed).
//
// One directory watch per cgroup, dispatched by file name, could replace
// the per-file watches of the limit cache and the v2 events, but an
// IN_MODIFY watch on a directory makes every read of every file in it go
// through the kernel's parent notification path (fsnotify_parent), the
// fast pass's reads included; BenchmarkDirectoryWatch measures both.
package inotify // import "github.com/oomsight/oomsight/internal/inotify"

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Event is one event on a watch, for one key of that watch.
type Event[K comparable] struct {
	Key K
	// Name is the entry of a watched directory the event is about; empty
	// for an event on the watched file or directory itself.
	Name string
	// Mask is the kernel's mask (unix.IN_MODIFY, IN_CREATE, IN_ISDIR, …).
	Mask uint32
	// Gone: the kernel dropped the watch (its file or directory is gone);
	// the key is forgotten.
	Gone bool
}

// Instance is one inotify instance and the keys of its watches. It is safe
// for concurrent use.
type Instance[K comparable] struct {
	mu   sync.Mutex
	fd   int
	keys map[int32][]K // watch → the keys watching it
	wdOf map[K]int32
	buf  []byte
}

// New returns an instance whose descriptor does not block (Drain returns
// when nothing is pending).
func New[K comparable]() (*Instance[K], error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	return &Instance[K]{
		fd: fd, keys: make(map[int32][]K), wdOf: make(map[K]int32),
		buf: make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1)),
	}, nil
}

// Fd is the instance's descriptor, for epoll.
func (in *Instance[K]) Fd() int { return in.fd }

// Add watches path for k with mask (a watch of the same file for another
// key is shared). Watching the same key again moves it to path. Errors are
// the kernel's: ENOENT for a path gone, ENOSPC at fs.inotify.max_user_watches.
func (in *Instance[K]) Add(k K, path string, mask uint32) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.fd < 0 {
		return errors.New("inotify: instance closed")
	}
	raw, err := unix.InotifyAddWatch(in.fd, path, mask)
	if err != nil {
		return err
	}
	wd := int32(raw)
	if old, ok := in.wdOf[k]; ok {
		if old == wd {
			return nil
		}
		in.dropLocked(k, old)
	}
	in.wdOf[k] = wd
	in.keys[wd] = append(in.keys[wd], k)
	return nil
}

// Remove stops watching for k; the watch goes when no key uses it. A watch
// the kernel dropped already is forgotten quietly.
func (in *Instance[K]) Remove(k K) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if wd, ok := in.wdOf[k]; ok {
		in.dropLocked(k, wd)
	}
}

func (in *Instance[K]) dropLocked(k K, wd int32) {
	delete(in.wdOf, k)
	ks := slices.DeleteFunc(in.keys[wd], func(o K) bool { return o == k })
	if len(ks) > 0 {
		in.keys[wd] = ks
		return
	}
	delete(in.keys, wd)
	if in.fd >= 0 {
		// EINVAL when the kernel dropped it already (the file is gone).
		_, _ = unix.InotifyRmWatch(in.fd, uint32(wd))
	}
}

// Watched reports whether k is watched.
func (in *Instance[K]) Watched(k K) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	_, ok := in.wdOf[k]
	return ok
}

// Len is the number of keys watched.
func (in *Instance[K]) Len() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.wdOf)
}

// Keys appends every key watched to dst.
func (in *Instance[K]) Keys(dst []K) []K {
	in.mu.Lock()
	defer in.mu.Unlock()
	for k := range in.wdOf {
		dst = append(dst, k)
	}
	return dst
}

// Drain reads every pending event without blocking and hands each, for
// each key of its watch, to fn, without the instance locked (fn may call
// Add and Remove). It reports whether the kernel lost events (queue
// overflow): then the user must take everything it watches as changed.
func (in *Instance[K]) Drain(fn func(Event[K])) (overflow bool) {
	in.mu.Lock()
	evs, overflow := in.readLocked()
	in.mu.Unlock()
	for i := range evs {
		fn(evs[i])
	}
	return overflow
}

// readLocked decodes what is pending; evs is nil (no allocation) when
// nothing happened, the common case.
func (in *Instance[K]) readLocked() (evs []Event[K], overflow bool) {
	if in.fd < 0 {
		return nil, false
	}
	for {
		n, err := unix.Read(in.fd, in.buf)
		if err != nil || n <= 0 {
			return evs, overflow // EAGAIN: nothing (more) happened
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&in.buf[off]))
			name := ""
			if ev.Len > 0 {
				b := in.buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
				name = strings.TrimRight(string(b), "\x00")
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
				overflow = true
				continue
			}
			ks := in.keys[ev.Wd]
			gone := ev.Mask&unix.IN_IGNORED != 0
			for _, k := range ks {
				evs = append(evs, Event[K]{Key: k, Name: name, Mask: ev.Mask, Gone: gone})
				if gone {
					delete(in.wdOf, k)
				}
			}
			if gone {
				delete(in.keys, ev.Wd)
			}
		}
	}
}

// Close releases the instance; its keys are forgotten. It is idempotent.
func (in *Instance[K]) Close() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.fd >= 0 {
		_ = unix.Close(in.fd)
		in.fd = -1
	}
	clear(in.keys)
	clear(in.wdOf)
}
