// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

//go:build linux

package e2ev2

// The host side: builds the VM and boots it. See README.md.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
	"github.com/oomsight/oomsight/internal/testing/qemuvm"
)

const (
	hostEnv = "OOMSIGHT_E2E_V2" // "1" runs TestCgroupV2InVM

	// vmTimeout bounds the VM run (boot to poweroff). One run takes about
	// 30–60 s under TCG on 2 cores, plus the time-to-OOM ramp's 64 s
	// (TestVMOOMETA).
	defaultVMTimeout = 240 * time.Second
)

// TestCgroupV2InVM boots Debian's cloud kernel under qemu (TCG) with an
// initramfs of busybox, memhog and this package's test binary, which runs
// the TestVM* checks on cgroup v2 and prints them on the console. It fails
// on any FAIL check, on a missing DONE line (boot failure, panic, timeout),
// on a non-zero exit of the test binary, or when no check ran at all.
//
// Environment: OOMSIGHT_E2E_V2=1 to run; OOMSIGHT_E2E_KERNEL=/boot/vmlinuz-…
// to pick the kernel (default: the newest *-cloud-amd64);
// OOMSIGHT_E2E_VM_TIMEOUT=<seconds> (default 240); OOMSIGHT_E2E_RUN=<regexp>
// to run a subset of the in-VM tests. With CI=true a missing prerequisite
// fails instead of skipping.
func TestCgroupV2InVM(t *testing.T) {
	if os.Getenv(hostEnv) != "1" {
		cgrouptest.Unavailable(t, "cgroup v2 VM end-to-end test: set %s=1 to run it (make e2e-v2); it needs root, apt-get and ~1–2 minutes", hostEnv)
	}
	t0 := time.Now()
	k := qemuvm.Prepare(t)
	kernel, kver := k.Image, k.Release
	tPkgs := time.Since(t0)

	// The static test binary (memhog is qemuvm's).
	tBuild := time.Now()
	testBin := filepath.Join(t.TempDir(), "e2ev2.test")
	qemuvm.GoBuild(t, "test", "-c", "-o", testBin, "-ldflags=-s -w", ".")
	buildTime := time.Since(tBuild)
	workload, err := os.ReadFile(filepath.Join("testdata", "workload.sh"))
	if err != nil {
		t.Fatal(err)
	}

	// Boot.
	timeout := defaultVMTimeout
	if s := os.Getenv("OOMSIGHT_E2E_VM_TIMEOUT"); s != "" {
		n, atoiErr := strconv.Atoi(s)
		if atoiErr != nil || n <= 0 {
			t.Fatalf("OOMSIGHT_E2E_VM_TIMEOUT=%q: want a number of seconds", s)
		}
		timeout = time.Duration(n) * time.Second
	}
	var env []string
	if run := os.Getenv("OOMSIGHT_E2E_RUN"); run != "" {
		env = append(env, "E2EV2_RUN="+run) // the kernel passes it to /init's environment
	}
	consolePath := filepath.Join(t.ArtifactDir(), "console.log")
	tBoot := time.Now()
	console, runErr := k.Boot(t, qemuvm.Boot{
		Tag:      strings.TrimSpace(linePrefix),
		Workload: workload,
		Files:    []qemuvm.File{{Name: "bin/e2ev2.test", Src: testBin}},
		MemMiB:   768, CPUs: 1,
		Env:     env,
		Timeout: timeout,
		Console: consolePath,
		// Progress, not the checks: they are listed at the end.
		Progress: func(line string) string {
			if i := strings.Index(line, linePrefix); i >= 0 && !strings.HasPrefix(line[i:], linePrefix+"CHECK ") {
				return line[i:]
			}
			if strings.HasPrefix(line, "=== RUN") || strings.HasPrefix(line, "--- ") {
				return line
			}
			return ""
		},
	})
	vmTime := time.Since(tBoot)

	res, err := parseConsole(bytes.NewReader(console))
	if err != nil {
		t.Fatalf("reading the console: %v", err)
	}
	t.Logf("kernel: %s (booted %s)", res.Kernel, kernel)
	t.Logf("cgroup mode: %s", res.Mode)
	pass, fail, pend := res.counts()
	for _, c := range res.Checks {
		t.Logf("  %-7s %s  %s", c.Status, c.Name, c.Detail)
	}
	if pend > 0 {
		var names []string
		for _, c := range res.Checks {
			if c.Status == statusPending {
				names = append(names, c.Name)
			}
		}
		sort.Strings(names)
		t.Logf("pending (code under test not on main yet, not counted as passing): %s", strings.Join(names, ", "))
	}
	t.Logf("checks: %d pass, %d fail, %d pending", pass, fail, pend)
	t.Logf("time: packages %s, build %s, VM %s, total %s (console log: %s)",
		tPkgs.Round(time.Millisecond), buildTime.Round(time.Millisecond), vmTime.Round(time.Millisecond),
		time.Since(t0).Round(time.Millisecond), consolePath)

	var problems []string
	if runErr != nil {
		problems = append(problems, runErr.Error())
	}
	if res.Kernel != "" && res.Kernel != kver {
		problems = append(problems, fmt.Sprintf("the VM runs kernel %q, want %q", res.Kernel, kver))
	}
	if !strings.HasPrefix(res.Mode, "cgroup2 unified") {
		problems = append(problems, fmt.Sprintf("cgroup mode %q is not cgroup2 unified", res.Mode))
	}
	if fail > 0 {
		problems = append(problems, fmt.Sprintf("%d check(s) failed", fail))
	}
	if !res.Done {
		problems = append(problems, "no E2EV2 DONE line: the VM did not boot, the test binary panicked or timed out, or the VM hit the timeout")
	} else if res.Exit != 0 {
		problems = append(problems, fmt.Sprintf("the in-VM test binary exited with %d", res.Exit))
	}
	if pass == 0 {
		problems = append(problems, "no check passed")
	}
	if len(res.Unknown) > 0 {
		problems = append(problems, fmt.Sprintf("unrecognized E2EV2 lines: %q", res.Unknown))
	}
	if len(problems) > 0 {
		t.Logf("VM console (%d lines):\n%s", len(res.Lines), strings.Join(res.Lines, "\n"))
		t.Fatalf("cgroup v2 end-to-end failed:\n- %s", strings.Join(problems, "\n- "))
	}
}

func TestVersionLess(t *testing.T) {
	in := []string{"/boot/vmlinuz-6.1.0-56-cloud-amd64", "/boot/vmlinuz-6.1.0-9-cloud-amd64", "/boot/vmlinuz-6.10.0-1-cloud-amd64", "/boot/vmlinuz-6.1.0-56a-cloud-amd64"}
	sort.Slice(in, func(i, j int) bool { return qemuvm.VersionLess(in[i], in[j]) })
	want := []string{"/boot/vmlinuz-6.1.0-9-cloud-amd64", "/boot/vmlinuz-6.1.0-56-cloud-amd64", "/boot/vmlinuz-6.1.0-56a-cloud-amd64", "/boot/vmlinuz-6.10.0-1-cloud-amd64"}
	if fmt.Sprint(in) != fmt.Sprint(want) {
		t.Errorf("got %q\nwant %q", in, want)
	}
}
