// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgrouptest // import "github.com/oomsight/oomsight/internal/testing/cgrouptest"

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Many creates n sibling cgroups below a parent cgroup named name, each
// charged with kib KiB of tmpfs memory (written from inside it by one shell
// that moves itself from cgroup to cgroup), and returns the parent. The
// files and cgroups are removed at cleanup.
func (env Env) Many(tb testing.TB, name string, n, kib int) *Cgroup {
	tb.Helper()
	parent := env.NewCgroup(tb, name)
	var script strings.Builder
	files := make([]string, n)
	for i := range n {
		c := env.NewCgroup(tb, name+"/"+Flat(i))
		files[i] = filepath.Join("/dev/shm", fmt.Sprintf("oomsight-%s-%d", strings.ReplaceAll(name, "/", "-"), i))
		fmt.Fprintf(&script, "echo $$ > %s/cgroup.procs && head -c %d /dev/zero > %s || exit 1\n", c.Dir, kib*1024, files[i])
	}
	tb.Cleanup(func() {
		for _, f := range files {
			_ = os.Remove(f)
		}
	})
	// The shell ends in the last cgroup; it exits, so the cgroups can go.
	cmd := exec.Command("sh", "-s")
	cmd.Stdin = strings.NewReader(script.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("charging %d cgroups: %v\n%s", n, err, out)
	}
	return parent
}

// ManyLive is Many with a process left in each cgroup: the shell that
// charges a cgroup becomes a sleep there, as on a node where every cgroup
// holds a container, so that a reader of per-process files (cAdvisor, the
// receiver's process snapshots) finds one process in each. The processes
// are killed when the cgroups are removed at cleanup (RemoveCgroup).
func (env Env) ManyLive(tb testing.TB, name string, n, kib int) *Cgroup {
	tb.Helper()
	parent, _ := env.ManyLiveIn(tb, name, n, kib, Flat)
	return parent
}

// Layout names the i-th cgroup of a set below its parent.
type Layout func(i int) string

// Flat is the layout c0000, c0001, … of Many and ManyLive.
func Flat(i int) string { return fmt.Sprintf("c%04d", i) }

// SystemdPods is the layout of a Kubernetes node with the systemd cgroup
// driver and containerd, one container in each burstable pod:
// kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/cri-containerd-<64 hex>.scope,
// so that the receiver derives the pod and container identity from each
// path as on a node. SystemdPodsGlob selects exactly the containers.
func SystemdPods(i int) string {
	uid := fmt.Sprintf("%08x_0000_4000_8000_%012x", i, i)
	return fmt.Sprintf("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod%s.slice/cri-containerd-%064x.scope", uid, i)
}

// SystemdPodsGlob is the include glob of SystemdPods' containers below
// the parent at path.
func SystemdPodsGlob(path string) string {
	return path + "/kubepods.slice/kubepods-burstable.slice/*/cri-containerd-*.scope"
}

// ManyLiveIn is ManyLive with the cgroups named by layout below the
// parent (their own parents are created as needed); it returns the
// parent and the n cgroups.
func (env Env) ManyLiveIn(tb testing.TB, name string, n, kib int, layout Layout) (*Cgroup, []*Cgroup) {
	tb.Helper()
	parent := env.NewCgroup(tb, name)
	var script strings.Builder
	cgs := make([]*Cgroup, n)
	dirs := make([]string, n)
	files := make([]string, n)
	for i := range n {
		cgs[i] = env.NewCgroup(tb, name+"/"+layout(i))
		dirs[i] = cgs[i].Dir
		files[i] = filepath.Join("/dev/shm", fmt.Sprintf("oomsight-%s-%d", strings.ReplaceAll(name, "/", "-"), i))
		// Single quotes: $$ is the inner shell's pid, the one that moves.
		fmt.Fprintf(&script, "sh -c 'echo $$ > %s/cgroup.procs && head -c %d /dev/zero > %s && exec sleep 2147483647' </dev/null >/dev/null 2>&1 &\n",
			dirs[i], kib*1024, files[i])
	}
	tb.Cleanup(func() {
		for _, f := range files {
			_ = os.Remove(f)
		}
	})
	cmd := exec.Command("sh", "-s")
	cmd.Stdin = strings.NewReader(script.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("starting %d processes in their cgroups: %v\n%s", n, err, out)
	}
	// The processes move themselves in the background: wait until every
	// cgroup holds its sleep and its charge.
	// The bound is generous for the cgroup v2 VM, where software
	// emulation makes each fork and exec take tens of milliseconds.
	start := time.Now()
	deadline := start.Add(time.Duration(n)*50*time.Millisecond + 30*time.Second)
	for i := 0; i < n; {
		procs, _ := os.ReadFile(filepath.Join(dirs[i], "cgroup.procs"))
		if fi, err := os.Stat(files[i]); err == nil && fi.Size() == int64(kib)*1024 && len(strings.Fields(string(procs))) == 1 {
			i++
			continue
		}
		if time.Now().After(deadline) {
			tb.Fatalf("cgroup %s: no process charged with %d KiB after %s (procs %q)", dirs[i], kib, time.Since(start).Round(time.Millisecond), procs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return parent, cgs
}
