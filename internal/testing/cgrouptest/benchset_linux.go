// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgrouptest // import "github.com/oomsight/oomsight/internal/testing/cgrouptest"

import (
	"os"
	"testing"
)

// BenchPodsEnv set to "1" makes BenchSet's cgroups those of a Kubernetes
// node (SystemdPods, a live process in each, ManyLiveIn), as make bench-v2
// runs the benchmarks on both hierarchies; unset, they are Many's flat
// cgroups charged by a process that has left (make bench).
const BenchPodsEnv = "OOMSIGHT_BENCH_PODS"

// Set is the cgroups of a benchmark below their parent.
type Set struct {
	Parent  *Cgroup
	Cgroups []*Cgroup
	Include string // the include glob that selects exactly Cgroups
}

// BenchSet creates n cgroups below the parent name, each charged with
// 1 MiB of tmpfs, in the shape BenchPodsEnv selects.
func (env Env) BenchSet(tb testing.TB, name string, n int) Set {
	tb.Helper()
	const kib = 1024
	if os.Getenv(BenchPodsEnv) == "1" {
		parent, cgs := env.ManyLiveIn(tb, name, n, kib, SystemdPods)
		return Set{Parent: parent, Cgroups: cgs, Include: SystemdPodsGlob(parent.Path)}
	}
	parent := env.Many(tb, name, n, kib)
	cgs := make([]*Cgroup, n)
	for i := range n {
		p := parent.Path + "/" + Flat(i)
		cgs[i] = &Cgroup{Env: env, Path: p, Dir: env.Hierarchy.Abs(p)}
	}
	return Set{Parent: parent, Cgroups: cgs, Include: parent.Path + "/*"}
}
