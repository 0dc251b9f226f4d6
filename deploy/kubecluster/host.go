// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package kubecluster // import "github.com/oomsight/oomsight/deploy/kubecluster"

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// sysctls the node needs and sets for its lifetime; Down restores the
// values they had (saved in StateDir/sysctl.json). ip_forward and
// bridge-nf-call-iptables let kube-proxy's rules see pod-to-Service
// traffic on the bridge; the kubelet itself sets the vm/kernel/keys ones
// (its "kernel defaults").
var sysctls = []string{
	"net/ipv4/ip_forward",
	"net/bridge/bridge-nf-call-iptables",
	"vm/overcommit_memory",
	"vm/panic_on_oom",
	"kernel/panic",
	"kernel/panic_on_oops",
	"kernel/keys/root_maxkeys",
	"kernel/keys/root_maxbytes",
}

// hostDirs are made outside StateDir by the cluster's parts: the agent
// DaemonSet's hostPath, containerd 1.6's shim sockets (a fixed path), the
// CNI library's result cache, the kubelet's container logs.
var hostDirs = []string{AgentStateDir, "/run/containerd", "/var/lib/cni", "/var/log/pods", "/var/log/containers"}

// sharedDirs are the hostDirs other software uses too (another containerd,
// podman's CNI): only their empty directories are removed.
var sharedDirs = []string{"/run/containerd", "/var/lib/cni"}

// setupHost saves the sysctls, turns forwarding on and creates the bridge
// with the host's address (the API server listens on it).
func (c *Cluster) setupHost(ctx context.Context) error {
	if err := os.MkdirAll(StateDir, 0o700); err != nil {
		return fmt.Errorf("mkdir %s: %w", StateDir, err)
	}
	// Directories outside StateDir that the cluster's parts create: Down
	// removes those that did not exist before.
	var created []string
	for _, d := range hostDirs {
		if _, err := os.Stat(d); errors.Is(err, os.ErrNotExist) {
			created = append(created, d)
		}
	}
	if err := os.WriteFile(c.path("created"), []byte(strings.Join(created, "\n")), 0o600); err != nil {
		return fmt.Errorf("note created directories: %w", err)
	}
	saved := map[string]string{}
	for _, s := range sysctls {
		b, err := os.ReadFile("/proc/sys/" + s)
		if err != nil {
			return fmt.Errorf("sysctl %s: %w", s, err)
		}
		saved[s] = strings.TrimSpace(string(b))
	}
	b, err := json.Marshal(saved)
	if err != nil {
		return fmt.Errorf("sysctls: %w", err)
	}
	if err := os.WriteFile(c.path("sysctl.json"), b, 0o600); err != nil {
		return fmt.Errorf("save sysctls: %w", err)
	}
	for s, v := range map[string]string{"net/ipv4/ip_forward": "1", "net/bridge/bridge-nf-call-iptables": "1"} {
		if err := os.WriteFile("/proc/sys/"+s, []byte(v), 0o600); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", s, v, err)
		}
	}
	for _, args := range [][]string{
		{"link", "add", Bridge, "type", "bridge"},
		{"addr", "add", HostIP + "/24", "dev", Bridge},
		{"link", "set", Bridge, "up"},
		// Service addresses are the bridge's: the host's own connections to
		// them (kubectl port-forward aside, the DNS check) never take the
		// default route.
		{"route", "add", ServiceCIDR, "dev", Bridge, "src", HostIP},
	} {
		if _, err := run(ctx, "ip", args...); err != nil {
			return err
		}
	}
	return nil
}

// restoreSysctls writes back what setupHost saved.
func (c *Cluster) restoreSysctls() error {
	b, err := os.ReadFile(c.path("sysctl.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("saved sysctls: %w", err)
	}
	saved := map[string]string{}
	if err := json.Unmarshal(b, &saved); err != nil {
		return fmt.Errorf("saved sysctls: %w", err)
	}
	var errs []error
	for s, v := range saved {
		if err := os.WriteFile("/proc/sys/"+s, []byte(v), 0o600); err != nil {
			errs = append(errs, fmt.Errorf("restore sysctl %s=%s: %w", s, v, err))
		}
	}
	return errors.Join(errs...)
}

// run runs a command and returns its combined output; the error has it.
func run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

func execCommand(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, name, args...)
}
