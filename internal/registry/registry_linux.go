// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package registry keeps the live cgroups of a memory hierarchy: each with
// its identity, its open memory files and the per-cgroup state the sampler
// keeps between samples. Discovery refreshes it; the sampler and (out of
// band) the OOM enrichment read from it.
package registry // import "github.com/oomsight/oomsight/internal/registry"

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/oomsight/oomsight/internal/cgpath"
	"github.com/oomsight/oomsight/internal/cgroupfs"
	"github.com/oomsight/oomsight/internal/discovery"
	"github.com/oomsight/oomsight/internal/eta"
	"github.com/oomsight/oomsight/internal/identity"
	"github.com/oomsight/oomsight/internal/recorder"
)

// Keep is how long the flight recorder of a removed cgroup stays readable:
// a runtime removes a container's cgroup right after its last process was
// OOM-killed, before the kill's record is assembled.
const Keep = 30 * time.Second

// MaxDeparted bounds the removed cgroups kept for Keep (the oldest go
// first), so that heavy churn — 50 cgroups a second would otherwise keep
// 1500 flight recorders — costs a bounded amount of memory: 256 recorders
// are 3.1 MiB.
const MaxDeparted = 256

// Entry is one live cgroup. Path, Identity and Cgroup never change; the
// failure bookkeeping belongs to the one goroutine that samples on schedule;
// the sampling state (see state_linux.go) is shared by the fast pass, the event
// sampler, the scraper and the OOM enrichment under its own lock.
type Entry struct {
	Path     string
	Identity identity.Identity
	Cgroup   *cgroupfs.Cgroup

	failing map[string]struct{}
	state
}

// FirstFailure records that file failed and reports whether that is news:
// a file that stays unreadable is reported once, not on every sample.
func (e *Entry) FirstFailure(file string) bool {
	if _, ok := e.failing[file]; ok {
		return false
	}
	if e.failing == nil {
		e.failing = make(map[string]struct{})
	}
	e.failing[file] = struct{}{}
	return true
}

// Recovered forgets earlier failures, so that a file failing again later is
// reported again.
func (e *Entry) Recovered() {
	clear(e.failing)
}

// Changes is what one Refresh did.
type Changes struct {
	Added, Removed int
	// New are the cgroups added, when the caller asked for them (see
	// RefreshNew).
	New []*Entry
	// Skipped lists cgroups that could not be opened for another reason than
	// vanishing or having no memory accounting; each is reported once.
	Skipped []error
}

// Registry is the set of live cgroups. It is safe for concurrent use.
type Registry struct {
	h        cgroupfs.Hierarchy
	opt      cgroupfs.Optional
	sampling time.Duration
	// onRemove is called (with the registry locked: it must not call
	// back) for every cgroup that leaves.
	onRemove func(path string)
	now      func() time.Time

	mu      sync.Mutex
	entries map[string]*Entry
	sorted  []*Entry
	// ignored remembers cgroups that cannot be sampled (no memory
	// accounting, or a file that failed to open), with whether that was
	// reported, so that they are retried on full walks only and reported
	// once; retry holds those that failed for want of descriptors.
	ignored map[string]bool
	retry   map[string]struct{}
	treeMu  sync.Mutex // the tree is not safe for concurrent use
	tree    *discovery.Tree
	// limits follows writes to the limit files, so that a full sample
	// reads a limit only after it changed.
	limits *cgroupfs.LimitWatch
	// departed keeps the flight recorders of removed cgroups for Keep.
	departed map[string]departed
	// gone are the cgroups removed since the last TakeGone, oldest first:
	// their last interval (the one that may have killed) is still to be
	// exported. At most MaxDeparted (the oldest go first).
	gone []*Entry
}

type departed struct {
	e  *Entry
	at time.Time
}

// New returns an empty registry over h; Refresh fills it. sampling is the
// fast pass's interval (0: off), which sizes the flight recorders' buckets.
// onRemove, when not nil, is called for every cgroup that leaves, with the
// registry locked: it must not call back into the registry.
func New(h cgroupfs.Hierarchy, filter *discovery.Filter, opt cgroupfs.Optional, sampling time.Duration, onRemove func(path string)) *Registry {
	if onRemove == nil {
		onRemove = func(string) {}
	}
	return &Registry{
		h:        h,
		opt:      opt,
		sampling: sampling,
		onRemove: onRemove,
		now:      time.Now,
		entries:  make(map[string]*Entry),
		ignored:  make(map[string]bool),
		retry:    make(map[string]struct{}),
		tree:     discovery.NewTree(h.Dir, filter),
		limits:   cgroupfs.NewLimitWatch(),
		departed: make(map[string]departed),
	}
}

// LimitChanges takes the writes to limit files made until now, so that
// the next reads of the cgroups concerned read their limits again (see
// cgroupfs.LimitWatch). Refresh calls it; a reader outside the scrape
// calls it before reading.
func (r *Registry) LimitChanges() { r.limits.Changes() }

// Hierarchy is the memory hierarchy the registry covers.
func (r *Registry) Hierarchy() cgroupfs.Hierarchy { return r.h }

// Refresh brings the registry up to date with the hierarchy: it opens the
// cgroups that appeared and closes those that are gone. Discovery is
// incremental (discovery.Tree): when nothing changed it costs one read of
// an inotify descriptor; a full walk runs at start, every
// discovery.FullWalkEvery, and when events were lost. Cgroups that could
// not be opened for want of descriptors are tried again on every Refresh;
// those without memory accounting or refused for another reason are tried
// again on every full walk (a v2 parent may enable memory later). A walk
// error is returned with the changes that were made; the cgroups below a
// directory that could not be listed stay.
func (r *Registry) Refresh() (Changes, error) { return r.refresh(false) }

// RefreshNew is Refresh that also lists the cgroups it added
// (Changes.New), so that they can be sampled at once.
func (r *Registry) RefreshNew() (Changes, error) { return r.refresh(true) }

// ChangeFd is the descriptor that becomes readable when a cgroup
// directory is created or removed (discovery.Tree.Fd), -1 when changes
// are found by walking only.
func (r *Registry) ChangeFd() int {
	r.treeMu.Lock()
	defer r.treeMu.Unlock()
	return r.tree.Fd()
}

func (r *Registry) refresh(listNew bool) (Changes, error) {
	r.limits.Changes()
	r.treeMu.Lock()
	d, err := r.tree.Sync()
	r.treeMu.Unlock()
	if err != nil {
		return Changes{}, fmt.Errorf("listing cgroups below %s: %w", r.h.Dir, err)
	}
	var ch Changes
	r.mu.Lock()
	defer r.mu.Unlock()
	candidates := d.Added
	if d.Full {
		candidates = d.Live
		live := make(map[string]struct{}, len(d.Live))
		for _, p := range d.Live {
			live[p] = struct{}{}
		}
		for p, e := range r.entries {
			if _, ok := live[p]; !ok {
				r.removeLocked(e)
				ch.Removed++
			}
		}
		for p := range r.ignored {
			if _, ok := live[p]; !ok {
				delete(r.ignored, p)
			}
		}
		for p := range r.retry {
			if _, ok := live[p]; !ok {
				delete(r.retry, p)
			}
		}
	} else {
		for _, p := range d.Removed {
			if e, ok := r.entries[p]; ok {
				r.removeLocked(e)
				ch.Removed++
			}
			delete(r.ignored, p)
			delete(r.retry, p)
		}
		for p := range r.retry {
			candidates = append(candidates, p)
		}
	}
	for _, p := range candidates {
		if _, ok := r.entries[p]; ok {
			continue
		}
		reported, ignored := r.ignored[p]
		if ignored && !d.Full {
			continue
		}
		cg, err := cgroupfs.OpenWatched(r.h, p, r.opt, r.limits)
		delete(r.retry, p)
		switch {
		case err == nil:
			e := &Entry{Path: p, Identity: identity.FromPath(p), Cgroup: cg}
			e.rec = recorder.New(r.sampling)
			e.start = r.now()
			r.entries[p] = e
			delete(r.ignored, p)
			ch.Added++
			if listNew {
				ch.New = append(ch.New, e)
			}
		case errors.Is(err, cgroupfs.ErrVanished):
		case errors.Is(err, cgroupfs.ErrNotAccounted):
			r.ignored[p] = false
		case errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE):
			// Out of file descriptors: transient, tried on every refresh.
			r.retry[p] = struct{}{}
			ch.Skipped = append(ch.Skipped, err)
		default:
			r.ignored[p] = true
			if !reported {
				ch.Skipped = append(ch.Skipped, err)
			}
		}
	}
	r.pruneLocked()
	if ch.Added > 0 || ch.Removed > 0 {
		r.resort()
	}
	if len(d.Failed) > 0 {
		errs := make([]error, len(d.Failed))
		for i, f := range d.Failed {
			errs[i] = f
		}
		return ch, fmt.Errorf("listing cgroups below %s (the cgroups known below kept): %w", r.h.Dir, errors.Join(errs...))
	}
	return ch, nil
}

func (r *Registry) resort() {
	r.sorted = r.sorted[:0]
	for _, e := range r.entries {
		r.sorted = append(r.sorted, e)
	}
	sort.Slice(r.sorted, func(i, j int) bool { return r.sorted[i].Path < r.sorted[j].Path })
}

// Entries appends the live cgroups, in path order, to dst and returns it.
func (r *Registry) Entries(dst []*Entry) []*Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append(dst, r.sorted...)
}

// Get returns the live cgroup at path, or nil.
func (r *Registry) Get(path string) *Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.entries[path]
}

// Find returns the cgroup at path that still has a point to export: the
// live one, or one removed whose last interval is not taken yet
// (TakeGone); nil when there is none.
func (r *Registry) Find(path string) *Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e := r.entries[path]; e != nil {
		return e
	}
	for _, v := range slices.Backward(r.gone) {
		if v.Path == path {
			return v
		}
	}
	return nil
}

// Drop closes and forgets the cgroup at path (found vanished while reading).
// A cgroup created again at that path is a mkdir, which the next Refresh
// sees; one that was not really gone comes back with the next full walk.
func (r *Registry) Drop(path string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[path]
	if !ok {
		return
	}
	r.removeLocked(e)
	i := sort.Search(len(r.sorted), func(i int) bool { return r.sorted[i].Path >= path })
	if i < len(r.sorted) && r.sorted[i] == e {
		r.sorted = append(r.sorted[:i], r.sorted[i+1:]...)
	}
}

// removeLocked closes a cgroup that left and keeps its recorder for Keep.
func (r *Registry) removeLocked(e *Entry) {
	e.Cgroup.Close()
	delete(r.entries, e.Path)
	r.departed[e.Path] = departed{e: e, at: r.now()}
	if len(r.departed) > MaxDeparted {
		oldest, at := "", time.Time{}
		for p, d := range r.departed {
			if oldest == "" || d.at.Before(at) {
				oldest, at = p, d.at
			}
		}
		delete(r.departed, oldest)
	}
	if len(r.gone) >= MaxDeparted {
		r.gone[0] = nil
		r.gone = r.gone[1:]
	}
	r.gone = append(r.gone, e)
	r.onRemove(e.Path)
}

// TakeGone appends the cgroups removed since the previous call to dst,
// oldest first, and forgets them: each is handed out once, so that its
// last interval (Entry.Final) is exported once.
func (r *Registry) TakeGone(dst []*Entry) []*Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	dst = append(dst, r.gone...)
	clear(r.gone)
	r.gone = r.gone[:0]
	return dst
}

func (r *Registry) pruneLocked() {
	now := r.now()
	for p, d := range r.departed {
		if now.Sub(d.at) > Keep {
			delete(r.departed, p)
		}
	}
}

// History returns the flight recorder's history of the cgroup at path up
// to until: the live cgroup's, or, when it has none that old, the one of a
// cgroup at that path removed less than Keep ago. ok is false when neither
// has any point.
func (r *Registry) History(path string, until time.Time) (recorder.History, bool) {
	r.mu.Lock()
	r.pruneLocked()
	live, d := r.entries[path], r.departed[path]
	r.mu.Unlock()
	for _, e := range []*Entry{live, d.e} {
		if e == nil {
			continue
		}
		if h := e.History(until); len(h.T) > 0 {
			return h, true
		}
	}
	return recorder.History{}, false
}

// ETA is the time from now until the unreclaimable memory of e or of one
// of its ancestors in the registry reaches that cgroup's limit, whichever
// comes first (the kernel kills when any of them is full: a container's
// own limit or its pod's), from each one's last full sample: +Inf when
// none of them is rising towards its limit, false when none has a limit.
// e's own full sample must have been recorded already (Entry.Full).
func (r *Registry) ETA(e *Entry, now time.Time) (float64, bool) {
	best, ok := e.ownETA(now)
	for p := cgpath.Parent(e.Path); p != ""; p = cgpath.Parent(p) {
		r.mu.Lock()
		a := r.entries[p]
		r.mu.Unlock()
		if a != nil {
			v, aok := a.ownETA(now)
			best, ok = eta.Soonest(best, ok, v, aok)
		}
	}
	return best, ok
}

// Len is the number of live cgroups.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.entries)
}

// Close closes every cgroup.
func (r *Registry) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for p, e := range r.entries {
		e.Cgroup.Close()
		delete(r.entries, p)
	}
	r.sorted = nil
	clear(r.departed)
	clear(r.gone)
	r.gone = nil
	r.treeMu.Lock()
	r.tree.Close()
	r.treeMu.Unlock()
	r.limits.Close()
}
