// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package survival

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
)

// container is a shell that is the init of a pid namespace of its own, in
// a cgroup of its own, with one sleeping child (its worker): a container
// as runc makes one, without the runtime.
type container struct {
	cg     *cgrouptest.Cgroup
	init   *exec.Cmd
	worker int // host pid
}

func startContainer(t *testing.T, name string, pidNS bool) *container {
	return startScript(t, name, pidNS, "read go; sleep 300 & echo started; wait; read never")
}

// startScript is startContainer with the init's shell script, which reads
// a line before it starts its worker and prints "started".
func startScript(t *testing.T, name string, pidNS bool, script string) *container {
	env := cgrouptest.Require(t)
	cg := env.NewCgroup(t, fmt.Sprintf("oomsight-survival-%d/%s", os.Getpid(), name))
	cmd := exec.Command("/bin/sh", "-c", script)
	if pidNS {
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err = cmd.Start(); err != nil {
		cgrouptest.Unavailable(t, "starting a shell in a new pid namespace: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if err = os.WriteFile(cg.Dir+"/cgroup.procs", []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
		t.Fatal(err)
	}
	if _, err = fmt.Fprintln(in, "go"); err != nil {
		t.Fatal(err)
	}
	if line, readErr := bufio.NewReader(out).ReadString('\n'); readErr != nil || strings.TrimSpace(line) != "started" {
		t.Fatalf("the shell did not start its worker: %q %v", line, readErr)
	}
	c := &container{cg: cg, init: cmd}
	pids, err := readPIDs(cg.Dir + "/cgroup.procs")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pids {
		if p != cmd.Process.Pid {
			c.worker = p
		}
	}
	if len(pids) != 2 || c.worker == 0 {
		t.Fatalf("cgroup.procs %v: want the shell %d and its worker", pids, cmd.Process.Pid)
	}
	return c
}

// TestCheckLive: real processes in a real cgroup, killed with SIGKILL as
// the OOM killer does: a worker's death leaves the container running, the
// init's ends it, and without a pid namespace of its own nothing tells.
func TestCheckLive(t *testing.T) {
	env := cgrouptest.Require(t)
	c := New(env.Hierarchy.Dir)
	if !c.HostPID() {
		cgrouptest.Unavailable(t, "the test does not run in the host's pid namespace")
	}
	stop := make(chan struct{})

	t.Run("worker killed", func(t *testing.T) {
		ct := startContainer(t, "worker", true)
		if err := syscall.Kill(ct.worker, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		if v := c.Check(stop, ct.cg.Path, ct.worker); v != Survived {
			t.Errorf("verdict %v, want survived", v)
		}
		t.Logf("survived decided in %v", time.Since(t0))
	})
	t.Run("init that ends with its worker (tini)", func(t *testing.T) {
		ct := startScript(t, "tini", true, "read go; sleep 300 & echo started; wait")
		if err := syscall.Kill(ct.worker, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if v := c.Check(stop, ct.cg.Path, ct.worker); v != Ended {
			t.Errorf("verdict %v, want ended", v)
		}
	})
	t.Run("init killed", func(t *testing.T) {
		ct := startContainer(t, "init", true)
		victim := ct.init.Process.Pid
		if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if v := c.Check(stop, ct.cg.Path, victim); v != Ended {
			t.Errorf("verdict %v, want ended", v)
		}
	})
	t.Run("counted kill of a worker", func(t *testing.T) {
		ct := startContainer(t, "counted", true)
		if err := syscall.Kill(ct.worker, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if v := c.Check(stop, ct.cg.Path, 0); v != Survived {
			t.Errorf("verdict %v, want survived", v)
		}
	})
	t.Run("no pid namespace of its own", func(t *testing.T) {
		ct := startContainer(t, "hostns", false)
		if err := syscall.Kill(ct.worker, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if v := c.Check(stop, ct.cg.Path, ct.worker); v != Unknown {
			t.Errorf("verdict %v, want unknown", v)
		}
	})
	t.Run("cgroup gone", func(t *testing.T) {
		if v := c.Check(stop, "/oomsight-survival-no-such-cgroup", 1234); v != Ended {
			t.Errorf("verdict %v, want ended", v)
		}
	})
	t.Run("victim that does not exit", func(t *testing.T) {
		ct := startContainer(t, "stuck", true)
		short := *c
		short.wait = 200 * time.Millisecond
		if v := short.Check(stop, ct.cg.Path, ct.worker); v != Unknown {
			t.Errorf("verdict %v, want unknown", v)
		}
	})
	t.Run("outside the host's pid namespace", func(t *testing.T) {
		blind := *c
		blind.hostPID = false
		if v := blind.Check(stop, "/", 1); v != Unknown {
			t.Errorf("verdict %v, want unknown", v)
		}
	})
}
