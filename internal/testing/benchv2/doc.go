// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package benchv2 measures what a cgroup v2 node costs (`make bench-v2`,
// see README.md): the BENCH ratios of `make bench` (the scrape to its
// kernel floor, the fast pass to its floor, the reads at a cgroup pinned at
// its limit) from the same static test binaries, run on the host's
// hierarchy (v1 on the build hosts) and inside the cgroup v2 VM of
// internal/testing/qemuvm, one after the other, and printed side by side.
//
// Under software emulation absolute times mean nothing; a ratio measured
// in one loop does, because the floor and the code under test run
// interleaved on the same emulated CPU.
//
// The package has no non-test code besides this comment.
package benchv2 // import "github.com/oomsight/oomsight/internal/testing/benchv2"
