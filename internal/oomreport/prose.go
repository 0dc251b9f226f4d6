// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oomreport // import "github.com/oomsight/oomsight/internal/oomreport"

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/oomsight/oomsight/internal/identity"
	"github.com/oomsight/oomsight/internal/printable"
)

// This file and body.go hold every sentence that explains a kill: the
// report's body (body.go), and what the receiver adds from its sampler —
// the climb to the kill, a victim's cgroup inferred from the counters, a
// kill known only from a counter.

// RateLimitedSentence ends the body of a report rate-limited to its kill
// line whose cgroup the receiver took from the oom_kill counters.
const RateLimitedSentence = " The kernel's report was rate-limited to its kill line; the cgroup is the one whose oom_kill counter rose at that moment."

// SurvivedSentence ends the body of a kill its container survived (with a
// leading space): the one kill users do not see, because the container
// did not exit. The Kubernetes consequence is said only for a pod's
// container (the cgroup at path names a pod). It also ends a record made
// from a counter: a container whose main process had been killed would
// not be running.
func SurvivedSentence(path string) string {
	const kept = " The container kept running — a worker was killed, not its main process — so "
	if identity.FromPath(path).PodUID != "" {
		return kept + "Kubernetes shows no OOMKilled and no restart."
	}
	return kept + "its runtime reports no OOM kill and no restart."
}

// CountedBody is the body of a kill that only a cgroup's oom_kill counter
// shows: n processes in the cgroup at path, and why the kernel's report is
// not available.
func CountedBody(n uint64, path, reason string) string {
	what, verb := "A process", "was"
	if n > 1 {
		what, verb = fmt.Sprintf("%d processes", n), "were"
	}
	return fmt.Sprintf("%s in %s %s OOM-killed (its oom_kill counter rose); the kernel's report is not available (%s), so the victim, the limit hit and what filled it are unknown.", what, Place(path), verb, reason)
}

// Samplers are the collection periods whose view of a kill the climb
// sentence states: the kubelet's and cAdvisor's 10 s, cloud monitoring's
// 60 s.
var Samplers = []time.Duration{10 * time.Second, 60 * time.Second}

// ClimbSentence is the body's sentence on how usage reached the kill at
// end (unix ns), with a leading space, or "" without history: how fast it
// rose, and what a sampler at each of Samplers last saw before the kill —
// the number on everyone's dashboard. t (unix ms) and usage (bytes) are the
// flight recorder's points, oldest first; top is the usage at the kill
// when the kernel's report tells it (0: the highest recorded).
func ClimbSentence(t []int64, usage []uint64, end int64, top uint64) string {
	climb := climb(t, usage, end, top)
	if climb == "" {
		return ""
	}
	return " " + strings.ToUpper(climb[:1]) + climb[1:] + "."
}

func climb(ts []int64, usage []uint64, end int64, top uint64) string {
	n := len(usage)
	if n == 0 || len(ts) != n {
		return ""
	}
	endMs := end / int64(time.Millisecond)
	if top == 0 {
		for _, v := range usage {
			top = max(top, v)
		}
	}
	var b strings.Builder
	// The climb starts at the last point at or below half the top.
	from := -1
	for i := n - 1; i >= 0; i-- {
		if usage[i] <= top/2 {
			from = i
			break
		}
	}
	if from >= 0 {
		fmt.Fprintf(&b, "usage climbed from %s to %s in %s", Bytes(signed(usage[from])), Bytes(signed(top)), seconds(endMs-ts[from]))
	} else {
		low := top
		for _, v := range usage {
			low = min(low, v)
		}
		fmt.Fprintf(&b, "usage stayed between %s and %s for the %s recorded before the kill", Bytes(signed(low)), Bytes(signed(top)), seconds(endMs-ts[0]))
	}
	sep := "; "
	for _, p := range Samplers {
		at := endMs - endMs%p.Milliseconds() // the sampler's last tick before the kill
		i := lastAtOrBefore(ts, at)
		if i < 0 {
			continue // the recorder does not reach back that far
		}
		fmt.Fprintf(&b, "%sa %s sampler last saw %s", sep, seconds(p.Milliseconds()), Bytes(signed(usage[i])))
		sep = ", "
	}
	return b.String()
}

func lastAtOrBefore(ts []int64, at int64) int {
	for i, t := range slices.Backward(ts) {
		if t <= at {
			return i
		}
	}
	return -1
}

// signed converts a byte amount for Bytes; no memory amount reaches 2^63.
func signed(v uint64) int64 {
	if v > 1<<63-1 {
		return 1<<63 - 1
	}
	return int64(v)
}

// shortSeconds prints a duration as seconds, or below 0.1 s as "12 ms".
func shortSeconds(d time.Duration) string {
	if d < 100*time.Millisecond {
		return fmt.Sprintf("%d ms", max(d.Milliseconds(), 0))
	}
	return seconds(d.Milliseconds())
}

// seconds prints a duration in ms as "0.8 s", "12 s".
func seconds(ms int64) string {
	if ms < 10000 {
		return fmt.Sprintf("%.1f s", float64(ms)/1000)
	}
	return fmt.Sprintf("%d s", (ms+500)/1000)
}

// VictimCmdlineSentence is the body's sentence on the victim's command
// line, from a process snapshot taken before (ahead of the kill), with a
// leading space: the kernel names a process by its comm (memhog, python,
// java), which does not tell apart workers of the same program.
func VictimCmdlineSentence(cmdline string, before time.Duration) string {
	//nolint:gocritic // printable.Escape has escaped the command line already: %q would escape its backslashes twice
	return fmt.Sprintf(" Its command line was \"%s\" (process snapshot %s before the kill).", printable.Escape(cmdline), shortSeconds(before))
}

// SnapshotProcess is one process of a snapshot as a sentence names it.
type SnapshotProcess struct {
	PID int64
	// Cmdline is the command line as captured; "" when the capture is
	// off (then only the pid is named).
	Cmdline string
	RSS     int64
}

// NearLimitBody is the body of a near miss: the cgroup at path reached
// usage of its limit (0: unknown) and no kill followed within quiet; its
// largest processes (at most three named) by resident memory.
func NearLimitBody(path string, usage, limit uint64, procs []SnapshotProcess, quiet time.Duration) string {
	var b strings.Builder
	b.WriteString("Near miss: ")
	b.WriteString(Place(path))
	if limit > 0 {
		fmt.Fprintf(&b, " reached %d %% of its %s memory limit (%s, page cache included)", signed(usage*100/limit), Bytes(signed(limit)), Bytes(signed(usage)))
	} else {
		fmt.Fprintf(&b, " was in its limit zone at %s", Bytes(signed(usage)))
	}
	fmt.Fprintf(&b, " and no process of it was OOM-killed within %s", seconds(quiet.Milliseconds()))
	for i, p := range procs {
		if i == 3 {
			fmt.Fprintf(&b, " and %d more", len(procs)-3)
			break
		}
		if i == 0 {
			b.WriteString("; its largest processes: ")
		} else {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "pid %d", p.PID)
		if p.Cmdline != "" {
			fmt.Fprintf(&b, " \"%s\"", printable.Escape(p.Cmdline))
		}
		fmt.Fprintf(&b, " %s", Bytes(p.RSS))
	}
	b.WriteString(".")
	return b.String()
}
