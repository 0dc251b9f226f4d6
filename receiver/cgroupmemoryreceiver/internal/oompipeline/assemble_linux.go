// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oompipeline // import "github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/oompipeline"

import (
	"context"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/oomsight/oomsight/internal/oomreport"
)

// The assemble stage: kernel log records in, OOM reports out. The rules
// (which lines make a report, when it is complete) are oomreport's
// Assembler, shared with oomsight explain; this stage only feeds it, counts
// the records the ring overwrote before they were read, and times the
// releases (flushAfter, or groupWait while a memory.oom.group line may
// still come).

// assemble turns records into reports, and reports into log records.
func (p *Pipeline) assemble() {
	defer p.producers.Done()
	// The task table counts pages of this kernel's size (16 KiB or 64 KiB
	// on some arm64 and ppc64le kernels).
	// Each report keeps only the task rows its record carries (oom.max_tasks),
	// so that a report's memory is bounded; a value out of range is counted
	// and logged, and left out of the record.
	asm := oomreport.NewAssembler(oomreport.WithPageSize(int64(os.Getpagesize())),
		oomreport.WithMaxTasks(p.cfg.MaxTasks), oomreport.WithParseErrors(p.parseError))
	idle := time.NewTimer(flushAfter)
	defer idle.Stop()
	var gap seqGap
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
			p.countLost(&gap, rec.Seq, rec.HasSeq)
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

// parseError counts and logs a value of a kernel OOM report line that the
// assembler rejected (out of range: it would have wrapped).
func (p *Pipeline) parseError(e *oomreport.ParseError) {
	p.tb.CgroupmemoryOomParseErrors.Add(context.Background(), 1)
	p.logger.Warn("a value in a kernel OOM report is out of range: left out of the record",
		zap.String("field", e.Field), zap.String("value", e.Value), zap.String("reason", e.Reason), zap.String("line", e.Line))
}

// seqGap is the last sequence number the assemble stage saw.
type seqGap struct {
	last     uint64
	haveLast bool
}

// countLost counts (and logs) the records overwritten in the ring before
// they were read: the gap in sequence numbers before seq (hasSeq false:
// the record has none).
func (p *Pipeline) countLost(g *seqGap, seq uint64, hasSeq bool) {
	if !hasSeq {
		return
	}
	if g.haveLast && seq > g.last+1 {
		lost := clampInt64(seq - g.last - 1)
		p.tb.CgroupmemoryKmsgRecordsLost.Add(context.Background(), lost)
		p.logger.Warn("kernel log records were overwritten before they were read; an OOM report among them is lost",
			zap.Int64("records", lost), zap.Uint64("after_seq", g.last))
	}
	g.last, g.haveLast = seq, true
}
