package cgroupmemoryreceiver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"

	"github.com/oomsight/oomsight/internal/backoff"
	"github.com/oomsight/oomsight/internal/checkpoint"
	"github.com/oomsight/oomsight/internal/identity"
	"github.com/oomsight/oomsight/internal/kmsg"
	"github.com/oomsight/oomsight/internal/oomreport"
	"github.com/oomsight/oomsight/internal/procsnap"
	"github.com/oomsight/oomsight/internal/recorder"
	"github.com/oomsight/oomsight/internal/sampler"
	"github.com/oomsight/oomsight/internal/survival"
	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/metadata"
)

const (
	// queueSize bounds the OOM records waiting for a slow logs pipeline;
	// past it records are dropped (and counted) so that reading the kernel
	// log never waits for a consumer.
	queueSize = 256
	// flushAfter is how long the assembler waits in silence before it
	// releases a kill report it holds back (it waits for the next record,
	// which may mark the kill as part of a memory.oom.group kill).
	flushAfter = 5 * time.Millisecond
	// groupWait is how long a kill report is held at most, instead of
	// flushAfter, when the victim's cgroup (or an ancestor up to the OOM's
	// memcg) has memory.oom.group set: the kernel prints the group line
	// after the first victim's kill line, and on a loaded node (or under
	// emulation) more than flushAfter later; released early, the first
	// victim's record would miss linux.oom.group_kill.
	groupWait = 100 * time.Millisecond
	// maxChecks bounds the survival checks in flight (each a goroutine
	// waiting up to survival.Wait for its victim to exit); a kill past it
	// gets no verdict (linux.oom.container.survived absent).
	maxChecks = 64
)

// oomPipeline turns the kernel log into OOM log records, in three stages
// joined by channels so that none waits on a slower one:
//
//	read (blocking kmsg reads) → assemble (pure, fast) → send (the consumer)
//
// Each kill is counted for cgroup.memory.oom_kill.records (the sampler's
// CountRecord). Without a logs pipeline (next nil: a metrics-only
// receiver) the kills are only counted: no record is built or sent.
type oomPipeline struct {
	cfg    OOMConfig
	logger *zap.Logger
	next   consumer.Logs // nil: count the kills, emit no record
	tb     *metadata.TelemetryBuilder
	rac    metadata.ResourceAttributesConfig
	// bootIDFile is a field so that tests can simulate a reboot.
	bootIDFile string
	now        func() time.Time
	queueSize  int
	// smp is the sampler, or noSampler{} when no metrics pipeline samples
	// the cgroups (sampled false): climbs, kill attribution, counter-based
	// records and record counts come from it.
	smp     killSource
	sampled bool
	// snaps are the process snapshots (nil: off); a record carries the one
	// taken nearest before its kill.
	snaps processSource
	// cancelCounted ends the subscription to counted kills (set while the
	// kernel log is unavailable), nil when none. Guarded by mu.
	cancelCounted func()
	host          component.Host
	// obs reports the records handed on as the collector's standard
	// receiver telemetry (otelcol_receiver_accepted/refused_log_records).
	obs *receiverhelper.ObsReport

	reader *kmsg.Reader
	cp     *checkpoint.File
	bootID string
	// pos is what was delivered (the checkpoint's position): kills it
	// holds as delivered are not repeated after a restart. Only the send
	// stage changes it; the assemble stage reads the copy made at start
	// (resumeFrom), so they share nothing.
	pos        checkpoint.Position
	resumeFrom checkpoint.Position
	resume     bool

	records chan read
	queue   chan queued
	stop    chan struct{}
	// producers are the read, assemble and reopen stages; sender is send;
	// checks are the survival checks in flight (bounded by checkSlots).
	producers, sender, checks sync.WaitGroup
	checkSlots                chan struct{}

	// mu guards the reader (opened later when the kernel log was not
	// readable at start) and the queue's closing, against the counted-kill
	// emitter, which runs on other goroutines.
	mu      sync.RWMutex
	stopped bool
}

// reopenMax bounds the backoff between attempts to open an unreadable
// kernel log.
const reopenMax = 5 * time.Minute

// read is a record as the read stage hands it on.
type read struct {
	kmsg.Record
	// backlog marks a record that was in the ring when the checkpointed
	// replay started: a slow consumer holds up the replay rather than
	// losing a kill the checkpoint promises (the ring keeps the rest).
	backlog bool
}

type queued struct {
	logs plog.Logs
	seq  *uint64
	// verdict, when not nil, gives what the kill did to its container;
	// the send stage waits for it and completes the record (path: the
	// victim's cgroup, n: the kills the record stands for).
	verdict <-chan survival.Verdict
	path    string
	n       uint64
	// nearLimit marks a near-limit record (not an OOM kill record).
	nearLimit bool
}

// processSource is what the OOM pipeline needs of the process snapshots
// (procsnap.Snapper): the one taken nearest before a kill.
type processSource interface {
	Nearest(paths []string, until time.Time) (procsnap.Snapshot, bool)
}

// killSource is what the OOM pipeline needs of the sampler: the climb of a
// cgroup, the kill accounting (attribution of a kill line without a
// cgroup, kills explained by kernel reports, counted kills while the
// kernel log cannot be read), the count of records per cgroup, whether
// a kill starts a memory.oom.group kill, and each report's numbers for
// the metrics of the cgroup whose limit was hit (Reported).
type killSource interface {
	History(path string, until time.Time) (recorder.History, bool)
	Infer(at time.Time) (string, bool)
	Claim(path string)
	CountRecord(path, cause string)
	Subscribe(fn func(sampler.Kill)) (cancel func())
	OOMGroup(taskMemcg, memcg string) bool
	Survival(stop <-chan struct{}, path string, victim int) survival.Verdict
	CountSurvived(path string)
	Reported(r *oomreport.Report)
}

// noSampler is the killSource of a receiver without a metrics pipeline:
// it knows no cgroup.
type noSampler struct{}

func (noSampler) History(string, time.Time) (recorder.History, bool) {
	return recorder.History{}, false
}
func (noSampler) Infer(time.Time) (string, bool)      { return "", false }
func (noSampler) Claim(string)                        {}
func (noSampler) CountRecord(string, string)          {}
func (noSampler) Subscribe(func(sampler.Kill)) func() { return func() {} }
func (noSampler) OOMGroup(string, string) bool        { return false }
func (noSampler) Survival(<-chan struct{}, string, int) survival.Verdict {
	return survival.Unknown
}
func (noSampler) CountSurvived(string)       {}
func (noSampler) Reported(*oomreport.Report) {}

func newOOMPipeline(cfg OOMConfig, set receiver.Settings, next consumer.Logs, tb *metadata.TelemetryBuilder, rac metadata.ResourceAttributesConfig, smp killSource) *oomPipeline {
	obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID:             set.ID,
		Transport:              "kmsg",
		ReceiverCreateSettings: set,
	})
	if err != nil {
		set.Logger.Error("cgroupmemory: receiver telemetry unavailable", zap.Error(err))
	}
	return &oomPipeline{
		obs:        obs,
		cfg:        cfg,
		logger:     set.Logger,
		next:       next,
		tb:         tb,
		rac:        rac,
		bootIDFile: checkpoint.BootIDFile,
		now:        time.Now,
		queueSize:  queueSize,
		smp:        smp,
		sampled:    smp != noSampler{},
	}
}

// start loads the checkpoint, opens the kernel log and starts the stages.
// A bad checkpoint file is an error that names the key. A kernel log that
// cannot be read is not: the collector keeps exporting metrics, the error
// goes to the log and the component status, the log is retried with
// backoff, and meanwhile the cgroups' oom_kill counters still turn each
// kill into a record (see sampler.Subscribe).
func (p *oomPipeline) start(host component.Host) error {
	if p.obs == nil {
		return errors.New("cgroupmemory: OOM pipeline without telemetry")
	}
	if p.cfg.CheckpointFile != "" {
		if err := p.loadCheckpoint(); err != nil {
			return err
		}
	}
	p.host = host
	p.records = make(chan read, 1024)
	p.queue = make(chan queued, p.queueSize)
	p.checkSlots = make(chan struct{}, maxChecks)
	p.stop = make(chan struct{})
	p.sender.Add(1)
	go p.send()
	if p.cfg.KmsgPath == "" {
		p.countersOnly()
		return nil
	}
	r, err := p.open()
	if err != nil {
		p.unavailable(err)
		p.producers.Add(1)
		go p.reopen()
		return nil
	}
	p.run(r)
	return nil
}

// open opens the kernel log and positions it: without a checkpoint at its
// end (only new kills are reported); with one, at its oldest record (the
// context of a kill precedes it; kills already emitted are skipped by
// sequence number).
func (p *oomPipeline) open() (*kmsg.Reader, error) {
	r, err := kmsg.Open(p.cfg.KmsgPath)
	if err != nil {
		return nil, fmt.Errorf("cgroupmemory: oom.kmsg_path %q: %w; reading kernel OOM reports needs read access to the kernel log: run as root or with CAP_SYSLOG (kernel.dmesg_restrict=1), mount the host's /dev/kmsg into the container, or set oom.enabled: false", p.cfg.KmsgPath, err)
	}
	if p.cfg.CheckpointFile == "" {
		if err := r.SeekEnd(); err != nil {
			_ = r.Close()
			return nil, fmt.Errorf("cgroupmemory: oom.kmsg_path %q: seeking to the end: %w", p.cfg.KmsgPath, err)
		}
	}
	return r, nil
}

// unavailable reports an unreadable kernel log and turns counted kills
// into records meanwhile. A receiver that only counts (no logs pipeline)
// warns but keeps its status: its metrics all flow, and only the count of
// kills in cgroups removed before a collection is degraded.
func (p *oomPipeline) unavailable(err error) {
	msg := "the kernel log cannot be read: OOM kills become records from the cgroups' oom_kill counters only (no victim, no trigger, no limit); retrying with backoff"
	if p.next == nil {
		msg = "the kernel log cannot be read: cgroup.memory.oom_kill.records counts OOM kills from the cgroups' oom_kill counters only (cause unknown; a kill in a cgroup removed before its counter is read is missed); retrying with backoff"
	}
	if !p.sampled {
		msg = "the kernel log cannot be read and no metrics pipeline samples the cgroups: no OOM records until it can; retrying with backoff"
	} else {
		p.recordCounted(err.Error())
	}
	p.logger.Warn(msg, zap.Error(err))
	if p.next != nil {
		p.status(componentstatus.NewRecoverableErrorEvent(err))
	}
}

// recordCounted subscribes to the sampler's counted kills: each becomes a
// record that says why the kernel's report is missing (reason).
func (p *oomPipeline) recordCounted(reason string) {
	cancel := p.smp.Subscribe(func(k sampler.Kill) { p.emitCounted(k, reason) })
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cancelCounted = cancel
}

// stopCountedLocked ends the subscription to counted kills, if any.
func (p *oomPipeline) stopCountedLocked() {
	if p.cancelCounted != nil {
		p.cancelCounted()
		p.cancelCounted = nil
	}
}

// countersOnly is the mode of an empty oom.kmsg_path: the kernel log is
// not read by choice, so there is nothing to warn about or retry; every
// kill the cgroups' oom_kill counters show becomes a record.
func (p *oomPipeline) countersOnly() {
	if !p.sampled {
		p.logger.Warn("oom.kmsg_path is empty and no metrics pipeline samples the cgroups: no OOM records will be emitted")
		return
	}
	p.recordCounted("oom.kmsg_path is empty: the kernel log is not read")
	if p.next == nil {
		p.logger.Info("oom.kmsg_path is empty: cgroup.memory.oom_kill.records counts OOM kills from the cgroups' oom_kill counters only (cause unknown)")
		return
	}
	p.logger.Info("oom.kmsg_path is empty: OOM kills become records from the cgroups' oom_kill counters only (no victim, no trigger, no limit)")
}

// reopen retries an unreadable kernel log, 1 s after the first failure and
// twice as long after each next one, up to reopenMax; failures after the
// first are logged at debug level only.
func (p *oomPipeline) reopen() {
	defer p.producers.Done()
	wait := backoff.Backoff{First: time.Second, Max: reopenMax}
	for backoff.Sleep(p.stop, wait.Next()) {
		r, err := p.open()
		if err == nil {
			p.logger.Info("the kernel log is readable now: OOM records come from the kernel's reports again", zap.String("oom.kmsg_path", p.cfg.KmsgPath))
			p.status(componentstatus.NewEvent(componentstatus.StatusOK))
			p.run(r)
			return
		}
		p.logger.Debug("the kernel log is still unreadable", zap.Error(err), zap.Duration("next_try", wait.Peek()))
	}
}

// status reports the component's status to the host (none before start:
// tests drive the stages without one).
func (p *oomPipeline) status(ev *componentstatus.Event) {
	if p.host != nil {
		componentstatus.ReportStatus(p.host, ev)
	}
}

// run starts reading r.
func (p *oomPipeline) run(r *kmsg.Reader) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		_ = r.Close()
		return
	}
	p.stopCountedLocked()
	p.reader = r
	p.producers.Add(2)
	go p.read()
	go p.assemble()
	p.logger.Info("reading kernel OOM reports",
		zap.String("oom.kmsg_path", p.cfg.KmsgPath),
		zap.String("oom.checkpoint_file", p.cfg.CheckpointFile),
		zap.Bool("counting_only", p.next == nil),
		zap.Bool("resuming", p.resume), zap.Uint64("after_seq", p.resumeFrom.Seq), zap.Int("undelivered", len(p.resumeFrom.Undelivered)))
}

func (p *oomPipeline) loadCheckpoint() error {
	p.cp = checkpoint.New(p.cfg.CheckpointFile)
	if err := p.cp.CheckWritable(); err != nil {
		return fmt.Errorf("cgroupmemory: oom.checkpoint_file %q cannot be written: %w; point it at a writable, persistent path (a hostPath volume in a DaemonSet) or leave it empty", p.cfg.CheckpointFile, err)
	}
	saved, ok, err := p.cp.Load()
	if err != nil {
		return fmt.Errorf("cgroupmemory: oom.checkpoint_file: %w", err)
	}
	p.bootID, err = checkpoint.ReadBootID(p.bootIDFile)
	if err != nil {
		return fmt.Errorf("cgroupmemory: oom.checkpoint_file needs the boot id: %w", err)
	}
	p.pos, p.resume = checkpoint.Resume(saved, ok, p.bootID)
	p.resumeFrom = p.pos
	return nil
}

// read feeds raw records to the assembler. It is the only stage that
// blocks on the kernel; it stops when shutdown closes the reader.
func (p *oomPipeline) read() {
	defer p.producers.Done()
	defer close(p.records)
	ctx := context.Background()
	// Without a checkpoint the reader starts at the end: nothing is backlog.
	backlog := p.cfg.CheckpointFile != ""
	// Backoff after read errors; not failing while reads succeed.
	wait := backoff.Backoff{First: time.Second, Max: reopenMax}
	for {
		rec, err := p.reader.Next()
		backlog = backlog && !p.reader.Waited()
		switch {
		case err == nil:
			if wait.Failing() {
				p.logger.Info("reading the kernel log works again", zap.String("oom.kmsg_path", p.cfg.KmsgPath))
				p.status(componentstatus.NewEvent(componentstatus.StatusOK))
				wait.Reset()
			}
			p.records <- read{Record: rec, backlog: backlog}
		case errors.Is(err, os.ErrClosed):
			return
		case errors.Is(err, kmsg.ErrOverwritten):
			// Counted from the sequence gap by the assembler stage.
		case errors.Is(err, kmsg.ErrMalformed):
			p.tb.CgroupmemoryKmsgRecordsMalformed.Add(ctx, 1)
			p.logger.Debug("skipping malformed kernel log record", zap.Error(err))
		default:
			// Logged and reported once; retried 1 s, 2 s, … reopenMax apart.
			if !wait.Failing() {
				p.logger.Error("reading the kernel log failed; retrying with backoff", zap.String("oom.kmsg_path", p.cfg.KmsgPath), zap.Error(err))
				p.status(componentstatus.NewRecoverableErrorEvent(err))
			} else {
				p.logger.Debug("reading the kernel log still fails", zap.Error(err))
			}
			if !backoff.Sleep(p.stop, wait.Next()) {
				return
			}
		}
	}
}

// assemble turns records into reports, and reports into log records.
func (p *oomPipeline) assemble() {
	defer p.producers.Done()
	ctx := context.Background()
	// The task table counts pages of this kernel's size (16 KiB or 64 KiB
	// on some arm64 and ppc64le kernels).
	asm := oomreport.NewAssembler(oomreport.WithPageSize(int64(os.Getpagesize())))
	idle := time.NewTimer(flushAfter)
	defer idle.Stop()
	var last uint64
	haveLast := false
	backlog := false // the last record was backlog (reports it completes are too)
	var held *oomreport.Report
	var heldAt time.Time
	for {
		select {
		case rec, ok := <-p.records:
			if !ok {
				// Stopping. With a checkpoint, a report cut short here is
				// read whole from the ring after the restart; without one,
				// what is known now is all there will be.
				if p.cp != nil {
					p.enqueue(asm.Release(), backlog)
				} else {
					p.enqueue(asm.Flush(), backlog)
				}
				return
			}
			if rec.HasSeq {
				if haveLast && rec.Seq > last+1 {
					lost := clampInt64(rec.Seq - last - 1)
					p.tb.CgroupmemoryKmsgRecordsLost.Add(ctx, lost)
					p.logger.Warn("kernel log records were overwritten before they were read; an OOM report among them is lost",
						zap.Int64("records", lost), zap.Uint64("after_seq", last))
				}
				last, haveLast = rec.Seq, true
			}
			backlog = rec.backlog
			p.enqueue(asm.Add(rec.Record), backlog)
			if h := asm.Held(); h != held {
				held, heldAt = h, time.Now()
			}
			idle.Reset(flushAfter)
		case <-idle.C:
			if wait := groupWait - time.Since(heldAt); held != nil && wait > 0 && p.smp.OOMGroup(held.TaskMemcg, held.Memcg) {
				idle.Reset(wait)
				continue
			}
			// Armed again only by the next record: no wakeups while quiet.
			p.enqueue(asm.Idle(), backlog)
			held = nil
		}
	}
}

// enqueue hands reports to the sender. Live, it never waits: a full queue
// drops the record and counts it. Replaying the backlog it waits, so that
// a checkpointed restart loses no kill to a slow consumer.
func (p *oomPipeline) enqueue(reports []*oomreport.Report, backlog bool) {
	ctx := context.Background()
	for _, r := range reports {
		if p.resume && r.Seq != nil && p.resumeFrom.Delivered(*r.Seq) {
			continue // delivered before the restart
		}
		if !backlog || p.resume && r.Seq != nil && *r.Seq > p.resumeFrom.Seq {
			// Metrics from the report of a kill this run has not handled
			// (live, or after the checkpoint): see sampler.Reported.
			p.smp.Reported(r)
		}
		if p.next == nil { // counting only
			p.attribute(r, backlog)
			p.smp.CountRecord(r.TaskMemcg, r.Cause)
			p.countSurvived(p.survival(r.TaskMemcg, r.PID, r.GroupKill, backlog), r.TaskMemcg, 1)
			continue
		}
		item := queued{logs: buildOOMLogs(r, p.now(), p.rac, p.enrich(r, backlog)), seq: r.Seq}
		item.verdict, item.path, item.n = p.survival(r.TaskMemcg, r.PID, r.GroupKill, backlog), r.TaskMemcg, 1
		p.smp.CountRecord(r.TaskMemcg, r.Cause)
		if backlog {
			p.queue <- item
			continue
		}
		select {
		case p.queue <- item:
		default:
			p.tb.CgroupmemoryOomRecordsDropped.Add(ctx, 1)
			p.logger.Warn("OOM record dropped: the logs pipeline is not keeping up", zap.Int("queue_size", p.queueSize), zap.String("body", r.Body()))
			p.countSurvived(item.verdict, item.path, item.n) // counted like the record
		}
	}
}

// enrich adds what only the live receiver knows to a live report: a
// report rate-limited down to its kill line gets the cgroup whose oom_kill
// counter rose then (inferred); one that names its cgroup explains that
// cgroup's counted kill; and the limiting cgroup's climb.
func (p *oomPipeline) enrich(r *oomreport.Report, backlog bool) enrichment {
	en := enrichment{maxTasks: p.cfg.MaxTasks}
	en.inferred = p.attribute(r, backlog)
	en.hist = p.climb(r)
	en.procs = p.processes(r)
	return en
}

// survival starts the check of whether the kill of victim (host pid; 0
// for a counted kill) in the cgroup at path left its container running
// (package survival), and returns where its verdict will come; nil when
// nothing is to be known: not a container's cgroup, no sampler, a kill
// replayed from the ring (its container's state now says nothing about
// the kill), or too many checks in flight. A memory.oom.group kill ends
// the whole cgroup: its verdict is Ended at once.
func (p *oomPipeline) survival(path string, victim int, groupKill, backlog bool) <-chan survival.Verdict {
	if backlog || !p.sampled || path == "" || identity.FromPath(path).ContainerID == "" {
		return nil
	}
	ch := make(chan survival.Verdict, 1)
	if groupKill {
		ch <- survival.Ended
		return ch
	}
	select {
	case p.checkSlots <- struct{}{}:
	default:
		p.logger.Debug("survival check skipped: too many in flight", zap.String("cgroup.path", path), zap.Int("max", maxChecks))
		return nil
	}
	p.checks.Add(1)
	go func() {
		defer p.checks.Done()
		defer func() { <-p.checkSlots }()
		ch <- p.smp.Survival(p.stop, path, victim)
	}()
	return ch
}

// countSurvived counts n kills in the cgroup at path once verdict says
// the container survived them (counting only: no record waits for it).
func (p *oomPipeline) countSurvived(verdict <-chan survival.Verdict, path string, n uint64) {
	if verdict == nil {
		return
	}
	p.checks.Add(1)
	go func() {
		defer p.checks.Done()
		if <-verdict == survival.Survived {
			for range n {
				p.smp.CountSurvived(path)
			}
		}
	}()
}

// complete waits for the verdict of a queued record and puts it on the
// record: linux.oom.container.survived, and the sentence when the
// container survived, which is also counted.
func (p *oomPipeline) complete(item queued) {
	if item.verdict == nil {
		return
	}
	v := <-item.verdict
	if !v.Known() {
		return
	}
	rls := item.logs.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				putSurvived(lrs.At(k), item.path, v == survival.Survived)
			}
		}
	}
	if v == survival.Survived {
		for range item.n {
			p.smp.CountSurvived(item.path)
		}
	}
}

// processes returns the process snapshot taken nearest before the kill of
// the limiting cgroup or the victim's (a pod's limit covers its
// containers: the pod's snapshot lists their processes), nil without one.
func (p *oomPipeline) processes(r *oomreport.Report) *procsnap.Snapshot {
	if p.snaps == nil {
		return nil
	}
	paths := make([]string, 0, 2)
	if r.Memcg != "" && !r.Global {
		paths = append(paths, r.Memcg)
	}
	if r.TaskMemcg != "" && r.TaskMemcg != r.Memcg {
		paths = append(paths, r.TaskMemcg)
	}
	until := r.Time
	if until.IsZero() {
		until = p.now()
	}
	sn, ok := p.snaps.Nearest(paths, until)
	if !ok {
		return nil
	}
	return &sn
}

// attribute gives a live report rate-limited down to its kill line the
// cgroup whose oom_kill counter rose then (inferred true), or claims the
// counted kill of the cgroup a report names.
func (p *oomPipeline) attribute(r *oomreport.Report, backlog bool) (inferred bool) {
	if backlog {
		return false
	}
	switch {
	case r.TaskMemcg == "" && r.Memcg == "":
		at := r.Time
		if at.IsZero() {
			at = p.now()
		}
		if path, ok := p.smp.Infer(at); ok {
			r.TaskMemcg, inferred = path, true
		}
	case r.TaskMemcg != "":
		p.smp.Claim(r.TaskMemcg)
	}
	return inferred
}

// climb returns the flight recorder's history of the cgroup whose limit was
// hit (for a global OOM, the victim's), up to the kill; nil without one.
func (p *oomPipeline) climb(r *oomreport.Report) *recorder.History {
	path := r.Memcg
	if path == "" || r.Global {
		path = r.TaskMemcg
	}
	if path == "" {
		return nil
	}
	until := r.Time
	if until.IsZero() {
		until = p.now()
	}
	h, ok := p.smp.History(path, until)
	if !ok {
		return nil
	}
	return &h
}

// send hands records to the next consumer and advances the checkpoint.
func (p *oomPipeline) send() {
	defer p.sender.Done()
	ctx := context.Background()
	for item := range p.queue {
		p.complete(item)
		opCtx := p.obs.StartLogsOp(ctx)
		err := p.consume(opCtx, item.logs)
		event := oomEventName
		if item.nearLimit {
			event = nearLimitEventName
		}
		p.obs.EndLogsOp(opCtx, event, item.logs.LogRecordCount(), err)
		switch {
		case err != nil:
			p.tb.CgroupmemoryOomRecordsDropped.Add(ctx, 1)
			p.logger.Warn("record refused by the logs pipeline after retries", zap.String("event", event), zap.Int("attempts", sendAttempts), zap.Error(err))
		case item.nearLimit:
			p.tb.CgroupmemoryNearLimitRecords.Add(ctx, 1)
		default:
			p.tb.CgroupmemoryOomRecords.Add(ctx, 1)
		}
		if p.cp != nil && item.seq != nil {
			// A record refused for good stays undelivered in the
			// checkpoint (unless the refusal is permanent: the same record
			// would be refused again), so a restart tries it again.
			delivered := err == nil || consumererror.IsPermanent(err)
			p.pos = p.pos.Handled(*item.seq, delivered)
			if err := p.cp.Save(p.pos); err != nil {
				p.logger.Error("saving the OOM checkpoint failed; a restart may repeat this record", zap.String("oom.checkpoint_file", p.cfg.CheckpointFile), zap.Error(err))
			}
		}
	}
}

// sendAttempts bounds the tries of one record; between them the wait
// doubles from sendRetryWait.
const (
	sendAttempts  = 5
	sendRetryWait = 100 * time.Millisecond
)

// consume hands a record to the next consumer, retrying a refusal that is
// not permanent up to sendAttempts times (100 ms, 200 ms, … apart); a
// shutdown ends the waiting.
func (p *oomPipeline) consume(ctx context.Context, ld plog.Logs) error {
	wait := backoff.Backoff{First: sendRetryWait, Max: sendRetryWait << (sendAttempts - 2)}
	var err error
	for attempt := 1; ; attempt++ {
		if err = p.next.ConsumeLogs(ctx, ld); err == nil || consumererror.IsPermanent(err) || attempt == sendAttempts {
			return err
		}
		if !backoff.Sleep(p.stop, wait.Next()) {
			return err
		}
	}
}

// emitCounted turns a counted kill into a record while the kernel log is
// unavailable. It never waits: a full queue drops the record (counted).
func (p *oomPipeline) emitCounted(c sampler.Kill, reason string) {
	if p.next == nil { // counting only
		for range c.N {
			p.smp.CountRecord(c.Path, "unknown")
		}
		p.mu.RLock()
		defer p.mu.RUnlock()
		if !p.stopped { // shutdown waits for the checks started before it
			p.countSurvived(p.survival(c.Path, 0, false, false), c.Path, c.N)
		}
		return
	}
	var hist *recorder.History
	if h, ok := p.smp.History(c.Path, c.At); ok {
		h = h.UntilPeak() // the kill came after the highest point
		hist = &h
	}
	var procs *procsnap.Snapshot
	if p.snaps != nil {
		if sn, ok := p.snaps.Nearest([]string{c.Path}, c.At); ok {
			procs = &sn
		}
	}
	item := queued{logs: buildCountedLogs(c, p.now(), p.rac, hist, procs, reason), path: c.Path, n: c.N}
	for range c.N {
		p.smp.CountRecord(c.Path, "unknown")
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.stopped {
		return
	}
	item.verdict = p.survival(c.Path, 0, false, false)
	select {
	case p.queue <- item:
	default:
		p.tb.CgroupmemoryOomRecordsDropped.Add(context.Background(), 1)
		p.logger.Warn("OOM record dropped: the logs pipeline is not keeping up", zap.Int("queue_size", p.queueSize), zap.String("cgroup.path", c.Path))
		p.countSurvived(item.verdict, c.Path, c.N) // counted like the record
	}
}

// emitNearMiss turns a snapshot no kill followed into a near-limit record
// (the snapshots' worker calls it, rate-limited: see procsnap). It never
// waits: a full queue drops the record (counted).
func (p *oomPipeline) emitNearMiss(sn procsnap.Snapshot) {
	item := queued{logs: buildNearLimitLogs(&sn, p.now(), p.rac), nearLimit: true}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.stopped || p.queue == nil {
		return
	}
	select {
	case p.queue <- item:
	default:
		p.tb.CgroupmemoryOomRecordsDropped.Add(context.Background(), 1)
		p.logger.Warn("near-limit record dropped: the logs pipeline is not keeping up", zap.Int("queue_size", p.queueSize), zap.String("cgroup.path", sn.Path))
	}
}

// shutdown stops reading and waits until the records already read are
// handed on (or ctx ends).
func (p *oomPipeline) shutdown(ctx context.Context) error {
	if p.stop == nil {
		return nil // never started
	}
	p.mu.Lock()
	p.stopped = true
	close(p.stop)
	if p.reader != nil {
		_ = p.reader.Close()
	}
	p.stopCountedLocked()
	p.mu.Unlock()
	done := make(chan struct{})
	go func() {
		// The producers end first; then nothing sends to the queue and it
		// is closed, and the sender hands on what is left.
		p.producers.Wait()
		close(p.queue)
		p.sender.Wait()
		p.checks.Wait() // they end at p.stop
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("cgroupmemory: OOM records still in flight at shutdown: %w", ctx.Err())
	}
}
