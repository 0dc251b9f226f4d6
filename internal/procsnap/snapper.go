// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package procsnap // import "github.com/oomsight/oomsight/internal/procsnap"

import (
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
)

const (
	// Every is the shortest time between two snapshots of one cgroup: a
	// cgroup pinned at its limit is read once a second, not on every
	// fast sample or event.
	Every = time.Second
	// QueueSize bounds the snapshots waiting for the worker; a request
	// past it is dropped (counted), so the fast pass and the event
	// watcher never wait for /proc.
	QueueSize = 64
	// PerSecond bounds the snapshots of the whole node: on cgroup v1 page
	// cache fills a limit as readily as a leak, so many cgroups can sit in
	// their limit zone at once. 20 a second of 50 processes each cost
	// about 4 % of a core (BENCH process_snapshot); requests past it are
	// dropped (counted) and the cgroup asks again a second later.
	PerSecond = 20
	// Keep is how many snapshots of one cgroup are kept, newest last.
	Keep = 4
	// MaxAge is how old a snapshot may be and still be attached to a kill.
	MaxAge = time.Minute
	// Quiet ends a near-limit episode: a cgroup with no snapshot for this
	// long has left its limit zone.
	Quiet = 10 * time.Second
	// NearMissEvery is the rate limit of near-limit records: at most one
	// per cgroup per NearMissEvery; it is also the longest episode (a
	// cgroup pinned near its limit without a kill is reported once per
	// NearMissEvery).
	NearMissEvery = time.Minute
)

// Options configure a Snapper.
type Options struct {
	// Proc is the procfs mount ("/proc"); Capture how much of a command
	// line is kept.
	Proc    string
	Capture Capture
	// Dir maps a cgroup path to its directory (cgroupfs.Hierarchy.Abs).
	Dir    func(path string) string
	Logger *zap.Logger
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Taken, when not nil, is called after each snapshot; Dropped when a
	// request found the queue full; Hidden with the processes a snapshot
	// could not see (another pid namespace).
	Taken   func()
	Dropped func()
	Hidden  func(n int)
	// Off, when not empty, is why no snapshot can be complete (the
	// collector is not in the host's pid namespace): then none is taken,
	// and each one due is counted by Skipped instead.
	Off     string
	Skipped func()
	// NearMiss, when not nil, receives the closest snapshot of each
	// near-limit episode that no kill followed (on the worker goroutine:
	// it must not block), at most once per cgroup per NearMissEvery.
	NearMiss func(Snapshot)
}

// Snapper takes snapshots on request on one worker goroutine and keeps the
// last few per cgroup for the kill records. Request never blocks.
type Snapper struct {
	o      Options
	reader *Reader
	queue  chan request
	stop   chan struct{}
	done   chan struct{}

	mu       sync.Mutex
	cgroups  map[string]*cgState
	hiddenOK bool // the missing host pid namespace was logged
	// The node-wide budget (PerSecond): tokens left, refilled at refill.
	tokens float64
	refill time.Time
}

type request struct {
	path, dir    string
	usage, limit uint64
}

// cgState is what the Snapper keeps of one cgroup.
type cgState struct {
	next  time.Time  // no request before (Every)
	snaps []Snapshot // newest last, at most Keep
	// The near-limit episode: from the first snapshot to Quiet after the
	// last, the closest call (highest usage) and whether a kill took one
	// of its snapshots.
	start, last  time.Time
	best         Snapshot
	killed       bool
	lastNearMiss time.Time
}

// New returns a Snapper; Start starts its worker.
func New(o Options) *Snapper {
	if o.Now == nil {
		o.Now = time.Now
	}
	for _, f := range []*func(){&o.Taken, &o.Dropped, &o.Skipped} {
		if *f == nil {
			*f = func() {}
		}
	}
	if o.Dir == nil {
		o.Dir = func(p string) string { return p }
	}
	if o.Hidden == nil {
		o.Hidden = func(int) {}
	}
	return &Snapper{
		o: o, reader: NewReader(o.Proc, o.Capture), queue: make(chan request, QueueSize),
		stop: make(chan struct{}), done: make(chan struct{}), cgroups: make(map[string]*cgState),
	}
}

// Start starts the worker.
func (s *Snapper) Start() { go s.run() }

// Stop stops the worker and waits for it.
func (s *Snapper) Stop() {
	close(s.stop)
	<-s.done
}

// Request asks for a snapshot of the cgroup at path whose usage reached
// usage of limit (0: unknown). At most one per cgroup per Every is taken
// (or, with Options.Off, counted as skipped); it never blocks.
func (s *Snapper) Request(path string, usage, limit uint64) {
	now := s.o.Now()
	s.mu.Lock()
	st := s.cgroups[path]
	if st == nil {
		st = &cgState{}
		s.cgroups[path] = st
	}
	if now.Before(st.next) {
		s.mu.Unlock()
		return
	}
	st.next = now.Add(Every)
	budget := s.spend(now)
	s.mu.Unlock()
	if !budget {
		s.o.Dropped()
		return
	}
	if s.o.Off != "" {
		s.o.Skipped()
		return
	}
	select {
	case s.queue <- request{path: path, dir: s.o.Dir(path), usage: usage, limit: limit}:
	default:
		s.o.Dropped()
	}
}

// spend takes one snapshot from the node-wide budget, a token bucket of
// PerSecond tokens refilled continuously; false when it is empty. Called
// with s.mu held.
func (s *Snapper) spend(now time.Time) bool {
	if s.refill.IsZero() {
		s.tokens = PerSecond
	} else if d := now.Sub(s.refill); d > 0 {
		s.tokens = min(PerSecond, s.tokens+d.Seconds()*PerSecond)
	}
	s.refill = now
	if s.tokens < 1 {
		return false
	}
	s.tokens--
	return true
}

func (s *Snapper) run() {
	defer close(s.done)
	sweep := time.NewTicker(time.Second)
	defer sweep.Stop()
	for {
		select {
		case <-s.stop:
			return
		case req := <-s.queue:
			s.take(req)
		case <-sweep.C:
			s.sweep(s.o.Now())
		}
	}
}

// take takes one snapshot and keeps it.
func (s *Snapper) take(req request) {
	// The snapshot's time is when reading began: a kill during the read
	// comes after it (Nearest compares with the kill's time).
	at := s.o.Now()
	snap, err := s.reader.Take(req.dir)
	if err != nil {
		s.o.Logger.Debug("process snapshot not taken", zap.String("cgroup.path", req.path), zap.Error(err))
		return
	}
	snap.Path, snap.Time, snap.Usage, snap.Limit = req.path, at, req.usage, req.limit
	s.o.Taken()
	if snap.Hidden > 0 {
		s.o.Hidden(snap.Hidden)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if snap.Hidden > 0 && !s.hiddenOK {
		s.hiddenOK = true
		s.o.Logger.Warn("process snapshots are incomplete: processes of the cgroup are in another pid namespace (the collector does not share the host's: set hostPID: true in the DaemonSet); their pids, command lines and memory are left out of OOM records (counted in otelcol_cgroupmemory_process_snapshot_hidden)",
			zap.String("cgroup.path", req.path), zap.Int("hidden", snap.Hidden), zap.Int("seen", snap.Seen))
	}
	st := s.cgroups[req.path]
	if st == nil {
		st = &cgState{}
		s.cgroups[req.path] = st
	}
	if len(st.snaps) == Keep {
		copy(st.snaps, st.snaps[1:])
		st.snaps = st.snaps[:Keep-1]
	}
	st.snaps = append(st.snaps, snap)
	if st.start.IsZero() {
		st.start, st.best = snap.Time, snap
	} else if snap.Usage >= st.best.Usage {
		st.best = snap
	}
	st.last = snap.Time
}

// Nearest returns the newest snapshot taken at or before until (and at
// most MaxAge before it) of any of the cgroups at paths — the limiting
// cgroup and the victim's — and marks their episodes as ended by a kill
// (no near-limit record for them).
func (s *Snapper) Nearest(paths []string, until time.Time) (Snapshot, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var best Snapshot
	found := false
	for _, p := range paths {
		st := s.cgroups[p]
		if st == nil {
			continue
		}
		if !st.start.IsZero() {
			st.killed = true
		}
		for i := range slices.Backward(st.snaps) {
			sn := &st.snaps[i]
			if sn.Time.After(until) {
				continue
			}
			if until.Sub(sn.Time) <= MaxAge && (!found || sn.Time.After(best.Time)) {
				best, found = *sn, true
			}
			break
		}
	}
	return best, found
}

// sweep ends the episodes that are over, hands the near misses on, and
// forgets cgroups with nothing recent.
func (s *Snapper) sweep(now time.Time) {
	var near []Snapshot
	s.mu.Lock()
	for path, st := range s.cgroups {
		if !st.start.IsZero() && (now.Sub(st.last) >= Quiet || now.Sub(st.start) >= NearMissEvery) {
			if !st.killed && s.o.NearMiss != nil && (st.lastNearMiss.IsZero() || now.Sub(st.lastNearMiss) >= NearMissEvery) {
				near = append(near, st.best)
				st.lastNearMiss = now
			}
			st.start, st.last, st.best, st.killed = time.Time{}, time.Time{}, Snapshot{}, false
		}
		if st.start.IsZero() && now.Sub(st.next) >= MaxAge && now.Sub(st.lastNearMiss) >= NearMissEvery {
			delete(s.cgroups, path)
		}
	}
	s.mu.Unlock()
	for i := range near {
		sn := &near[i]
		s.o.NearMiss(*sn)
	}
}
