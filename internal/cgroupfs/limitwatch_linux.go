package cgroupfs

import (
	"slices"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// LimitWatch follows writes to the cgroups' limit files (v1
// memory.limit_in_bytes, v2 memory.max) with inotify, so that a Read reads
// a limit again only after it was written and reuses the value it read
// last otherwise. A limit changes only when somebody writes it (the kernel
// never does), and every write to a cgroup file raises IN_MODIFY, whoever
// writes it and through whichever mount. That saves one of the six v1
// files of a full sample (one of five on v2). Where no watch could be
// added (no inotify, or fs.inotify.max_user_watches reached) a cgroup
// reads its limit every time; after lost events (queue overflow) every
// cached limit is read again.
//
// Changes must be called before a batch of reads, so that the writes made
// until then are seen. It is safe for concurrent use.
type LimitWatch struct {
	mu   sync.Mutex
	fd   int                 // -1 without inotify
	wds  map[int32][]*Cgroup // watch → the cgroups opened on that file
	bufs []byte
}

// NewLimitWatch returns a watch with its own inotify instance (or none,
// when the kernel refuses one: every limit is then read every time).
func NewLimitWatch() *LimitWatch {
	w := &LimitWatch{fd: -1, wds: make(map[int32][]*Cgroup), bufs: make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))}
	if fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK); err == nil {
		w.fd = fd
	}
	return w
}

// add watches the limit file at name for c. It reports false when it
// cannot: c then reads its limit every time.
func (w *LimitWatch) add(c *Cgroup, name string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fd < 0 {
		return false
	}
	wd, err := unix.InotifyAddWatch(w.fd, name, unix.IN_MODIFY)
	if err != nil {
		return false
	}
	id := int32(wd) //nolint:gosec // watch descriptors are positive int32s (struct inotify_event's wd)
	c.limitWd = id
	w.wds[id] = append(w.wds[id], c)
	return true
}

// remove stops watching for c; the watch goes when no cgroup uses it.
func (w *LimitWatch) remove(c *Cgroup) {
	w.mu.Lock()
	defer w.mu.Unlock()
	cs := slices.DeleteFunc(w.wds[c.limitWd], func(o *Cgroup) bool { return o == c })
	if len(cs) > 0 {
		w.wds[c.limitWd] = cs
		return
	}
	delete(w.wds, c.limitWd)
	if w.fd >= 0 {
		// EINVAL when the kernel dropped it already (the cgroup was removed).
		_, _ = unix.InotifyRmWatch(w.fd, uint32(c.limitWd)) //nolint:gosec // positive, from inotify_add_watch
	}
}

// Changes takes the writes reported since the previous call: the limits
// written are read again by the next Read, and all of them after lost
// events.
func (w *LimitWatch) Changes() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fd < 0 {
		return
	}
	for {
		n, err := unix.Read(w.fd, w.bufs)
		if err != nil || n <= 0 {
			return // EAGAIN: nothing (more) was written
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&w.bufs[off])) //nolint:gosec // the kernel's inotify_event layout, bounds checked by the loop
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
				for _, cs := range w.wds {
					for _, c := range cs {
						c.limitStale.Store(true)
					}
				}
				continue
			}
			gone := ev.Mask&unix.IN_IGNORED != 0 // the file is gone, and its watch with it
			for _, c := range w.wds[ev.Wd] {
				c.limitStale.Store(true)
				if gone {
					c.limitWatched.Store(false)
				}
			}
			if gone {
				delete(w.wds, ev.Wd)
			}
		}
	}
}

// Close releases the inotify instance; the cgroups still open read their
// limits every time from then on.
func (w *LimitWatch) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, cs := range w.wds {
		for _, c := range cs {
			c.limitWatched.Store(false)
		}
	}
	clear(w.wds)
	if w.fd >= 0 {
		_ = unix.Close(w.fd)
		w.fd = -1
	}
}
