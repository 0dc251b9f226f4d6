// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package survival // import "github.com/oomsight/oomsight/internal/survival"

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"
)

const (
	// Poll is how often the victim's cgroup is read while waiting for the
	// victim to leave it.
	Poll = 10 * time.Millisecond
	// Wait bounds that wait. An OOM victim exits within milliseconds (the
	// kernel's oom_reaper frees its memory even when it is stuck); one
	// still listed after Wait is stuck in the kernel, and its container's
	// fate is unknown.
	Wait = 2 * time.Second
	// Settle is how long a container whose init is alive is watched once
	// more before it is said to have survived: an init such as tini or
	// catatonit exits as soon as its one child (the real main process)
	// dies, a moment after the victim has left the cgroup.
	Settle = 100 * time.Millisecond
	// MaxProcs bounds the processes looked at (each costs one read of
	// /proc/<pid>/status, ~10 µs).
	MaxProcs = 4096
	// hostPIDNamespace is the inode of the initial pid namespace
	// (PROC_PID_INIT_INO in include/linux/proc_ns.h): the kernel's OOM
	// report names processes by their pid there.
	hostPIDNamespace = "pid:[4026531836]"
)

// Checker looks at a victim's cgroup after a kill. It reads the cgroup's
// cgroup.procs and /proc/<pid>/status of what is left: both name processes
// by the reader's pid namespace, so a Checker outside the host's pid
// namespace (a DaemonSet without hostPID) cannot see them and answers
// Unknown.
type Checker struct {
	dir  string // the memory hierarchy's directory
	proc string // the procfs mount
	// HostPID: the reader is in the host's pid namespace.
	hostPID bool
	// wait and settle are Wait and Settle, fields for tests.
	wait, settle time.Duration
}

// New returns a Checker of the memory hierarchy at dir, with /proc.
func New(dir string) *Checker {
	ns, err := os.Readlink("/proc/self/ns/pid")
	return &Checker{dir: dir, proc: "/proc", hostPID: err == nil && ns == hostPIDNamespace, wait: Wait, settle: Settle}
}

// HostPID tells whether the Checker sees the host's processes; without,
// every verdict is Unknown.
func (c *Checker) HostPID() bool { return c.hostPID }

// Check returns what the kill of victim (its host pid; 0 when unknown, a
// kill known only from a counter) did to the container whose cgroup is at
// path: it waits (bounded by Wait) until the victim has left the cgroup,
// looks at what is left, and watches a surviving init for Settle more. A
// close of stop ends the wait with Unknown.
func (c *Checker) Check(stop <-chan struct{}, path string, victim int) Verdict {
	if !c.hostPID {
		return Unknown
	}
	procs := filepath.Join(c.dir, filepath.FromSlash(path), "cgroup.procs")
	if victim == 0 && !sleep(stop, c.settle) {
		// A counted kill: the victim is not known, and may still be
		// exiting when its counter is read; give it Settle first.
		return Unknown
	}
	deadline := time.Now().Add(c.wait)
	var o Observation
	for {
		pids, err := readPIDs(procs)
		if gone(err) {
			return Ended
		}
		if err != nil {
			return Unknown
		}
		if victim == 0 || !contains(pids, victim) {
			o = c.observe(pids)
			break
		}
		if time.Now().After(deadline) {
			return Unknown
		}
		if !sleep(stop, Poll) {
			return Unknown
		}
	}
	v := Decide(o)
	if v != Survived {
		return v
	}
	if !sleep(stop, c.settle) {
		return Unknown
	}
	pids, err := readPIDs(procs)
	if gone(err) {
		return Ended
	}
	if err != nil {
		return Unknown
	}
	return Decide(c.observe(pids))
}

// gone tells whether a read failed because the cgroup was removed.
func gone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENODEV)
}

// observe reads /proc/<pid>/status of each pid; a process that exited
// meanwhile is left out.
func (c *Checker) observe(pids []int) Observation {
	o := Observation{VictimExited: true}
	if len(pids) > MaxProcs {
		pids, o.Truncated = pids[:MaxProcs], true
	}
	for _, pid := range pids {
		b, err := os.ReadFile(filepath.Join(c.proc, strconv.Itoa(pid), "status"))
		if err != nil {
			continue
		}
		p, err := ParseStatus(b)
		if err != nil {
			continue
		}
		p.PID = pid
		o.Procs = append(o.Procs, p)
	}
	return o
}

func contains(pids []int, pid int) bool {
	return slices.Contains(pids, pid)
}

// readPIDs reads a cgroup.procs file.
func readPIDs(file string) ([]int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("survival: %w", err)
	}
	var pids []int
	for f := range bytes.FieldsSeq(b) {
		pid, err := strconv.Atoi(string(f))
		if err != nil {
			return nil, fmt.Errorf("survival: %s: bad pid %q", file, f)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

func sleep(stop <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-stop:
		return false
	case <-t.C:
		return true
	}
}
