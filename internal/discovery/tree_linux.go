// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package discovery // import "github.com/oomsight/oomsight/internal/discovery"

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"

	"github.com/oomsight/oomsight/internal/cgpath"
	"github.com/oomsight/oomsight/internal/inotify"
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

	ino      *inotify.Instance[string] // watch → cgroup path of the directory; nil without inotify
	live     map[string]struct{}
	lastFull time.Time
	resync   bool // events were lost, or a watch could not be added
}

// NewTree returns a tree of the hierarchy at root (its root cgroup's
// directory); the first Sync walks it.
func NewTree(root string, f *Filter) *Tree {
	t := &Tree{root: root, filter: f, now: time.Now, live: make(map[string]struct{}), resync: true}
	if in, err := inotify.New[string](); err == nil {
		t.ino = in
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

// Fd is the inotify descriptor that becomes readable when a directory is
// created or removed below a watched one, so that a caller can wait for a
// change and Sync at once; -1 without inotify. The descriptor is closed
// when the tree falls back to walking (watch limit reached) or is
// closed: ask again after each wait.
func (t *Tree) Fd() int {
	if t.ino == nil {
		return -1
	}
	return t.ino.Fd()
}

// Watching reports whether changes are followed through inotify (false:
// every Sync walks).
func (t *Tree) Watching() bool { return t.ino != nil }

// Sync brings the tree up to date.
func (t *Tree) Sync() (Delta, error) {
	if err := unix.Access(t.root, unix.F_OK); err != nil {
		return Delta{}, &DirError{Path: "/", Err: err}
	}
	if t.ino == nil || t.resync || t.now().Sub(t.lastFull) >= FullWalkEvery {
		return t.full()
	}
	var d Delta
	overflow := t.ino.Drain(func(ev inotify.Event[string]) {
		if ev.Gone || ev.Mask&unix.IN_ISDIR == 0 || ev.Name == "" {
			return
		}
		child := join(ev.Key, ev.Name)
		switch {
		case ev.Mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0:
			if t.filter.MayContain(child) {
				d.Failed = append(d.Failed, t.add(child, &d.Added)...)
			}
		case ev.Mask&(unix.IN_DELETE|unix.IN_MOVED_FROM) != 0:
			t.remove(child, &d.Removed)
		}
	})
	if overflow {
		return t.full()
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
	if t.ino == nil {
		return
	}
	if err := t.ino.Add(rel, t.root+pathSuffix(rel), watchMask); err != nil && !errors.Is(err, unix.ENOENT) {
		// ENOSPC: the watch limit. Walk every time from now on.
		t.ino.Close()
		t.ino = nil
	}
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
	if t.ino != nil {
		for _, rel := range t.ino.Keys(nil) {
			if _, ok := t.live[rel]; ok {
				continue
			}
			if t.filter.MayContain(rel) && exists(t.root+pathSuffix(rel)) {
				continue // an unselected directory on the way to selected ones
			}
			t.ino.Remove(rel)
		}
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
	if t.ino != nil {
		t.ino.Close()
		t.ino = nil
	}
}
