// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package sampler // import "github.com/oomsight/oomsight/internal/sampler"

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/oomsight/oomsight/internal/cgroupfs"
	"github.com/oomsight/oomsight/internal/discovery"
	"github.com/oomsight/oomsight/internal/events"
	"github.com/oomsight/oomsight/internal/identity"
	"github.com/oomsight/oomsight/internal/oompoint"
	"github.com/oomsight/oomsight/internal/recorder"
	"github.com/oomsight/oomsight/internal/registry"
	"github.com/oomsight/oomsight/internal/survival"
)

// Options configure a Sampler. Every field is read by New only.
type Options struct {
	// Hierarchy is the memory hierarchy sampled (cgroupfs.Detect).
	Hierarchy cgroupfs.Hierarchy
	// Filter selects the cgroups (include/exclude); nil selects all.
	Filter *discovery.Filter
	// Optional are the files only disabled-by-default metrics need, and
	// the v1 peak reset.
	Optional cgroupfs.Optional
	// SamplingInterval sizes the flight recorders' buckets; FastPass runs
	// the fast pass at that interval.
	SamplingInterval time.Duration
	FastPass         bool
	// PeakReset is the peak_reset setting: a v1 cgroup whose watermark
	// cannot be reset is then reported once.
	PeakReset bool
	// Events turns capture at the limit on (limit and OOM events).
	Events bool
	// Logger receives what goes wrong, each thing once.
	Logger *zap.Logger
	// EventSampled, when not nil, is called after each event sample (the
	// receiver counts them in its telemetry).
	EventSampled func()
	// Snapshot, when not nil, is asked for a snapshot of a cgroup's
	// processes whenever the cgroup is in its limit zone: a v1 threshold
	// or OOM notification, a v2 max or high event, or a sample (fast or
	// collected) at or above events.ThresholdRatio of its limit. It must not block (see
	// procsnap.Snapper.Request, which rate-limits and queues).
	Snapshot func(path string, usage, limit uint64)
	// Now is the clock of the samples; nil is time.Now.
	Now func() time.Time
	// ETA turns the time-to-OOM estimate of each collection on
	// (Collected.ETA).
	ETA bool
}

// Sampler is the set of watched cgroups and everything that reads them
// (see the package documentation). Collect runs on one goroutine at a
// time (the scraper's); the rest is safe for concurrent use.
type Sampler struct {
	h         cgroupfs.Hierarchy
	logger    *zap.Logger
	now       func() time.Time
	peakReset bool
	snapshot  func(path string, usage, limit uint64) // nil: snapshots off
	eta       bool

	reg      *registry.Registry
	filter   *discovery.Filter
	reported *reported
	kills    *kills
	counts   *recordCounts
	survive  *survival.Checker
	fast     *fastPass       // nil when off
	disc     *discoverer     // nil when it could not be set up
	watcher  *events.Watcher // nil when events are off or could not be set up
	events   *eventSampler

	// The collection's own state (Collect's goroutine).
	reader    *cgroupfs.Reader
	entries   []*registry.Entry // reused between collections
	gone      []*registry.Entry // removed cgroups, reused between collections
	points    []oompoint.Point  // closing points of reported kills, reused
	closing   registry.Event    // a removed cgroup's closing sample
	taken     []registry.Event  // reused between cgroups
	sample    cgroupfs.Sample
	got       Collected
	readings  map[string]uint64 // oom_kill counters read by this collection
	news      []error           // files that newly failed in this collection
	resume    int               // where in the registry's order the next collection starts
	watchErr  bool              // v1 event registration refused (logged once)
	peakNoted bool              // a watermark that cannot be reset was reported
}

// New builds the sampler: the registry, the kill accounting, the record
// counts, the event watcher and the fast pass, none of them started yet
// (Start). Capture at the limit that cannot be set up is logged and left
// off: the fast pass and the collections still sample.
func New(o Options) *Sampler {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.EventSampled == nil {
		o.EventSampled = func() {}
	}
	s := &Sampler{
		h:         o.Hierarchy,
		logger:    o.Logger,
		now:       o.Now,
		peakReset: o.PeakReset,
		snapshot:  o.Snapshot,
		eta:       o.ETA,
		counts:    newRecordCounts(o.Now),
		filter:    o.Filter,
		reported:  newReported(),
		survive:   survival.New(o.Hierarchy.Dir),
		reader:    cgroupfs.NewReader(),
		readings:  make(map[string]uint64),
	}
	s.reg = registry.New(o.Hierarchy, o.Filter, o.Optional, o.SamplingInterval, s.removed)
	s.kills = newKills(s.reg, o.Now)
	if o.Events {
		s.events = &eventSampler{
			reg: s.reg, kills: s.kills, logger: o.Logger, sampled: o.EventSampled,
			reader: cgroupfs.NewReader(), now: o.Now, snapshot: o.Snapshot,
		}
		w, err := events.New(o.Hierarchy, s.events.on)
		if err != nil {
			o.Logger.Warn("capture at the limit is off: cannot wait for cgroup memory events; the fast pass still samples", zap.Error(err))
		} else {
			s.watcher = w
		}
	}
	if o.FastPass {
		s.fast = newFastPass(s.reg, o.SamplingInterval, o.Now, o.Snapshot, o.ETA)
	}
	if d, err := newDiscoverer(s.reg, o.Now, o.Logger); err != nil {
		o.Logger.Warn("created cgroups are found by the collections only: cannot wait for creation events", zap.Error(err))
	} else {
		s.disc = d
	}
	return s
}

// removed is the registry's word that a cgroup left: its event sources
// and its counter's previous value go with it. Called with the registry
// locked.
func (s *Sampler) removed(path string) {
	if s.watcher != nil {
		s.watcher.Unwatch(path)
	}
	s.kills.forget(path)
}

// Start discovers the cgroups and starts the event watcher and the fast
// pass. On error nothing runs and the sampler is closed.
func (s *Sampler) Start() (registry.Changes, error) {
	ch, err := s.Discover()
	if err != nil {
		s.Close()
		return ch, err
	}
	if s.watcher != nil {
		go s.watcher.Run()
	}
	if s.fast != nil {
		s.fast.start()
	}
	if s.disc != nil {
		s.disc.start()
	}
	return ch, nil
}

// Discover brings the set of cgroups up to date, as each Collect does
// first (registry.Refresh).
func (s *Sampler) Discover() (registry.Changes, error) { return s.reg.Refresh() }

// Events reports whether capture at the limit runs.
func (s *Sampler) Events() bool { return s.watcher != nil }

// FastPass reports whether the fast pass runs.
func (s *Sampler) FastPass() bool { return s.fast != nil }

// Paths appends the paths of the live cgroups, in path order, to dst.
func (s *Sampler) Paths(dst []string) []string {
	for _, e := range s.reg.Entries(nil) {
		dst = append(dst, e.Path)
	}
	return dst
}

// Hierarchy is the memory hierarchy sampled.
func (s *Sampler) Hierarchy() cgroupfs.Hierarchy { return s.h }

// Close stops the fast pass and the event watcher and closes every cgroup.
// It is idempotent.
func (s *Sampler) Close() {
	if s.disc != nil {
		s.disc.shutdown()
		s.disc = nil
	}
	if s.fast != nil {
		s.fast.shutdown()
		s.fast = nil
	}
	if s.watcher != nil {
		s.watcher.Close(true)
		s.watcher = nil
	}
	if s.events != nil {
		s.events.stop()
	}
	s.reg.Close()
}

// Collected is one cgroup of a collection, as the scraper records it. It
// is valid during the call it is handed to only.
type Collected struct {
	Path     string
	Identity identity.Identity
	// Events are the event samples taken since the previous collection,
	// oldest first, each with the peak of the interval it closed.
	Events []registry.Event
	// Sample is the full sample; a field whose file failed is absent.
	Sample *cgroupfs.Sample
	// Peak is the highest usage since the previous collection (see
	// SinceCollection): Events' peaks included; HasPeak is false when the
	// sample has no usage (its file failed).
	Peak    uint64
	HasPeak bool
	// Start is the start of the cgroup's cumulative series.
	Start time.Time
	// Reported marks the closing point of a cgroup without a series to
	// carry its kill, made from the kernel's OOM report (Sampler.Reported):
	// Sample has no more than the report tells, at the kill's time.
	Reported bool
	// ETA is the seconds until the unreclaimable memory reaches the
	// lowest limit that applies (registry.ETA), +Inf when it is not
	// rising towards one; HasETA is false when no limit applies.
	ETA    float64
	HasETA bool
}

// Pass is what one collection did.
type Pass struct {
	// Sampled cgroups were read and handed on; Vanished ones were found
	// gone and dropped; Final removed cgroups had their last interval
	// handed on; Reported cgroups had the closing point of a kill that
	// their series could not carry handed on (Sampler.Reported);
	// ReadErrors counts the files that failed.
	Sampled, Vanished, Final, Reported, ReadErrors int64
	// Unread cgroups of Total were left out because ctx ended; the next
	// collection starts with them. Cut is ctx's error then, else nil.
	Unread, Total int
	Cut           error
	// NewFailures are the files that failed for the first time (each is
	// logged once, when it starts failing). Valid until the next Collect.
	NewFailures []error
}

// Collect brings the cgroups up to date (discovery), reads each one's
// memory files, hands each to visit with its event samples, books the
// oom_kill counters read and keeps each cgroup's event sources in step
// with its limit. A cgroup that vanished since discovery is dropped
// (counted), and every cgroup removed since the previous collection has
// its last interval handed on once (see final); a file that fails is logged the first time and left out;
// neither is an error. Only losing the whole hierarchy is. When ctx ends
// the cgroups not read yet are left for the next collection, which starts
// with them.
func (s *Sampler) Collect(ctx context.Context, visit func(*Collected)) (Pass, error) {
	ch, err := s.Discover()
	LogSkipped(s.logger, ch.Skipped)
	if err != nil {
		if s.reg.Len() == 0 {
			return Pass{}, err
		}
		s.logger.Warn("cgroup discovery incomplete; sampling the cgroups known so far", zap.Error(err))
	}
	clear(s.news)
	s.news = s.news[:0]
	s.entries = s.reg.Entries(s.entries[:0])
	p := Pass{Total: len(s.entries)}
	c := &s.got
	for i := range s.entries {
		if ctx.Err() != nil {
			// The deadline (timeout) passed: hand on what was read, and
			// start the next collection with the cgroups left out, so that
			// a deadline too short for the node never starves the same ones.
			p.Unread = len(s.entries) - i
			break
		}
		e := s.entries[(s.resume+i)%len(s.entries)]
		err := s.reader.Read(e.Cgroup, s.now(), &s.sample)
		if errors.Is(err, cgroupfs.ErrVanished) {
			s.reg.Drop(e.Path)
			p.Vanished++
			continue
		}
		if err != nil {
			p.ReadErrors += s.noteFailures(e, err)
		} else {
			e.Recovered()
		}
		s.taken = e.TakeEvents(s.taken[:0])
		s.checkPeakReset(e)
		if k, ok := s.sample.Get(cgroupfs.OOMKills); ok {
			s.readings[e.Path] = k
		}
		*c = Collected{Path: e.Path, Identity: e.Identity, Events: s.taken, Sample: &s.sample}
		c.Peak, c.HasPeak = e.Full(&s.sample)
		if c.HasPeak {
			c.Peak = SinceCollection(c.Peak, s.taken)
		}
		c.Start = e.SeriesStart(&s.sample)
		if s.eta {
			c.ETA, c.HasETA = s.reg.ETA(e, s.sample.Time)
		}
		visit(c)
		s.snapIfInZone(e.Path)
		s.watchLimit(e)
		p.Sampled++
	}
	p.Final = s.final(visit)
	p.Reported = s.closeReported(visit)
	*c = Collected{}
	clear(s.taken)
	if len(s.entries) > 0 {
		s.resume = (s.resume + len(s.entries) - p.Unread) % len(s.entries)
	}
	clear(s.entries) // do not pin closed cgroups until the next collection
	// Each counter is its cgroup's own (package killcount), so a cut
	// collection books the cgroups it read; the unread ones keep counting
	// and are booked when next read.
	s.kills.book(s.readings, s.now())
	clear(s.readings)
	if p.Unread > 0 {
		p.Cut = fmt.Errorf("scrape deadline passed with %d of %d cgroups not read (raise timeout, or collection_interval); they are read first next time: %w", p.Unread, p.Total, ctx.Err())
	}
	p.NewFailures = s.news
	return p, nil
}

// final hands on the last interval of every cgroup removed since the
// previous collection — whether discovery, this collection or the fast
// pass found it gone — and returns how many had one. That interval is the
// one that matters most: a runtime removes a container's cgroup right
// after its last process was OOM-killed, so it holds the climb to the
// limit. Its event samples come at their own times (the OOM event's full
// sample among them), then the closing sample: the newest fast sample
// with the interval's peak, or, without fast samples since, the last
// event sample itself. Each removed cgroup is handed on once.
func (s *Sampler) final(visit func(*Collected)) int64 {
	var n int64
	c := &s.got
	s.gone = s.reg.TakeGone(s.gone[:0])
	for _, e := range s.gone {
		var ok bool
		s.taken, s.closing, ok = e.Final(s.taken[:0])
		if !ok {
			if len(s.taken) == 0 {
				continue // nothing since the last collection
			}
			s.closing = s.taken[len(s.taken)-1]
			s.taken = s.taken[:len(s.taken)-1]
		}
		*c = Collected{
			Path: e.Path, Identity: e.Identity, Events: s.taken, Sample: &s.closing.Sample,
			Peak: SinceCollection(s.closing.Peak, s.taken), HasPeak: true, Start: e.Start(),
		}
		visit(c)
		n++
	}
	clear(s.gone)
	return n
}

// snapIfInZone asks for a process snapshot of the cgroup just collected
// when its usage is in the limit zone: without a fast pass (sampling_interval
// 0, or not shorter than collection_interval) the collections are the
// samples that tell it.
func (s *Sampler) snapIfInZone(path string) {
	if s.snapshot == nil {
		return
	}
	usage, ok := s.sample.Get(cgroupfs.Usage)
	limit, _ := s.sample.Get(cgroupfs.Limit)
	if ok && inZone(usage, limit) {
		s.snapshot(path, usage, limit)
	}
}

// noteFailures logs each failing file of e once, until it reads again, and
// returns how many files failed this time; the ones that newly failed are
// added to s.news.
func (s *Sampler) noteFailures(e *registry.Entry, err error) int64 {
	var n int64
	for _, one := range unjoin(err) {
		n++
		file := ""
		if fe, ok := errors.AsType[*cgroupfs.FileError](one); ok {
			file = fe.File
		}
		if e.FirstFailure(file) {
			s.logger.Warn("cgroup memory file unreadable; its metrics are left out until it reads again",
				zap.String("cgroup.path", e.Path), zap.String("file", file), zap.Error(one))
			s.news = append(s.news, one)
		}
	}
	return n
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// checkPeakReset warns once when peak_reset is on but a v1 cgroup's
// watermark cannot be reset (a read-only mount).
func (s *Sampler) checkPeakReset(e *registry.Entry) {
	if !s.peakReset || s.peakNoted || e.Cgroup.PeakResets() || s.h.Version != cgroupfs.V1 {
		return
	}
	s.peakNoted = true
	s.logger.Warn("peak_reset: memory.max_usage_in_bytes cannot be written (read-only cgroup mount?); cgroup.memory.peak falls back to the fast samples, event samples and the lifetime peak",
		zap.String("cgroup.path", e.Path))
}

// watchLimit keeps the cgroup's event sources in step with its limit.
func (s *Sampler) watchLimit(e *registry.Entry) {
	if s.watcher == nil {
		return
	}
	limit, limited := s.sample.Get(cgroupfs.Limit)
	err := s.watcher.Watch(e.Path, limit, limited)
	switch {
	case err == nil:
	case errors.Is(err, events.ErrReadOnly):
		if !s.watchErr {
			s.logger.Warn("capture at the limit is off for cgroup v1: registering memory events needs write access to cgroup.event_control; the fast pass (sampling_interval) still samples usage", zap.Error(err))
		}
		s.watchErr = true
	default:
		s.logger.Debug("cgroup memory events not watched", zap.String("cgroup.path", e.Path), zap.Error(err))
	}
}

// RecordCounts calls fn for every cgroup with OOM records, in path order,
// with the start of its series, its records by cause and the kills its
// container survived (valid during the call only).
func (s *Sampler) RecordCounts(fn func(path string, start time.Time, c Counts)) {
	s.counts.each(fn)
}

// CountRecord counts one OOM record of a kill in the cgroup at path.
func (s *Sampler) CountRecord(path, cause string) { s.counts.add(path, cause) }

// CountSurvived counts one kill in the cgroup at path that its container
// survived (cgroup.memory.oom_kill.survived).
func (s *Sampler) CountSurvived(path string) { s.counts.addSurvived(path) }

// Survival tells what the kill of victim (its host pid, 0 when unknown)
// did to the container whose cgroup is at path (package survival). It
// waits for the victim to exit, at most survival.Wait plus
// survival.Settle; a close of stop ends it with Unknown.
func (s *Sampler) Survival(stop <-chan struct{}, path string, victim int) survival.Verdict {
	return s.survive.Check(stop, path, victim)
}

// SeesProcesses tells whether the sampler can tell a container's survival
// at all: it runs in the host's pid namespace.
func (s *Sampler) SeesProcesses() bool { return s.survive.HostPID() }

// History returns the flight recorder's history of the cgroup at path up
// to until (see registry.History).
func (s *Sampler) History(path string, until time.Time) (recorder.History, bool) {
	return s.reg.History(path, until)
}

// Infer attributes a kill line without a cgroup, printed at `at`, to the
// cgroup whose oom_kill counter rose then (read at once), and claims that
// counted kill.
func (s *Sampler) Infer(at time.Time) (string, bool) { return s.kills.infer(at) }

// Claim marks one counted kill of the cgroup at path (or of its nearest
// counted ancestor) as explained by a kernel report.
func (s *Sampler) Claim(path string) { s.kills.claim(path) }

// Subscribe hands every kill counted from now on to fn (on the goroutine
// that counted it; fn must not block) until cancel is called: the OOM
// pipeline turns them into records while the kernel log cannot be read.
// One subscriber at a time.
func (s *Sampler) Subscribe(fn func(Kill)) (cancel func()) { return s.kills.subscribe(fn) }

// OOMGroup tells whether a kill in taskMemcg, at an OOM of memcg ("" for a
// system-wide one), starts a memory.oom.group kill (cgroup v2 only; false
// on v1), or may (taskMemcg unknown: OOMGroupSet).
func (s *Sampler) OOMGroup(taskMemcg, memcg string) bool {
	if s.h.Version != cgroupfs.V2 {
		return false
	}
	return OOMGroupSet(s.h.Dir, taskMemcg, memcg)
}

// LogSkipped logs the cgroups that discovery could not open.
func LogSkipped(logger *zap.Logger, skipped []error) {
	for _, err := range skipped {
		logger.Warn("cgroup left out: its memory files cannot be opened", zap.Error(err))
	}
}
