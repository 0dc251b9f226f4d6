// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oompipeline // import "github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/oompipeline"

import (
	"fmt"

	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.uber.org/zap"

	"github.com/oomsight/oomsight/internal/checkpoint"
	"github.com/oomsight/oomsight/internal/oomreport"
)

// The checkpoint stage: with oom.checkpoint_file set, a restart replays
// the kernel log's ring and emits exactly the kills not delivered yet.
// Loading happens at start, the check on the assemble stage (against the
// copy made at start, resumeFrom), saving on the deliver stage (pos): the
// two goroutines share nothing.

// loadCheckpoint checks that the checkpoint file can be written, loads it
// and positions the resume on this boot's records.
func (p *Pipeline) loadCheckpoint() error {
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

// deliveredBefore reports whether the report's kill was delivered before
// the restart (the assemble stage skips it).
func (p *Pipeline) deliveredBefore(r *oomreport.Report) bool {
	return p.resume && r.Seq != nil && p.resumeFrom.Delivered(*r.Seq)
}

// firstHandled reports whether the report's kill is handled for the first
// time by this run: a live one, or one of the backlog after the
// checkpoint's position (the sampler turns each into metrics once).
func (p *Pipeline) firstHandled(r *oomreport.Report, backlog bool) bool {
	return !backlog || p.resume && r.Seq != nil && *r.Seq > p.resumeFrom.Seq
}

// saveHandled advances the checkpoint past a record the deliver stage
// handed on (err: the consumer's answer). A record refused for good stays
// undelivered in the checkpoint (unless the refusal is permanent: the same
// record would be refused again), so a restart tries it again.
func (p *Pipeline) saveHandled(seq *uint64, err error) {
	if p.cp == nil || seq == nil {
		return
	}
	delivered := err == nil || consumererror.IsPermanent(err)
	p.pos = p.pos.Handled(*seq, delivered)
	if err := p.cp.Save(p.pos); err != nil {
		p.logger.Error("saving the OOM checkpoint failed; a restart may repeat this record", zap.String("oom.checkpoint_file", p.cfg.CheckpointFile), zap.Error(err))
	}
}
