// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oompipeline // import "github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/oompipeline"

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"go.opentelemetry.io/collector/component/componentstatus"
	"go.uber.org/zap"

	"github.com/oomsight/oomsight/internal/backoff"
	"github.com/oomsight/oomsight/internal/kmsg"
)

// The read stage: opening /dev/kmsg (and retrying it while it cannot be
// read), and the one goroutine that blocks on it.

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

// open opens the kernel log and positions it: without a checkpoint at its
// end (only new kills are reported); with one, at its oldest record (the
// context of a kill precedes it; kills already emitted are skipped by
// sequence number).
func (p *Pipeline) open() (*kmsg.Reader, error) {
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
func (p *Pipeline) unavailable(err error) {
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

// reopen retries an unreadable kernel log, 1 s after the first failure and
// twice as long after each next one, up to reopenMax; failures after the
// first are logged at debug level only.
func (p *Pipeline) reopen() {
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

// run starts reading r: the read and assemble stages.
func (p *Pipeline) run(r *kmsg.Reader) {
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

// read feeds raw records to the assembler. It is the only stage that
// blocks on the kernel; it stops when shutdown closes the reader.
func (p *Pipeline) read() {
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
