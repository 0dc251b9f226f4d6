// Package registry keeps the live cgroups of a memory hierarchy: each with
// its identity, its open memory files and the per-cgroup state the sampler
// keeps between samples. Discovery refreshes it; the sampler and (out of
// band) the OOM enrichment read from it.
package registry // import "github.com/oomsight/oomsight/internal/registry"

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/oomsight/oomsight/internal/cgroupfs"
	"github.com/oomsight/oomsight/internal/discovery"
	"github.com/oomsight/oomsight/internal/identity"
	"github.com/oomsight/oomsight/internal/recorder"
)

// Keep is how long the flight recorder of a removed cgroup stays readable:
// a runtime removes a container's cgroup right after its last process was
// OOM-killed, before the kill's record is assembled.
const Keep = 30 * time.Second

// Entry is one live cgroup. Path, Identity and Cgroup never change; the
// failure bookkeeping belongs to the one goroutine that samples on schedule;
// the sampling state (see state.go) is shared by the fast pass, the event
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
	// Skipped lists cgroups that could not be opened for another reason than
	// vanishing or having no memory accounting; each is reported once.
	Skipped []error
}

// Registry is the set of live cgroups. It is safe for concurrent use.
type Registry struct {
	h        cgroupfs.Hierarchy
	filter   *discovery.Filter
	opt      cgroupfs.Optional
	sampling time.Duration
	// OnRemove, when set before the first Refresh, is called (with the
	// registry locked: it must not call back) for every cgroup that leaves.
	OnRemove func(path string)
	now      func() time.Time

	mu      sync.Mutex
	entries map[string]*Entry
	sorted  []*Entry
	// ignored remembers cgroups that cannot be sampled (no memory
	// accounting, or a file that failed to open) so that they are not
	// retried and reported on every refresh.
	ignored map[string]struct{}
	// departed keeps the flight recorders of removed cgroups for Keep.
	departed map[string]departed
}

type departed struct {
	e  *Entry
	at time.Time
}

// New returns an empty registry over h; Refresh fills it. sampling is the
// fast pass's interval (0: off), which sizes the flight recorders' buckets.
func New(h cgroupfs.Hierarchy, filter *discovery.Filter, opt cgroupfs.Optional, sampling time.Duration) *Registry {
	return &Registry{
		h:        h,
		filter:   filter,
		opt:      opt,
		sampling: sampling,
		now:      time.Now,
		entries:  make(map[string]*Entry),
		ignored:  make(map[string]struct{}),
		departed: make(map[string]departed),
	}
}

// Hierarchy is the memory hierarchy the registry covers.
func (r *Registry) Hierarchy() cgroupfs.Hierarchy { return r.h }

// Refresh walks the hierarchy, opens cgroups that appeared and closes those
// that are gone. A walk error is returned with the changes that were made.
func (r *Registry) Refresh() (Changes, error) {
	paths, walkErr := discovery.Walk(r.h.Dir, r.filter)
	if walkErr != nil && paths == nil {
		return Changes{}, fmt.Errorf("listing cgroups below %s: %w", r.h.Dir, walkErr)
	}
	live := make(map[string]struct{}, len(paths))
	var ch Changes

	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range paths {
		live[p] = struct{}{}
		if _, ok := r.entries[p]; ok {
			continue
		}
		if _, ok := r.ignored[p]; ok {
			continue
		}
		cg, err := cgroupfs.Open(r.h, p, r.opt)
		switch {
		case err == nil:
			e := &Entry{Path: p, Identity: identity.FromPath(p), Cgroup: cg}
			e.rec = recorder.New(r.sampling)
			r.entries[p] = e
			ch.Added++
		case errors.Is(err, cgroupfs.ErrVanished):
		case errors.Is(err, cgroupfs.ErrNotAccounted):
			r.ignored[p] = struct{}{}
		case errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE):
			// Out of file descriptors: transient, so tried again on the
			// next refresh rather than skipped for good.
			ch.Skipped = append(ch.Skipped, err)
		default:
			r.ignored[p] = struct{}{}
			ch.Skipped = append(ch.Skipped, err)
		}
	}
	for p, e := range r.entries {
		if _, ok := live[p]; !ok {
			r.removeLocked(e)
			ch.Removed++
		}
	}
	r.pruneLocked()
	for p := range r.ignored {
		if _, ok := live[p]; !ok {
			delete(r.ignored, p)
		}
	}
	if ch.Added > 0 || ch.Removed > 0 {
		r.resort()
	}
	if walkErr != nil {
		return ch, fmt.Errorf("listing cgroups below %s: %w", r.h.Dir, walkErr)
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

// Drop closes and forgets the cgroup at path (found vanished while reading);
// a later Refresh adds it again if it comes back.
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
	if r.OnRemove != nil {
		r.OnRemove(e.Path)
	}
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
}
