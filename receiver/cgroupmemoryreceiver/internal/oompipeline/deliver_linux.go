// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oompipeline // import "github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/oompipeline"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"

	"github.com/oomsight/oomsight/internal/backoff"
	"github.com/oomsight/oomsight/internal/oomreport"
	"github.com/oomsight/oomsight/internal/survival"
)

// The deliver stage: the bounded queue between the assemble stage and the
// logs consumer (enqueue, on the assemble stage's goroutine), and the one
// goroutine that hands records on (send): the survival verdict, retries,
// the receiver telemetry, the checkpoint.

// queued is a record waiting for the send stage.
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

// enqueue hands reports to the sender. Live, it never waits: a full queue
// drops the record and counts it. Replaying the backlog it waits, so that
// a checkpointed restart loses no kill to a slow consumer.
func (p *Pipeline) enqueue(reports []*oomreport.Report, backlog bool) {
	ctx := context.Background()
	for _, r := range reports {
		if p.deliveredBefore(r) {
			continue // delivered before the restart
		}
		if p.firstHandled(r, backlog) {
			// Metrics from the report of a kill this run has not handled
			// (live, or after the checkpoint): see sampler.Reported.
			p.smp.Reported(r)
		}
		if p.next == nil { // counting only
			p.countOnly(r, backlog)
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

// send hands records to the next consumer and advances the checkpoint.
func (p *Pipeline) send() {
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
			p.logger.Warn("record refused by the logs pipeline after retries", zap.String("event", event), zap.Int("attempts", SendAttempts), zap.Error(err))
		case item.nearLimit:
			p.tb.CgroupmemoryNearLimitRecords.Add(ctx, 1)
		default:
			p.tb.CgroupmemoryOomRecords.Add(ctx, 1)
		}
		p.saveHandled(item.seq, err)
	}
}

// SendAttempts bounds the tries of one record; between them the wait
// doubles from sendRetryWait.
const (
	SendAttempts  = 5
	sendRetryWait = 100 * time.Millisecond
)

// consume hands a record to the next consumer, retrying a refusal that is
// not permanent up to SendAttempts times (100 ms, 200 ms, … apart); a
// shutdown ends the waiting.
func (p *Pipeline) consume(ctx context.Context, ld plog.Logs) error {
	wait := backoff.Backoff{First: sendRetryWait, Max: sendRetryWait << (SendAttempts - 2)}
	var err error
	for attempt := 1; ; attempt++ {
		if err = p.next.ConsumeLogs(ctx, ld); err == nil || consumererror.IsPermanent(err) || attempt == SendAttempts {
			return err
		}
		if !backoff.Sleep(p.stop, wait.Next()) {
			return err
		}
	}
}
