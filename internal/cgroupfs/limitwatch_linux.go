package cgroupfs

import (
	"sync"

	"golang.org/x/sys/unix"

	"github.com/oomsight/oomsight/internal/inotify"
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
	// mu makes Changes whole: a Changes that returns has marked every
	// write reported until then, even one another Changes read.
	mu  sync.Mutex
	ino *inotify.Instance[*Cgroup] // nil without inotify
}

// NewLimitWatch returns a watch with its own inotify instance (or none,
// when the kernel refuses one: every limit is then read every time).
func NewLimitWatch() *LimitWatch {
	w := &LimitWatch{}
	if in, err := inotify.New[*Cgroup](); err == nil {
		w.ino = in
	}
	return w
}

// add watches the limit file at name for c. It reports false when it
// cannot: c then reads its limit every time.
func (w *LimitWatch) add(c *Cgroup, name string) bool {
	return w.ino != nil && w.ino.Add(c, name, unix.IN_MODIFY) == nil
}

// remove stops watching for c; the watch goes when no cgroup uses it.
func (w *LimitWatch) remove(c *Cgroup) {
	if w.ino != nil {
		w.ino.Remove(c)
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
	overflow := w.ino.Drain(func(ev inotify.Event[*Cgroup]) {
		ev.Key.limitStale.Store(true)
		if ev.Gone { // the file is gone, and its watch with it
			ev.Key.limitWatched.Store(false)
		}
	})
	if overflow {
		for _, c := range w.ino.Keys(nil) {
			c.limitStale.Store(true)
		}
	}
}

// Close releases the inotify instance; the cgroups still open read their
// limits every time from then on.
func (w *LimitWatch) Close() {
	if w.ino == nil {
		return
	}
	for _, c := range w.ino.Keys(nil) {
		c.limitWatched.Store(false)
	}
	w.ino.Close()
}
