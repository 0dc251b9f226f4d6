// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package sampler // import "github.com/oomsight/oomsight/internal/sampler"

import (
	"sync"
	"time"

	"github.com/oomsight/oomsight/internal/cgpath"
	"github.com/oomsight/oomsight/internal/cgroupfs"
	"github.com/oomsight/oomsight/internal/killcount"
	"github.com/oomsight/oomsight/internal/registry"
)

const (
	// killMemory is how long counted kills are remembered for attributing
	// a rate-limited kill line.
	killMemory = time.Minute
	// inferWithin is how close to a cgroup-less kill line a counted kill
	// must be to be attributed to it.
	inferWithin = 10 * time.Second
	// oomScanDelay: a v1 OOM notification comes before the kill; the
	// counters are read this long after it.
	oomScanDelay = 100 * time.Millisecond
)

// counted is a Kill and how many of its processes kernel reports explained.
type counted struct {
	Kill
	claimed uint64
}

// kills is the kill accounting: every reading of an oom_kill counter, from
// whichever reader, goes through book, and its one killcount.Counter holds
// the previous value of each cgroup's counter (see package killcount). The
// kills found are kept for killMemory, so that a kill line without a
// cgroup (the kernel rate-limited its report) can be attributed, and are
// handed to the subscriber, if any (the OOM pipeline while the kernel log
// cannot be read).
type kills struct {
	reg *registry.Registry
	now func() time.Time

	mu      sync.Mutex
	counter *killcount.Counter
	reader  *cgroupfs.Reader
	sample  cgroupfs.Sample
	// scanned are the readings of a scan, reused; a collection keeps its
	// own (it runs on another goroutine: see Sampler.readings).
	scanned map[string]uint64
	recent  []counted
	// sub is the subscriber of counted kills, nil when none. It is called
	// without mu held.
	sub *func(Kill)
}

func newKills(reg *registry.Registry, now func() time.Time) *kills {
	return &kills{
		reg:     reg,
		now:     now,
		counter: killcount.New(),
		reader:  cgroupfs.NewReader(),
		scanned: make(map[string]uint64),
	}
}

// subscribe hands every kill counted from now on to fn, until the returned
// cancel is called. One subscriber at a time: a second one replaces the
// first, whose cancel then does nothing.
func (k *kills) subscribe(fn func(Kill)) (cancel func()) {
	k.mu.Lock()
	defer k.mu.Unlock()
	sub := &fn
	k.sub = sub
	return func() {
		k.mu.Lock()
		defer k.mu.Unlock()
		if k.sub == sub {
			k.sub = nil
		}
	}
}

// book takes counter readings taken together at `at` and returns how many
// kills they show.
func (k *kills) book(readings map[string]uint64, at time.Time) int {
	k.mu.Lock()
	fresh, sub := k.bookLocked(readings, at)
	k.mu.Unlock()
	deliver(fresh, sub)
	return len(fresh)
}

func (k *kills) bookLocked(readings map[string]uint64, at time.Time) ([]Kill, *func(Kill)) {
	found := k.counter.Update(readings)
	cut := at.Add(-killMemory)
	i := 0
	for i < len(k.recent) && k.recent[i].At.Before(cut) {
		i++
	}
	k.recent = append(k.recent[:0], k.recent[i:]...)
	var fresh []Kill
	for _, kl := range found {
		c := Kill{Path: kl.Path, At: at, N: kl.N}
		k.recent = append(k.recent, counted{Kill: c})
		fresh = append(fresh, c)
	}
	return fresh, k.sub
}

func deliver(fresh []Kill, sub *func(Kill)) {
	if sub == nil {
		return
	}
	for _, c := range fresh {
		(*sub)(c)
	}
}

// bookOne takes one cgroup's reading (a v2 event: memory.events.local is
// the cgroup's own, so a partial reading is exact) and reports whether it
// shows a kill.
func (k *kills) bookOne(path string, oomKills uint64, at time.Time) bool {
	return k.book(map[string]uint64{path: oomKills}, at) > 0
}

// scan reads every cgroup's counter now and books the rises.
func (k *kills) scan() {
	entries := k.reg.Entries(nil) // before k.mu: the registry calls forget under its lock
	k.mu.Lock()
	clear(k.scanned)
	for _, e := range entries {
		if err := k.reader.Counters(e.Cgroup, &k.sample); err != nil {
			continue
		}
		if v, ok := k.sample.Get(cgroupfs.OOMKills); ok {
			k.scanned[e.Path] = v
		}
	}
	fresh, sub := k.bookLocked(k.scanned, k.now())
	k.mu.Unlock()
	deliver(fresh, sub)
}

// forget drops a cgroup that left.
func (k *kills) forget(path string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.counter.Forget(path)
}

// claim marks one counted kill of path (or of its nearest counted
// ancestor: the victim's own cgroup may not be watched) as explained by a
// kernel report.
func (k *kills) claim(path string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	best := -1
	for i := len(k.recent) - 1; i >= 0; i-- {
		c := &k.recent[i]
		if c.claimed >= c.N || !cgpath.Within(c.Path, path) {
			continue
		}
		if best < 0 || len(c.Path) > len(k.recent[best].Path) {
			best = i
		}
	}
	if best >= 0 {
		k.recent[best].claimed++
	}
}

// infer attributes a kill line without a cgroup, printed at `at`, to the
// cgroup whose counter rose then: the counters are read at once (the kernel
// raises the counter before it prints the kill line), and the newest
// unexplained counted kill within inferWithin is claimed.
func (k *kills) infer(at time.Time) (string, bool) {
	k.scan()
	k.mu.Lock()
	defer k.mu.Unlock()
	for i := len(k.recent) - 1; i >= 0; i-- {
		c := &k.recent[i]
		d := c.At.Sub(at)
		if c.claimed < c.N && d > -inferWithin && d < inferWithin {
			c.claimed++
			return c.Path, true
		}
	}
	return "", false
}
