// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package kubecluster // import "github.com/oomsight/oomsight/deploy/kubecluster"

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// pids lists the processes match accepts.
func pids(match func(pid int, cmdline string) bool) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		if match(pid, strings.ReplaceAll(string(b), "\x00", " ")) {
			out = append(out, pid)
		}
	}
	return out
}

// Leftovers lists what a stopped cluster must not leave: its processes,
// mounts, cgroups, bridge, iptables chains and ipsets, and its
// directories; the VM node's qemu, tap, bridge and route.
func Leftovers() []string {
	var left []string
	for _, name := range append(append([]string{}, components...), "containerd-shim-runc-v2") {
		for _, pid := range pids(func(pid int, cmdline string) bool {
			return isProcess(pid, name) && (strings.Contains(cmdline, StateDir) || strings.Contains(cmdline, shimMarker) || strings.Contains(cmdline, "_build/kube/"))
		}) {
			left = append(left, fmt.Sprintf("process %d (%s)", pid, name))
		}
	}
	left = append(left, vmLeftovers()...)
	for _, dir := range []string{KubeletDir, StateDir, RunDir} {
		if ms := mountsUnder(dir); len(ms) > 0 {
			left = append(left, "mounts "+strings.Join(ms, ", "))
		}
		if _, err := os.Stat(dir); err == nil {
			left = append(left, "directory "+dir)
		}
	}
	for _, r := range kubepodsRoots() {
		left = append(left, "cgroup "+r)
	}
	if _, err := os.Stat("/sys/class/net/" + Bridge); err == nil {
		left = append(left, "bridge "+Bridge)
	}
	if sets := kubeRouterSets(context.Background()); len(sets) > 0 {
		left = append(left, "ipsets "+strings.Join(sets, ", "))
	}
	for _, table := range []string{"filter", "nat", "mangle"} {
		out, err := exec.Command("iptables", "-t", table, "-S").Output()
		if err == nil && strings.Contains(string(out), "KUBE-") {
			left = append(left, "iptables "+table+" KUBE-* chains")
		}
	}
	return left
}
