// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package sampler owns the watched cgroups of one memory hierarchy and
// everything that reads them: the registry (discovery, open files,
// per-cgroup state), the fast pass (usage every sampling_interval), capture
// at the limit (limit and OOM events, each answered by a full sample), the
// kill accounting (the cgroups' oom_kill counters turned into counted
// kills) and the count of OOM records per cgroup.
//
// A Sampler is built once, with every option and collaborator (New), and
// shared by its two users through small interfaces of their own:
//
//   - the metrics scraper calls Collect once per collection_interval and
//     records what it is handed; it reads no file itself;
//   - the OOM pipeline asks for a cgroup's History, Infers the cgroup of a
//     kill line the kernel rate-limited, Claims the counted kill a kernel
//     report explains, Counts each record, Subscribes to counted kills
//     while the kernel log cannot be read, and hands each report it has
//     not handled before to Reported, which puts the kernel's numbers at
//     the kill into the limiting cgroup's series (docs/unseen-kills.md).
//
// A discoverer registers a created cgroup at its creation event (inotify)
// and samples it at once, rather than at the next collection.
//
// The previous value of every cgroup's oom_kill counter lives in one place
// (the kill accounting, see kills_linux.go), whichever reader saw it: a
// collection, a v2 memory.events notification, or the scan after a v1 OOM
// notification.
//
// See docs/architecture.md for how the pieces fit and where to change what.
package sampler // import "github.com/oomsight/oomsight/internal/sampler"

import "time"

// Kill is a rise of one cgroup's oom_kill counter: N processes of the
// cgroup at Path were OOM-killed, found At.
type Kill struct {
	Path string
	At   time.Time
	N    uint64
}
