// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oompipeline // import "github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/oompipeline"

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"

	"github.com/oomsight/oomsight/internal/checkpoint"
	"github.com/oomsight/oomsight/internal/kmsg"
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

// Options are the pipeline's configuration and collaborators.
type Options struct {
	// KmsgPath is the kernel log device (oom.kmsg_path); empty: the kernel
	// log is not read, kills come from the cgroups' oom_kill counters only.
	KmsgPath string
	// CheckpointFile (oom.checkpoint_file), when set, keeps what was
	// delivered across restarts.
	CheckpointFile string
	// MaxTasks bounds the task table on a record (oom.max_tasks).
	MaxTasks int
	// Next is the logs pipeline; nil: count the kills, emit no record.
	Next consumer.Logs
	// Telemetry is the receiver's own telemetry (drops, lost and malformed
	// kernel log records, records sent).
	Telemetry *metadata.TelemetryBuilder
	// Resource says which resource attributes records carry.
	Resource metadata.ResourceAttributesConfig
	// Sampler is the sampler; nil when no metrics pipeline samples the
	// cgroups (noSampler stands in).
	Sampler KillSource
	// Snapshots are the process snapshots; nil: off.
	Snapshots ProcessSource
}

// Pipeline turns the kernel log into OOM log records, in three stages
// joined by channels so that none waits on a slower one (see the package
// documentation for the stage of each file):
//
//	read (blocking kmsg reads) → assemble (pure, fast) → send (the consumer)
//
// Each kill is counted for cgroup.memory.oom_kill.records (the sampler's
// CountRecord). Without a logs pipeline (next nil: a metrics-only
// receiver) the kills are only counted: no record is built or sent.
type Pipeline struct {
	cfg    Options
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
	smp     KillSource
	sampled bool
	// snaps are the process snapshots (nil: off); a record carries the one
	// taken nearest before its kill.
	snaps ProcessSource
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

// New builds the pipeline; Start starts it.
func New(set receiver.Settings, o Options) *Pipeline {
	obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID:             set.ID,
		Transport:              "kmsg",
		ReceiverCreateSettings: set,
	})
	if err != nil {
		set.Logger.Error("cgroupmemory: receiver telemetry unavailable", zap.Error(err))
	}
	var smp KillSource = noSampler{}
	if o.Sampler != nil {
		smp = o.Sampler
	}
	return &Pipeline{
		obs:        obs,
		cfg:        o,
		logger:     set.Logger,
		next:       o.Next,
		tb:         o.Telemetry,
		rac:        o.Resource,
		bootIDFile: checkpoint.BootIDFile,
		now:        time.Now,
		queueSize:  queueSize,
		smp:        smp,
		sampled:    smp != noSampler{},
		snaps:      o.Snapshots,
	}
}

// Start loads the checkpoint, opens the kernel log and starts the stages.
// A bad checkpoint file is an error that names the key. A kernel log that
// cannot be read is not: the collector keeps exporting metrics, the error
// goes to the log and the component status, the log is retried with
// backoff, and meanwhile the cgroups' oom_kill counters still turn each
// kill into a record (see sampler.Subscribe).
func (p *Pipeline) Start(host component.Host) error {
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

// status reports the component's status to the host (none before start:
// tests drive the stages without one).
func (p *Pipeline) status(ev *componentstatus.Event) {
	if p.host != nil {
		componentstatus.ReportStatus(p.host, ev)
	}
}

// Shutdown stops reading and waits until the records already read are
// handed on (or ctx ends).
func (p *Pipeline) Shutdown(ctx context.Context) error {
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
