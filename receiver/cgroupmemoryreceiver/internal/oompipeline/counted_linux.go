// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oompipeline // import "github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/oompipeline"

import (
	"context"

	"go.uber.org/zap"

	"github.com/oomsight/oomsight/internal/oomreport"
	"github.com/oomsight/oomsight/internal/procsnap"
	"github.com/oomsight/oomsight/internal/recorder"
	"github.com/oomsight/oomsight/internal/sampler"
)

// The counted stage: kills known only from the cgroups' oom_kill counters
// (the sampler's counted kills), while the kernel log cannot be read or is
// not read by choice (an empty oom.kmsg_path), become records that say why
// nothing more is known; and the counting-only mode (no logs pipeline),
// where reports and counted kills are counted for
// cgroup.memory.oom_kill.records and .survived but build no record.

// recordCounted subscribes to the sampler's counted kills: each becomes a
// record that says why the kernel's report is missing (reason).
func (p *Pipeline) recordCounted(reason string) {
	cancel := p.smp.Subscribe(func(k sampler.Kill) { p.emitCounted(k, reason) })
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cancelCounted = cancel
}

// stopCountedLocked ends the subscription to counted kills, if any.
func (p *Pipeline) stopCountedLocked() {
	if p.cancelCounted != nil {
		p.cancelCounted()
		p.cancelCounted = nil
	}
}

// countersOnly is the mode of an empty oom.kmsg_path: the kernel log is
// not read by choice, so there is nothing to warn about or retry; every
// kill the cgroups' oom_kill counters show becomes a record.
func (p *Pipeline) countersOnly() {
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

// countOnly counts a kernel report without a logs pipeline: attributed
// like a record, counted by cause, and counted as survived once the
// verdict says so.
func (p *Pipeline) countOnly(r *oomreport.Report, backlog bool) {
	p.attribute(r, backlog)
	p.smp.CountRecord(r.TaskMemcg, r.Cause)
	p.countSurvived(p.survival(r.TaskMemcg, r.PID, r.GroupKill, backlog), r.TaskMemcg, 1)
}

// emitCounted turns a counted kill into a record while the kernel log is
// unavailable. It never waits: a full queue drops the record (counted).
func (p *Pipeline) emitCounted(c sampler.Kill, reason string) {
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
