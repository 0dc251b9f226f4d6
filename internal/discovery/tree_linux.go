package discovery

import (
	"errors"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/oomsight/oomsight/internal/cgpath"
)

// FullWalkEvery is how often a Tree walks the whole hierarchy although no
// event said anything changed: the safety net for what inotify cannot see
// (memory accounting enabled later on a v2 cgroup, whose files appear
// without a mkdir).
const FullWalkEvery = time.Minute

// watchMask: a cgroup directory created or removed below a watched one.
const watchMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_ONLYDIR

// Tree keeps the set of cgroups of a hierarchy that a filter selects. It
// watches every directory it walked with inotify (one instance), so that a
// Sync where nothing changed costs one read that returns nothing, and a
// mkdir or rmdir costs a walk of that directory alone. It walks everything
// again when the kernel dropped events (queue overflow), every
// FullWalkEvery, and on every Sync when inotify is not available (no
// instance, or the watch limit fs.inotify.max_user_watches reached). It is
// not safe for concurrent use.
type Tree struct {
	root   string
	filter *Filter
	now    func() time.Time

	ino      int              // -1 without inotify
	wds      map[int32]string // watch → cgroup path of the directory
	dirs     map[string]int32 // directory → watch
	live     map[string]struct{}
	lastFull time.Time
	resync   bool // events were lost, or a watch could not be added
	buf      []byte
}

// NewTree returns a tree of the hierarchy at root (its root cgroup's
// directory); the first Sync walks it.
func NewTree(root string, f *Filter) *Tree {
	t := &Tree{root: root, filter: f, now: time.Now, ino: -1,
		wds: make(map[int32]string), dirs: make(map[string]int32), live: make(map[string]struct{}),
		buf: make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1)), resync: true}
	if fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK); err == nil {
		t.ino = fd
	}
	return t
}

// Delta is what a Sync found.
type Delta struct {
	// Full: a full walk ran and Live is every selected cgroup. Otherwise
	// Added and Removed are the changes since the previous Sync.
	Full           bool
	Live           []string
	Added, Removed []string
	// Failed are directories that could not be listed: the cgroups known
	// below them are to be kept, not taken for removed.
	Failed []*DirError
}

// Watching reports whether changes are followed through inotify (false:
// every Sync walks).
func (t *Tree) Watching() bool { return t.ino >= 0 }

// Sync brings the tree up to date.
func (t *Tree) Sync() (Delta, error) {
	if err := unix.Access(t.root, unix.F_OK); err != nil {
		return Delta{}, &DirError{Path: "/", Err: err}
	}
	if t.ino < 0 || t.resync || t.now().Sub(t.lastFull) >= FullWalkEvery {
		return t.full()
	}
	var d Delta
	for {
		n, err := unix.Read(t.ino, t.buf)
		if err != nil || n <= 0 {
			break // EAGAIN: nothing (more) happened
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&t.buf[off])) //nolint:gosec // the kernel's inotify_event layout, bounds checked by the loop
			name := ""
			if ev.Len > 0 {
				b := t.buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
				name = strings.TrimRight(string(b), "\x00")
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
				return t.full()
			}
			dir, ok := t.wds[ev.Wd]
			if ev.Mask&unix.IN_IGNORED != 0 {
				if ok {
					delete(t.wds, ev.Wd)
					if t.dirs[dir] == ev.Wd {
						delete(t.dirs, dir)
					}
				}
				continue
			}
			if !ok || ev.Mask&unix.IN_ISDIR == 0 || name == "" {
				continue
			}
			child := join(dir, name)
			switch {
			case ev.Mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0:
				if t.filter.MayContain(child) {
					d.Failed = append(d.Failed, t.add(child, &d.Added)...)
				}
			case ev.Mask&(unix.IN_DELETE|unix.IN_MOVED_FROM) != 0:
				t.remove(child, &d.Removed)
			}
		}
	}
	if t.resync {
		return t.full() // a watch could not be added meanwhile
	}
	return d, nil
}

// add walks the directory at rel (new, or all of it on a full walk),
// watching every directory and appending the selected cgroups that were
// not known yet to added.
func (t *Tree) add(rel string, added *[]string) []*DirError {
	return walk(t.root, rel, t.filter, func(p string) error {
		t.watch(p)
		if _, known := t.live[p]; !known && t.filter.Match(p) {
			t.live[p] = struct{}{}
			*added = append(*added, p)
		}
		return nil
	})
}

// watch adds an inotify watch on the directory at rel (before its entries
// are read, so that nothing created meanwhile is missed).
func (t *Tree) watch(rel string) {
	if t.ino < 0 {
		return
	}
	wd, err := unix.InotifyAddWatch(t.ino, t.root+pathSuffix(rel), watchMask)
	if err != nil {
		if !errors.Is(err, unix.ENOENT) {
			// ENOSPC: the watch limit. Walk every time from now on.
			_ = unix.Close(t.ino)
			t.ino = -1
		}
		return
	}
	id := int32(wd) //nolint:gosec // watch descriptors are positive int32s (struct inotify_event's wd)
	if old, ok := t.dirs[rel]; ok && old != id {
		delete(t.wds, old)
	}
	t.wds[id] = rel
	t.dirs[rel] = id
}

// remove forgets the directory at rel and everything below it, appending
// the selected cgroups among them to removed. The kernel drops the watches
// of removed directories itself (IN_IGNORED).
func (t *Tree) remove(rel string, removed *[]string) {
	for p := range t.live {
		if cgpath.Within(rel, p) {
			delete(t.live, p)
			*removed = append(*removed, p)
		}
	}
}

// full walks the whole hierarchy.
func (t *Tree) full() (Delta, error) {
	t.resync = false
	t.lastFull = t.now()
	old := t.live
	t.live = make(map[string]struct{}, len(old))
	var added []string
	failed := t.add("/", &added)
	d := Delta{Full: true, Failed: failed}
	for p := range t.live {
		d.Live = append(d.Live, p)
	}
	// Keep what is below a directory that could not be listed.
	for p := range old {
		if _, ok := t.live[p]; !ok && below(p, failed) {
			t.live[p] = struct{}{}
			d.Live = append(d.Live, p)
		}
	}
	// Watches of directories that are gone or now pruned.
	for rel, wd := range t.dirs {
		if _, ok := t.live[rel]; ok {
			continue
		}
		if t.filter.MayContain(rel) && exists(t.root+pathSuffix(rel)) {
			continue // an unselected directory on the way to selected ones
		}
		if t.ino >= 0 {
			_, _ = unix.InotifyRmWatch(t.ino, uint32(wd)) //nolint:gosec // positive, from inotify_add_watch
		}
		delete(t.dirs, rel)
		delete(t.wds, wd)
	}
	return d, nil
}

func below(p string, failed []*DirError) bool {
	for _, f := range failed {
		if cgpath.Within(f.Path, p) {
			return true
		}
	}
	return false
}

func exists(dir string) bool {
	return unix.Access(dir, unix.F_OK) == nil
}

// Close releases the inotify instance.
func (t *Tree) Close() {
	if t.ino >= 0 {
		_ = unix.Close(t.ino)
		t.ino = -1
	}
}
