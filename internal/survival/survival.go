// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package survival tells whether a container survived an OOM kill in its
// cgroup: the kills Kubernetes does not see. When the kernel kills a
// worker of a container and not its main process, the container keeps
// running, the kubelet sees no exit, and nothing says OOMKilled or counts
// a restart (kubernetes-mixin #822, kubernetes #117070).
//
// The rule. The container's main process is the init of its pid
// namespace: the process whose innermost NSpid (/proc/<pid>/status) is 1.
// Runtimes put it in the container's own cgroup (runc starts the
// container's process 1 there; Kubernetes, podman and docker give every
// container a pid namespace of its own by default). The kernel ends every
// process of a pid namespace when its init dies (zap_pid_ns_processes), so
// once the victim has exited:
//
//   - the container's init is still in the cgroup and not being killed
//     itself → the container survived (a worker was killed);
//   - the cgroup is gone, empty, or its init is gone or dying → it did not;
//   - processes remain but none is a namespace's init (a container sharing
//     a pid namespace: a pod with shareProcessNamespace, hostPID, podman
//     --pid=host) → unknown: which process is the main one is not
//     recorded anywhere the receiver can read.
//
// The init rule was chosen over "the cgroup's earliest-started process"
// because it needs nothing from before the kill: the victim is gone by the
// time the question can be answered, and its start time or place in the
// process tree is gone with it, while the namespace init is a fact the
// kernel keeps for as long as the container lives.
//
// The decision (Decide) is pure; Checker (Linux) gathers what it looks at.
package survival // import "github.com/oomsight/oomsight/internal/survival"

// Verdict is what a kill did to its container.
type Verdict int

const (
	// Unknown means: not a container, the processes cannot be seen (another pid
	// namespace than the host's), the victim did not exit in time, or
	// nothing tells the main process apart. The record has no attribute.
	Unknown Verdict = iota
	// Survived means the container's init outlived the kill; a worker died.
	Survived
	// Ended means the container ended with the kill (its init was the victim,
	// or every process was killed).
	Ended
)

// String names the verdict for logs and tests.
func (v Verdict) String() string {
	switch v {
	case Survived:
		return "survived"
	case Ended:
		return "ended"
	}
	return "unknown"
}

// Known tells whether the verdict says anything (the attribute is set).
func (v Verdict) Known() bool { return v != Unknown }

// Process is one process found in the victim's cgroup after the kill.
type Process struct {
	PID int
	// Level is how many pid namespaces it is in (the NSpid entries): 1 in
	// the host's, 2 in a container's of its own, more when nested.
	Level int
	// NSInit: its innermost NSpid is 1 in a pid namespace below the
	// reader's (the init of a pid namespace).
	NSInit bool
	// Dying: being killed or already dead (SIGKILL pending, zombie or
	// dead state), so it does not keep the container alive.
	Dying bool
}

// Observation is what was seen of the victim's cgroup once the victim had
// exited (or the wait for it ended).
type Observation struct {
	// Gone: the cgroup no longer exists (the runtime removed it).
	Gone bool
	// VictimExited: the victim left the cgroup's process list within the
	// wait (always true when the victim is not known: a counted kill).
	VictimExited bool
	// Procs are the cgroup's processes that could be read, in the order
	// cgroup.procs lists them.
	Procs []Process
	// Truncated: the cgroup had more processes than were looked at.
	Truncated bool
}

// Decide applies the rule of the package documentation. The container's
// init is the namespace init at the outermost level among the cgroup's
// processes (a worker may start a pid namespace of its own, nested in the
// container's); a process at a level above it means the container shares
// an outer namespace, whose init is elsewhere.
func Decide(o Observation) Verdict {
	if o.Gone {
		return Ended
	}
	if !o.VictimExited {
		return Unknown
	}
	top, alive := 0, 0
	var init *Process
	for i := range o.Procs {
		p := &o.Procs[i]
		if !p.Dying {
			alive++
		}
		if top == 0 || p.Level < top {
			top = p.Level
		}
		if p.NSInit && (init == nil || p.Level < init.Level || (p.Level == init.Level && init.Dying && !p.Dying)) {
			init = p
		}
	}
	switch {
	case alive == 0 && !o.Truncated:
		return Ended // everything left is being killed
	case init == nil || init.Level > top:
		return Unknown // no init of the container's own: the main process is not known
	case init.Dying:
		return Ended // its init is being killed: the rest follows
	}
	return Survived
}
