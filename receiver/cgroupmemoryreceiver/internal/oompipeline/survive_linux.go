// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oompipeline // import "github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/oompipeline"

import (
	"go.uber.org/zap"

	"github.com/oomsight/oomsight/internal/identity"
	"github.com/oomsight/oomsight/internal/survival"
)

// The survive stage: whether a kill left its container running (package
// survival, asked through the sampler). The check starts when the record
// is queued and runs on a goroutine of its own (at most maxChecks); the
// deliver stage waits for its verdict and puts it on the record (complete).

// survival starts the check of whether the kill of victim (host pid; 0
// for a counted kill) in the cgroup at path left its container running
// (package survival), and returns where its verdict will come; nil when
// nothing is to be known: not a container's cgroup, no sampler, a kill
// replayed from the ring (its container's state now says nothing about
// the kill), or too many checks in flight. A memory.oom.group kill ends
// the whole cgroup: its verdict is Ended at once.
func (p *Pipeline) survival(path string, victim int, groupKill, backlog bool) <-chan survival.Verdict {
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
	p.checks.Go(func() {
		defer func() { <-p.checkSlots }()
		ch <- p.smp.Survival(p.stop, path, victim)
	})
	return ch
}

// countSurvived counts n kills in the cgroup at path once verdict says
// the container survived them (counting only: no record waits for it).
func (p *Pipeline) countSurvived(verdict <-chan survival.Verdict, path string, n uint64) {
	if verdict == nil {
		return
	}
	p.checks.Go(func() {
		if <-verdict == survival.Survived {
			for range n {
				p.smp.CountSurvived(path)
			}
		}
	})
}

// complete waits for the verdict of a queued record and puts it on the
// record: linux.oom.container.survived, and the sentence when the
// container survived, which is also counted.
func (p *Pipeline) complete(item queued) {
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
