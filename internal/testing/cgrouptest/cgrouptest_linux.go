// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package cgrouptest gives oomsight's tests real memory cgroups: children of
// the test's own memory cgroup with a limit, and a workload (memhog) placed
// in them that allocates on command. Tests need root and a memory
// controller; with CI=true a missing prerequisite fails the test instead of
// skipping it, so CI can never pass by testing nothing.
package cgrouptest // import "github.com/oomsight/oomsight/internal/testing/cgrouptest"

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oomsight/oomsight/internal/cgroupfs"
)

// Env is the memory hierarchy the test runs in and its own cgroup in it.
type Env struct {
	Hierarchy cgroupfs.Hierarchy
	Self      string // the test process's memory cgroup, relative to Hierarchy.Dir
}

// Unavailable stops the test for a missing prerequisite: a failure when
// CI=true, a skip otherwise (a developer laptop without root).
func Unavailable(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		tb.Fatalf("prerequisite missing under CI=true: %s", msg)
	}
	tb.Skipf("prerequisite missing (set CI=true to make this a failure): %s", msg)
}

// Require returns the test's memory cgroup environment, or stops the test
// (see Unavailable) when not root or without a memory controller.
func Require(tb testing.TB) Env {
	tb.Helper()
	if os.Geteuid() != 0 {
		Unavailable(tb, "this test creates memory cgroups and needs root")
	}
	h, err := cgroupfs.Detect("/sys/fs/cgroup")
	if err != nil {
		Unavailable(tb, "no memory cgroup hierarchy: %v", err)
	}
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		Unavailable(tb, "reading /proc/self/cgroup: %v", err)
	}
	self, err := OwnCgroup(b, h.Version)
	if err != nil {
		Unavailable(tb, "%v", err)
	}
	return Env{Hierarchy: h, Self: self}
}

// OwnCgroup finds the memory cgroup in the contents of /proc/self/cgroup:
// the line whose controllers include memory on v1, the "0::" line on v2.
func OwnCgroup(procSelfCgroup []byte, v cgroupfs.Version) (string, error) {
	for line := range strings.SplitSeq(string(procSelfCgroup), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if v == cgroupfs.V2 && parts[0] == "0" && parts[1] == "" {
			return parts[2], nil
		}
		if v == cgroupfs.V1 {
			if slices.Contains(strings.Split(parts[1], ","), "memory") {
				return parts[2], nil
			}
		}
	}
	return "", fmt.Errorf("no %s memory cgroup in /proc/self/cgroup", v)
}

// Cgroup is a memory cgroup made for one test; it is removed at cleanup.
type Cgroup struct {
	Env
	Path string // relative to Hierarchy.Dir, as the kernel prints it
	Dir  string
}

// NewCgroup creates the cgroup at rel below the test's own cgroup (rel may
// have several segments, e.g. "kubepods/burstable/pod<uid>"; missing parents
// are created and removed too).
func (env Env) NewCgroup(tb testing.TB, rel string) *Cgroup {
	tb.Helper()
	base := env.Self
	var created []string
	for seg := range strings.SplitSeq(strings.Trim(rel, "/"), "/") {
		if env.Hierarchy.Version == cgroupfs.V2 {
			// The memory controller is enabled in each parent's
			// cgroup.subtree_control and never in the leaf's: on v2 a
			// cgroup that distributes a controller cannot hold
			// processes, so the leaf could take no workload.
			if err := EnableMemory(env.Hierarchy.Abs(base)); err != nil {
				Unavailable(tb, "%v", err)
			}
		}
		base = strings.TrimSuffix(base, "/") + "/" + seg
		dir := env.Hierarchy.Abs(base)
		if err := os.Mkdir(dir, 0o755); err != nil {
			if errors.Is(err, os.ErrExist) {
				continue
			}
			Unavailable(tb, "creating cgroup %s: %v", dir, err)
		}
		created = append(created, dir)
	}
	tb.Cleanup(func() {
		for _, c := range slices.Backward(created) {
			if err := RemoveCgroup(c); err != nil {
				tb.Errorf("cleanup: %v", err)
			}
		}
	})
	return &Cgroup{Env: env, Path: base, Dir: env.Hierarchy.Abs(base)}
}

// EnableMemory enables the memory controller for the children of the v2
// cgroup directory dir, unless it already is. The kernel refuses it where
// dir holds processes (other than in the root cgroup), as the test's own
// cgroup does on a v2 host where the test was not started in a cgroup of
// its own: the error says so.
func EnableMemory(dir string) error {
	f := filepath.Join(dir, "cgroup.subtree_control")
	b, err := os.ReadFile(f)
	if err != nil {
		return fmt.Errorf("reading %s: %w", f, err)
	}
	if slices.Contains(strings.Fields(string(b)), "memory") {
		return nil
	}
	if err := os.WriteFile(f, []byte("+memory"), 0); err != nil {
		return fmt.Errorf("enabling +memory in %s (a v2 cgroup that holds processes cannot give its children a controller): %w", f, err)
	}
	return nil
}

// SetLimit sets the hard memory limit, and keeps swap from postponing an
// OOM kill: v2 memory.swap.max 0, v1 memory+swap limit = limit when the host
// has swap (only then: with a memsw limit the charge fails on the memsw
// counter and memory.failcnt stays 0).
func (c *Cgroup) SetLimit(tb testing.TB, limit int64) {
	tb.Helper()
	v := []byte(strconv.FormatInt(limit, 10))
	if c.Hierarchy.Version == cgroupfs.V2 {
		c.write(tb, "memory.max", v)
		if _, err := os.Stat(filepath.Join(c.Dir, "memory.swap.max")); err == nil {
			c.write(tb, "memory.swap.max", []byte("0"))
		}
		return
	}
	c.write(tb, "memory.limit_in_bytes", v)
	if hostHasSwap() {
		if _, err := os.Stat(filepath.Join(c.Dir, "memory.memsw.limit_in_bytes")); err == nil {
			c.write(tb, "memory.memsw.limit_in_bytes", v)
		}
	}
}

func hostHasSwap() bool {
	b, err := os.ReadFile("/proc/swaps")
	return err == nil && bytes.Count(b, []byte("\n")) > 1
}

// Read returns the contents of one of the cgroup's files.
func (c *Cgroup) Read(tb testing.TB, file string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(c.Dir, file))
	if err != nil {
		tb.Fatalf("reading %s: %v", file, err)
	}
	return b
}

// ReadUint returns a one-number file of the cgroup.
func (c *Cgroup) ReadUint(tb testing.TB, file string) uint64 {
	tb.Helper()
	v, err := cgroupfs.ParseUint(c.Read(tb, file))
	if err != nil {
		tb.Fatalf("%s: %v", file, err)
	}
	return v
}

// LimitHits returns how often the cgroup hit its limit: v1 memory.failcnt,
// v2 the max counter of memory.events.local (v2 has no failcnt file; the
// counter rises each time a charge finds usage at memory.max and reclaims).
func (c *Cgroup) LimitHits(tb testing.TB) uint64 {
	tb.Helper()
	if c.Hierarchy.Version != cgroupfs.V2 {
		return c.ReadUint(tb, "memory.failcnt")
	}
	b := c.Read(tb, "memory.events.local")
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "max "); ok {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				tb.Fatalf("memory.events.local: %q: %v", line, err)
			}
			return n
		}
	}
	tb.Fatalf("memory.events.local has no max line: %q", b)
	return 0
}

// DiskEnv names a directory on a disk-backed filesystem that ScratchDir
// uses: the cgroup v2 VMs' root is a tmpfs, whose pages are shmem and
// cannot be reclaimed without swap, so page cache needs a real disk (an
// ext4 RAM disk there).
const DiskEnv = "OOMSIGHT_E2E_DISK"

// ScratchDir returns a directory for files whose page cache the kernel
// must be able to reclaim: one below DiskEnv's when set, else the test's
// temporary directory. It is removed at cleanup.
func ScratchDir(tb testing.TB) string {
	tb.Helper()
	disk := os.Getenv(DiskEnv)
	if disk == "" {
		return tb.TempDir()
	}
	dir, err := os.MkdirTemp(disk, "scratch") //nolint:usetesting // on DiskEnv's filesystem, which tb.TempDir cannot choose
	if err != nil {
		tb.Fatalf("scratch directory on %s: %v", disk, err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func (c *Cgroup) write(tb testing.TB, file string, v []byte) {
	tb.Helper()
	if err := os.WriteFile(filepath.Join(c.Dir, file), v, 0); err != nil {
		tb.Fatalf("writing %s to %s/%s: %v", v, c.Path, file, err)
	}
}

// Proc is a running memhog.
type Proc struct {
	Pid     int
	cmd     *exec.Cmd
	stdin   *os.File
	replies chan string
}

// Start runs memhog inside the cgroup. It is placed in the cgroup before it
// allocates anything beyond the Go runtime, then waits for commands. args
// are passed on its command line, which memhog ignores: they tell workers
// of the same executable apart, as in a process snapshot.
func (c *Cgroup) Start(tb testing.TB, memhog string, args ...string) *Proc {
	tb.Helper()
	return c.start(tb, exec.Command(memhog, args...))
}

// StartContainer runs memhog as a container's main process: the init of
// a pid namespace of its own (as runc starts it), inside the cgroup. Its
// Pid is the host's pid.
func (c *Cgroup) StartContainer(tb testing.TB, memhog string) *Proc {
	tb.Helper()
	cmd := exec.Command(memhog)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	return c.start(tb, cmd)
}

func (c *Cgroup) start(tb testing.TB, cmd *exec.Cmd) *Proc {
	tb.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting memhog: %v", err)
	}
	p := &Proc{Pid: cmd.Process.Pid, cmd: cmd, replies: make(chan string, 16)}
	p.stdin = stdin.(*os.File)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.replies <- sc.Text()
		}
		close(p.replies)
	}()
	tb.Cleanup(func() { p.Kill() })
	if r, err := p.reply(10 * time.Second); err != nil || !strings.HasPrefix(r, "ready") {
		tb.Fatalf("memhog did not start: %q %v", r, err)
	}
	c.write(tb, "cgroup.procs", []byte(strconv.Itoa(p.Pid)))
	return p
}

// Do sends one command and returns memhog's answer. An error means memhog
// died (for example OOM-killed) or did not answer in time.
func (p *Proc) Do(cmd string, timeout time.Duration) (string, error) {
	if _, err := fmt.Fprintln(p.stdin, cmd); err != nil {
		return "", fmt.Errorf("memhog %d: %w", p.Pid, err)
	}
	r, err := p.reply(timeout)
	if err == nil && !strings.HasPrefix(r, "ok") {
		err = fmt.Errorf("memhog %d: %s", p.Pid, r)
	}
	return r, err
}

// MustDo is Do that fails the test on error.
func (p *Proc) MustDo(tb testing.TB, cmd string) {
	tb.Helper()
	if _, err := p.Do(cmd, 30*time.Second); err != nil {
		tb.Fatalf("memhog %q: %v", cmd, err)
	}
}

func (p *Proc) reply(timeout time.Duration) (string, error) {
	select {
	case r, ok := <-p.replies:
		if !ok {
			return "", fmt.Errorf("memhog %d exited", p.Pid)
		}
		return r, nil
	case <-time.After(timeout):
		return "", fmt.Errorf("memhog %d: no answer in %s", p.Pid, timeout)
	}
}

// Wait waits for memhog to exit and returns how it ended.
func (p *Proc) Wait(timeout time.Duration) (syscall.WaitStatus, error) {
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		// A process that was killed or exited non-zero is a status, not an
		// error; an error without a status (Wait already called, say) is.
		if p.cmd.ProcessState == nil {
			return 0, fmt.Errorf("memhog %d: %w", p.Pid, err)
		}
		return p.cmd.ProcessState.Sys().(syscall.WaitStatus), nil
	case <-time.After(timeout):
		return 0, fmt.Errorf("memhog %d still running after %s", p.Pid, timeout)
	}
}

// Kill ends memhog if it still runs.
func (p *Proc) Kill() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Kill()
		_ = p.stdin.Close()
		_, _ = p.Wait(5 * time.Second)
	}
}

// RemoveCgroup kills what is left in the cgroup directory dir and removes
// it; the kernel refuses rmdir until the last task is gone, which takes a
// moment.
func RemoveCgroup(dir string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs")); err == nil {
			for f := range bytes.FieldsSeq(b) {
				if pid, err := strconv.Atoi(string(f)); err == nil {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		err := os.Remove(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("removing cgroup %s: %w", dir, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// MemhogEnv names a prebuilt static memhog that BuildMemhog returns
// instead of building one: inside the cgroup v2 VMs (make e2e-v2, make
// bench-v2) there is no Go toolchain.
const MemhogEnv = "OOMSIGHT_E2E_MEMHOG"

// BuildMemhog builds the memhog command into a temporary directory and
// returns its path (or the prebuilt one of MemhogEnv). It is static
// (CGO_ENABLED=0) so that it runs anywhere, including the cgroup v2 VM.
func BuildMemhog(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv(MemhogEnv); p != "" {
		return p
	}
	out := filepath.Join(tb.TempDir(), "memhog")
	cmd := exec.Command("go", "build", "-o", out, "github.com/oomsight/oomsight/internal/testing/cgrouptest/memhog")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("building memhog: %v\n%s", err, b)
	}
	return out
}
