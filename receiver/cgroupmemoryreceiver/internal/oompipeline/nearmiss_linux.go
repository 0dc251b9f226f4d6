// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oompipeline // import "github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/oompipeline"

import (
	"context"

	"go.uber.org/zap"

	"github.com/oomsight/oomsight/internal/procsnap"
)

// The near-miss stage: a process snapshot of a cgroup in its limit zone
// that no kill followed becomes a linux.memory.near_limit record
// (procsnap decides what is a near miss, and rate-limits them).

// EmitNearMiss turns a snapshot no kill followed into a near-limit record
// (the snapshots' worker calls it, rate-limited: see procsnap). It never
// waits: a full queue drops the record (counted).
func (p *Pipeline) EmitNearMiss(sn procsnap.Snapshot) {
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
