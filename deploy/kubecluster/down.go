// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package kubecluster // import "github.com/oomsight/oomsight/deploy/kubecluster"

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// LogArchive is where Down copies the components' logs before it removes
// StateDir, for reading after a failed run.
const LogArchive = "/tmp/oomsight-k8s-logs"

// Down stops the cluster and removes everything Up made: the pods (through
// the kubelet, so that the CNI plugin removes their network), every
// component process, the containers' processes, mounts, cgroups, network
// namespaces, the bridge, kube-proxy's, the kubelet's and kube-router's
// iptables chains and kube-router's ipsets, the state directories; it restores the sysctls. It works on a half-started
// or crashed cluster too, and reports what it could not remove.
func (c *Cluster) Down(ctx context.Context) error {
	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	t0 := time.Now()
	// No controller recreates what is deleted below.
	note(c.stopComponent("kube-controller-manager", 10*time.Second))
	note(c.stopComponent("kube-scheduler", 10*time.Second))
	// Nothing rewrites the firewall's rules while they are removed.
	note(c.stopComponent("kube-router", 10*time.Second))
	c.deletePods(ctx)
	netns := c.sandboxNetns(ctx)
	note(c.stopComponent("kube-proxy", 10*time.Second))
	note(c.stopVM(ctx))
	note(c.stopComponent("kubelet", 20*time.Second))
	c.killTasks(ctx)
	note(c.stopComponent("containerd", 20*time.Second))
	note(killShims())
	note(killCgroupProcs())
	note(c.stopComponent("kube-apiserver", 20*time.Second))
	note(c.stopComponent("etcd", 20*time.Second))
	note(c.cleanIptables(ctx))
	note(destroyKubeRouterSets(ctx))
	for _, dir := range append([]string{KubeletDir, StateDir, RunDir}, netns...) {
		note(unmountUnder(dir))
	}
	for _, ns := range netns {
		if err := os.Remove(ns); err != nil && !errors.Is(err, os.ErrNotExist) {
			note(fmt.Errorf("netns %s: %w", ns, err))
		}
	}
	note(removeCgroups())
	if _, err := os.Stat("/sys/class/net/" + Bridge); err == nil {
		if _, err := run(ctx, "ip", "link", "del", Bridge); err != nil {
			note(err)
		}
	}
	note(c.restoreSysctls())
	c.archiveLogs()
	if b, err := os.ReadFile(c.path("created")); err == nil {
		for d := range strings.FieldsSeq(string(b)) {
			switch {
			case slices.Contains(sharedDirs, d):
				removeEmpty(d)
			case slices.Contains(hostDirs, d):
				note(removeTree(d))
			}
		}
	}
	for _, dir := range []string{KubeletDir, StateDir, RunDir} {
		note(removeTree(dir))
	}
	note(removeCNICache())
	if len(errs) == 0 {
		if left := Leftovers(); len(left) > 0 {
			errs = append(errs, fmt.Errorf("left behind: %s", strings.Join(left, "; ")))
		}
	}
	if c.Log != nil {
		c.Log("k8s: cluster down in %.0f s", time.Since(t0).Seconds())
	}
	return errors.Join(errs...)
}

// deletePods deletes every pod through the API server while the kubelet
// runs, so that it stops their sandboxes (the CNI plugin releases their
// addresses and veths); best effort, bounded.
func (c *Cluster) deletePods(ctx context.Context) {
	if _, err := os.Stat(c.Kubeconfig()); err != nil {
		return
	}
	dctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if _, err := c.Kubectl(dctx, "delete", "pods", "--all", "--all-namespaces", "--grace-period=1", "--timeout=50s", "--request-timeout=5s"); err != nil {
		return
	}
	// The kubelet stops the sandboxes after the pods are gone.
	for dctx.Err() == nil {
		out, err := c.ctr(dctx, "tasks", "ls")
		if err != nil || !strings.Contains(out, "RUNNING") {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// sandboxNetns lists the network namespaces of the containerd's sandboxes
// (bind mounts under /run/netns that the CRI plugin made).
func (c *Cluster) sandboxNetns(ctx context.Context) []string {
	out, err := c.ctr(ctx, "containers", "ls", "--quiet")
	if err != nil {
		return nil
	}
	var paths []string
	for id := range strings.FieldsSeq(out) {
		info, err := c.ctr(ctx, "containers", "info", id)
		if err != nil {
			continue
		}
		var ci struct {
			Spec struct {
				Linux struct {
					Namespaces []struct {
						Type string `json:"type"`
						Path string `json:"path"`
					} `json:"namespaces"`
				} `json:"linux"`
			} `json:"Spec"`
		}
		if json.Unmarshal([]byte(info), &ci) != nil {
			continue
		}
		for _, ns := range ci.Spec.Linux.Namespaces {
			if ns.Type == "network" && (strings.HasPrefix(ns.Path, "/var/run/netns/") || strings.HasPrefix(ns.Path, "/run/netns/")) {
				paths = append(paths, ns.Path)
			}
		}
	}
	return paths
}

// killTasks kills what still runs in containerd (a kubelet that did not
// stop its pods).
func (c *Cluster) killTasks(ctx context.Context) {
	out, err := c.ctr(ctx, "tasks", "ls", "--quiet")
	if err != nil {
		return
	}
	for id := range strings.FieldsSeq(out) {
		_, _ = c.ctr(ctx, "tasks", "kill", "--signal", "SIGKILL", id)
	}
}

// shimMarker is in the command line of every shim the cluster's containerd
// starts, and of no other process.
const shimMarker = "-address " + RunDir + "/containerd.sock"

// killShims ends the cluster containerd's shims, found by their command line.
func killShims() error {
	var errs []error
	for _, pid := range pids(func(pid int, cmdline string) bool {
		return isProcess(pid, "containerd-shim-runc-v2") && strings.Contains(cmdline, shimMarker)
	}) {
		if err := killWait(pid, "containerd-shim-runc-v2", 5*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// killCgroupProcs kills the processes left in the pods' cgroups.
func killCgroupProcs() error {
	var errs []error
	for _, root := range kubepodsRoots() {
		_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
				return nil //nolint:nilerr // a cgroup removed while walking
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return nil //nolint:nilerr // a cgroup removed while walking
			}
			for f := range strings.FieldsSeq(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			return nil
		})
	}
	time.Sleep(200 * time.Millisecond)
	return errors.Join(errs...)
}

// kubepodsRoots are the kubelet's cgroups (cgroupfs driver) in every
// hierarchy.
func kubepodsRoots() []string {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods")
	if _, err := os.Stat("/sys/fs/cgroup/kubepods"); err == nil {
		roots = append(roots, "/sys/fs/cgroup/kubepods")
	}
	return roots
}

// removeCgroups removes the kubelet's cgroups, deepest first.
func removeCgroups() error {
	var errs []error
	for _, root := range kubepodsRoots() {
		var dirs []string
		_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			var err error
			for range 20 {
				if err = syscall.Rmdir(d); err == nil || errors.Is(err, syscall.ENOENT) {
					err = nil
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("cgroup %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}

// cleanIptables removes kube-proxy's rules (its own --cleanup) and every
// KUBE-* chain left by it, the kubelet or kube-router, with the jumps to
// them.
func (c *Cluster) cleanIptables(ctx context.Context) error {
	if _, err := os.Stat(c.bin("kube-proxy")); err == nil {
		_, _ = run(ctx, c.bin("kube-proxy"), "--cleanup")
	}
	var errs []error
	for _, ipt := range []string{"iptables", "ip6tables"} {
		if _, err := exec.LookPath(ipt); err != nil {
			continue
		}
		for _, table := range []string{"filter", "nat", "mangle"} {
			out, err := run(ctx, ipt, "-t", table, "-S")
			if err != nil {
				continue
			}
			var chains []string
			for line := range strings.SplitSeq(out, "\n") {
				f := strings.Fields(line)
				switch {
				case len(f) >= 2 && f[0] == "-N" && strings.HasPrefix(f[1], "KUBE-"):
					chains = append(chains, f[1])
				case len(f) >= 2 && f[0] == "-A" && !strings.HasPrefix(f[1], "KUBE-") && strings.Contains(line, " KUBE-"):
					args, err := ruleArgs(line)
					if err != nil {
						errs = append(errs, err)
						continue
					}
					if _, err := run(ctx, ipt, append([]string{"-t", table, "-D"}, args[1:]...)...); err != nil {
						errs = append(errs, err)
					}
				}
			}
			for _, ch := range chains {
				_, _ = run(ctx, ipt, "-t", table, "-F", ch)
			}
			for _, ch := range chains {
				if _, err := run(ctx, ipt, "-t", table, "-X", ch); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// removeCNICache removes the CNI library's cached results of the cluster's
// network (it keeps them under /var/lib/cni whatever the plugins' dirs).
func removeCNICache() error {
	files, _ := filepath.Glob("/var/lib/cni/results/oomsight-e2e-*")
	var errs []error
	for _, f := range files {
		if err := os.Remove(f); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *Cluster) archiveLogs() {
	logs, _ := filepath.Glob(c.path("logs", "*.log"))
	if len(logs) == 0 {
		return
	}
	if err := os.MkdirAll(LogArchive, 0o700); err != nil {
		return
	}
	for _, l := range logs {
		if b, err := os.ReadFile(l); err == nil {
			_ = os.WriteFile(filepath.Join(LogArchive, filepath.Base(l)), b, 0o600)
		}
	}
}
