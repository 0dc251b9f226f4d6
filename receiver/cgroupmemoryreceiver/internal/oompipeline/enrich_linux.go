// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oompipeline // import "github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/oompipeline"

import (
	"github.com/oomsight/oomsight/internal/oomreport"
	"github.com/oomsight/oomsight/internal/recorder"
)

// The enrich stage: what only the live receiver knows about a kill, from
// the sampler (the cgroup of a kill line the kernel rate-limited, the
// limiting cgroup's climb) and the process snapshots (snapshot_linux.go).
// It runs on the assemble stage's goroutine, for each report.

// enrich adds what only the live receiver knows to a live report: a
// report rate-limited down to its kill line gets the cgroup whose oom_kill
// counter rose then (inferred); one that names its cgroup explains that
// cgroup's counted kill; and the limiting cgroup's climb.
func (p *Pipeline) enrich(r *oomreport.Report, backlog bool) enrichment {
	en := enrichment{maxTasks: p.cfg.MaxTasks}
	en.inferred = p.attribute(r, backlog)
	en.hist = p.climb(r)
	en.procs = p.processes(r)
	return en
}

// attribute gives a live report rate-limited down to its kill line the
// cgroup whose oom_kill counter rose then (inferred true), or claims the
// counted kill of the cgroup a report names.
func (p *Pipeline) attribute(r *oomreport.Report, backlog bool) (inferred bool) {
	if backlog {
		return false
	}
	switch {
	case r.TaskMemcg == "" && r.Memcg == "":
		at := r.Time
		if at.IsZero() {
			at = p.now()
		}
		if path, ok := p.smp.Infer(at); ok {
			r.TaskMemcg, inferred = path, true
		}
	case r.TaskMemcg != "":
		p.smp.Claim(r.TaskMemcg)
	}
	return inferred
}

// climb returns the flight recorder's history of the cgroup whose limit was
// hit (for a global OOM, the victim's), up to the kill; nil without one.
func (p *Pipeline) climb(r *oomreport.Report) *recorder.History {
	path := r.Memcg
	if path == "" || r.Global {
		path = r.TaskMemcg
	}
	if path == "" {
		return nil
	}
	until := r.Time
	if until.IsZero() {
		until = p.now()
	}
	h, ok := p.smp.History(path, until)
	if !ok {
		return nil
	}
	return &h
}
