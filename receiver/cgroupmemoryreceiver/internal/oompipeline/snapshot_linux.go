// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oompipeline // import "github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/oompipeline"

import (
	"github.com/oomsight/oomsight/internal/oomreport"
	"github.com/oomsight/oomsight/internal/procsnap"
)

// The snapshot stage: a record carries the process snapshot (package
// procsnap, taken by the sampler's request while the cgroup was in its
// limit zone) taken nearest before its kill.

// processes returns the process snapshot taken nearest before the kill of
// the limiting cgroup or the victim's (a pod's limit covers its
// containers: the pod's snapshot lists their processes), nil without one.
func (p *Pipeline) processes(r *oomreport.Report) *procsnap.Snapshot {
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
