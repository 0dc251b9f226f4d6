// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

//go:build linux

package oompipeline // import "github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/oompipeline"

import (
	"time"

	"github.com/oomsight/oomsight/internal/oomreport"
	"github.com/oomsight/oomsight/internal/procsnap"
	"github.com/oomsight/oomsight/internal/recorder"
	"github.com/oomsight/oomsight/internal/sampler"
	"github.com/oomsight/oomsight/internal/survival"
)

// ProcessSource is what the OOM pipeline needs of the process snapshots
// (procsnap.Snapper): the one taken nearest before a kill.
type ProcessSource interface {
	Nearest(paths []string, until time.Time) (procsnap.Snapshot, bool)
}

// KillSource is what the OOM pipeline needs of the sampler: the climb of a
// cgroup, the kill accounting (attribution of a kill line without a
// cgroup, kills explained by kernel reports, counted kills while the
// kernel log cannot be read), the count of records per cgroup, whether
// a kill starts (or, its cgroup unknown, may start) a memory.oom.group
// kill, and each report's numbers for
// the metrics of the cgroup whose limit was hit (Reported).
type KillSource interface {
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

// noSampler is the KillSource of a receiver without a metrics pipeline
// (Options.Sampler nil):
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
