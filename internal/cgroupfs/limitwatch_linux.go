// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgroupfs // import "github.com/oomsight/oomsight/internal/cgroupfs"

import (
	"sync"

	"golang.org/x/sys/unix"

	"github.com/oomsight/oomsight/internal/inotify"
)

// LimitWatch follows writes to the cgroups' limit files (v1
// memory.limit_in_bytes, v2 memory.max, and the limit-like files of the
// optional metrics: memory.high, low, min, swap.max, v1
// memory.memsw.limit_in_bytes) with inotify, so that a Read reads
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
	// mu makes Changes whole: a Changes that returns has marked every
	// write reported until then, even one another Changes read.
	mu  sync.Mutex
	ino *inotify.Instance[limitFile] // nil without inotify
}

// limitFile is one watched limit file: the i-th file of c. A write to any
// of a cgroup's limit files makes all of them read again (writes are rare).
type limitFile struct {
	c *Cgroup
	i int
}

// NewLimitWatch returns a watch with its own inotify instance (or none,
// when the kernel refuses one: every limit is then read every time).
func NewLimitWatch() *LimitWatch {
	w := &LimitWatch{}
	if in, err := inotify.New[limitFile](); err == nil {
		w.ino = in
	}
	return w
}

// add watches the i-th file of c, at name. It reports false when it
// cannot.
func (w *LimitWatch) add(c *Cgroup, i int, name string) bool {
	return w.ino != nil && w.ino.Add(limitFile{c, i}, name, unix.IN_MODIFY) == nil
}

// remove stops watching the limit files of c; a watch goes when no cgroup
// uses it.
func (w *LimitWatch) remove(c *Cgroup) {
	if w.ino == nil {
		return
	}
	for i, spec := range c.specs {
		if spec.limit {
			w.ino.Remove(limitFile{c, i})
		}
	}
}

// Changes takes the writes reported since the previous call: the limits
// written are read again by the next Read, and all of them after lost
// events.
func (w *LimitWatch) Changes() {
	if w.ino == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	overflow := w.ino.Drain(func(ev inotify.Event[limitFile]) {
		ev.Key.c.limitStale.Store(true)
		if ev.Gone { // the file is gone, and its watch with it
			ev.Key.c.limitWatched.Store(false)
		}
	})
	if overflow {
		for _, k := range w.ino.Keys(nil) {
			k.c.limitStale.Store(true)
		}
	}
}

// Close releases the inotify instance; the cgroups still open read their
// limits every time from then on.
func (w *LimitWatch) Close() {
	if w.ino == nil {
		return
	}
	for _, k := range w.ino.Keys(nil) {
		k.c.limitWatched.Store(false)
	}
	w.ino.Close()
}
