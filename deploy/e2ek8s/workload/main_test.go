// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oomsight/oomsight/internal/cgroupfs"
	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
)

// childEnv makes the test binary run as the workload: it moves itself
// into the cgroup directory the variable names, then runs the arguments
// after "--".
const childEnv = "OOMSIGHT_WORKLOAD_CGROUP"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
			fmt.Fprintln(os.Stderr, "workload test child:", err)
			os.Exit(2)
		}
		for i, a := range os.Args {
			if a == "--" {
				if err := run(os.Args[i+1:]); err != nil {
					fmt.Fprintln(os.Stderr, "workload:", err)
					os.Exit(1)
				}
				os.Exit(0)
			}
		}
		os.Exit(2)
	}
	os.Exit(m.Run())
}

// TestCache runs `workload cache` in a real memory cgroup limited to
// 32 MiB (the host's v1, or v2 where the tests run on one) with a 64 MiB
// file on a disk: the cgroup's usage reaches its limit, nearly all of it
// page cache, the process's anonymous memory stays small, and nothing is
// killed; SIGTERM ends it cleanly after whole rounds.
func TestCache(t *testing.T) {
	env := cgrouptest.Require(t)
	const limit = 32 << 20
	cg := env.NewCgroup(t, fmt.Sprintf("oomsight-workload-%d/cache", os.Getpid()))
	cg.SetLimit(t, limit)
	file := filepath.Join(cgrouptest.ScratchDir(t), "log")
	cmd := exec.Command(os.Args[0], "-test.run=^$", "--", "cache", file, "64", "0")
	cmd.Env = append(os.Environ(), childEnv+"="+cg.Dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	stat := string(cg.Read(t, "memory.stat"))
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("workload cache: %v; output %s", err, out.String())
	}
	if !strings.Contains(out.String(), "cache: ") || strings.Contains(out.String(), "cache: 0 rounds") {
		t.Errorf("no whole round in 3 s: %s", out.String())
	}
	anon, cache := statKey(stat, "total_rss", "anon"), statKey(stat, "total_cache", "file")
	t.Logf("after 3 s: page cache %.1f MiB, anonymous %.1f MiB, limit %d MiB; %s", cache/(1<<20), anon/(1<<20), limit>>20, strings.TrimSpace(out.String()))
	if cache < 0.75*limit {
		t.Errorf("page cache %.1f MiB: want the %d MiB limit filled with it", cache/(1<<20), limit>>20)
	}
	if anon > 8<<20 {
		t.Errorf("anonymous memory %.1f MiB: the writer's heap must stay one buffer", anon/(1<<20))
	}
	if env.Hierarchy.Version == cgroupfs.V1 {
		if oc := string(cg.Read(t, "memory.oom_control")); !strings.Contains(oc, "oom_kill 0") {
			t.Errorf("killed: %s", oc)
		}
	}
}

// statKey is the value of the v1 key, or else the v2 one, in memory.stat.
func statKey(stat, v1, v2 string) float64 {
	for _, key := range []string{v1, v2} {
		for line := range strings.SplitSeq(stat, "\n") {
			if k, v, ok := strings.Cut(line, " "); ok && k == key {
				f, _ := strconv.ParseFloat(v, 64)
				return f
			}
		}
	}
	return 0
}
