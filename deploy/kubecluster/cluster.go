// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package kubecluster starts and stops a real single-node Kubernetes on
// this machine, from real parts: kube-apiserver, kube-controller-manager,
// kube-scheduler, kubelet, kube-proxy and kubectl built from
// k8s.io/kubernetes (internal/kube, `make kube`), CoreDNS built from its Go
// module, kube-router as the NetworkPolicy enforcer (`make kube-router`),
// and Debian's etcd, containerd, runc, CNI plugins and ipset. It exists so
// that `make e2e-k8s` can prove deploy/kubernetes/ on a real API server and
// kubelet, and `make k8s-up` lets a person do the same by hand.
//
// Everything stays on the machine: the API server and etcd listen on the
// host (etcd on loopback), the pods live on a bridge with no route out, and
// every image is built here and imported into containerd.
package kubecluster // import "github.com/oomsight/oomsight/deploy/kubecluster"

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The cluster's fixed addresses and names. The pod network is the bridge
// Bridge with the host at HostIP; the API server listens there too, so that
// pods reach it (through the kubernetes Service) and the host does.
const (
	NodeName    = "oomsight-node"
	Bridge      = "oomk8s0"
	HostIP      = "10.244.0.1"
	PodCIDR     = "10.244.0.0/24"
	ServiceCIDR = "10.96.0.0/16"
	DNSIP       = "10.96.0.10"
	APIServer   = "https://" + HostIP + ":6443"

	etcdClientURL = "http://127.0.0.1:23790"
	etcdPeerURL   = "http://127.0.0.1:23800"

	// StateDir holds the cluster's certificates, kubeconfigs, logs, etcd's
	// data and containerd's root; RunDir its sockets and runtime state.
	StateDir = "/var/lib/oomsight-k8s"
	RunDir   = "/run/oomsight-k8s"
	// KubeletDir is the kubelet's default root directory.
	KubeletDir = "/var/lib/kubelet"
	// AgentStateDir is the agent DaemonSet's hostPath (its OOM checkpoint
	// and exporter queue).
	AgentStateDir = "/var/lib/oomsight"

	// The images built here for the cluster itself (the agent's image is
	// `make image`'s).
	PauseImage    = "localhost/oomsight-e2e/pause:1"
	WorkloadImage = "localhost/oomsight-e2e/workload:1"
	CoreDNSImage  = "localhost/oomsight-e2e/coredns:1"
	// AgentImage is what deploy/kubernetes names and `make image` builds.
	AgentImage = "localhost/otelcol-oomsight:0.1.0"
)

// Cluster is the single-node cluster; Root is the repository checkout
// (binaries are in Root/_build/kube).
type Cluster struct {
	Root string
	// NodeSet is which nodes Up starts; "" is V1Only.
	NodeSet NodeSet
	// Log receives progress lines ("k8s: ...").
	Log func(format string, args ...any)
	pki *pki
	// vmStarted is when qemu started; vmProc is qemu (NodeSet with V2).
	vmStarted time.Time
	vmProc    *process
}

// New finds the repository root from the working directory.
func New(logf func(string, ...any)) (*Cluster, error) {
	dir, err := os.Getwd()
	if err != nil {
		return nil, fmt.Errorf("working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "builder-config.yaml")); err == nil {
			return &Cluster{Root: dir, Log: logf}, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil, errors.New("not inside the oomsight checkout (no builder-config.yaml above the working directory)")
		}
		dir = parent
	}
}

func (*Cluster) path(elem ...string) string {
	return filepath.Join(append([]string{StateDir}, elem...)...)
}

func (*Cluster) runPath(elem ...string) string {
	return filepath.Join(append([]string{RunDir}, elem...)...)
}

func (c *Cluster) bin(name string) string { return filepath.Join(c.Root, "_build", "kube", name) }

// ContainerdSocket is the cluster's own containerd (not the host's, if any).
func (c *Cluster) ContainerdSocket() string { return c.runPath("containerd.sock") }

// Kubeconfig is the cluster-admin kubeconfig `make k8s-up` prints.
func (c *Cluster) Kubeconfig() string { return c.path("admin.kubeconfig") }

// LogFile is where a component's output goes.
func (c *Cluster) LogFile(component string) string { return c.path("logs", component+".log") }

// Up starts the cluster and returns when the node is Ready and cluster DNS
// serves. A previous run's leftovers are removed first. An error names the
// component that failed, with the last lines of its log.
func (c *Cluster) Up(ctx context.Context) error {
	if os.Geteuid() != 0 {
		return errors.New("a Kubernetes node needs root")
	}
	for _, b := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "kubectl", "coredns"} {
		if _, err := os.Stat(c.bin(b)); err != nil {
			return fmt.Errorf("%s is not built (make kube): %w", b, err)
		}
	}
	if _, err := os.Stat(c.kubeRouterBin()); err != nil {
		return fmt.Errorf("kube-router is not built (make kube-router): %w", err)
	}
	if c.nodeSet().Has(V2) {
		if err := c.checkVM(); err != nil {
			return fmt.Errorf("vm: %w", err)
		}
	}
	for _, b := range []string{"etcd", "containerd", "containerd-shim-runc-v2", "ctr", "runc", "iptables", "ipset", "conntrack", "podman", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local"} {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Errorf("%s is missing (make e2e-k8s and make k8s-up install Debian's etcd-server, containerd, runc, containernetworking-plugins, conntrack, iptables, ipset and podman): %w", b, err)
		}
	}
	if _, err := os.Stat(StateDir); err == nil {
		c.Log("k8s: removing a previous cluster's leftovers")
		if err := c.Down(ctx); err != nil {
			return fmt.Errorf("leftovers of a previous run: %w", err)
		}
	}
	start := time.Now()
	steps := c.steps()
	for _, s := range steps {
		t0 := time.Now()
		if err := s.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		c.Log("k8s: %s up (%.1f s)", s.name, time.Since(t0).Seconds())
	}
	c.Log("k8s: cluster up in %.0f s; kubeconfig: %s", time.Since(start).Seconds(), c.Kubeconfig())
	return nil
}

// step is one step of Up; its name starts its error.
type step struct {
	name string
	fn   func(context.Context) error
}

// steps are Up's for the cluster's nodes. The VM starts as soon as its
// disk can be made (certificates and images exist), so that its boot
// under emulation overlaps the host's components; its Ready is awaited
// last.
func (c *Cluster) steps() []step {
	set := c.nodeSet()
	steps := []step{{"host", c.setupHost}, {"files", c.writeFiles}, {"images", c.buildImages}}
	if set.Has(V2) {
		steps = append(steps, step{"vm-network", c.setupVMNetwork}, step{"vm-start", c.startVM})
	}
	steps = append(steps,
		step{"etcd", c.startEtcd},
		step{"kube-apiserver", c.startAPIServer},
		step{"kube-controller-manager", c.startControllerManager},
		step{"kube-scheduler", c.startScheduler})
	if set.Has(V1) {
		steps = append(steps,
			step{"containerd", c.startContainerd},
			step{"images-import", c.importImages},
			step{"kubelet", c.startKubelet})
	}
	steps = append(steps, step{"kube-proxy", c.startKubeProxy})
	if set.Has(V1) {
		steps = append(steps, step{"kube-router", c.startKubeRouter})
	}
	if set.Has(V2) {
		steps = append(steps, step{"vm", c.waitVMReady})
	}
	return append(steps, step{"coredns", c.startCoreDNS})
}

// writeFiles writes certificates, kubeconfigs and component configs.
func (c *Cluster) writeFiles(context.Context) error {
	for _, d := range []string{StateDir, RunDir, c.path("logs"), c.path("run")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("mkdir %s: %w", d, err)
		}
	}
	p, err := newPKI(c.path("pki"))
	if err != nil {
		return err
	}
	c.pki = p
	apiSANs := []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost"}
	certs := []struct {
		name, cn string
		orgs     []string
		dns      []string
		ips      []string
	}{
		{"apiserver", "kube-apiserver", nil, apiSANs, []string{HostIP, "127.0.0.1", "10.96.0.1"}},
		{"apiserver-kubelet-client", "kube-apiserver-kubelet-client", []string{"system:masters"}, nil, nil},
		{"admin", "oomsight-admin", []string{"system:masters"}, nil, nil},
		{"controller-manager", "system:kube-controller-manager", nil, nil, nil},
		{"scheduler", "system:kube-scheduler", nil, nil, nil},
		{"kubelet", "system:node:" + NodeName, []string{"system:nodes"}, []string{NodeName}, []string{HostIP}},
		{"kube-proxy", "system:kube-proxy", nil, nil, nil},
		{"kube-router", kubeRouterUser, nil, nil, nil},
	}
	for _, cert := range certs {
		if err := p.issue(cert.name, cert.cn, cert.orgs, cert.dns, parseIPs(cert.ips)); err != nil {
			return err
		}
	}
	if c.nodeSet().Has(V2) {
		if err := os.MkdirAll(c.vmStateDir(), 0o700); err != nil {
			return fmt.Errorf("mkdir %s: %w", c.vmStateDir(), err)
		}
		if err := c.writeVMCerts(); err != nil {
			return err
		}
	}
	for _, name := range []string{"admin", "controller-manager", "scheduler", "kubelet", "kube-proxy", "kube-router"} {
		if err := p.kubeconfig(c.path(name+".kubeconfig"), APIServer, name); err != nil {
			return err
		}
	}
	files := map[string]string{
		c.path("containerd.toml"):                      c.containerdConfig(),
		c.path("cni", "net.d", "10-oomsight.conflist"): c.cniConfig(),
		c.path("kubelet.yaml"):                         c.kubeletConfig(),
		c.path("kube-proxy.yaml"):                      c.kubeProxyConfig(),
		c.path("coredns.yaml"):                         coreDNSManifests(c.nodeSet().systemGeneration()),
		c.path("kube-router.yaml"):                     kubeRouterRBAC(),
	}
	for f, content := range files {
		if err := writeFile(f, content); err != nil {
			return err
		}
	}
	return nil
}

// Kubectl runs kubectl with the admin kubeconfig.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.bin("kubectl"), append([]string{"--kubeconfig", c.Kubeconfig()}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// KubectlPath is the kubectl binary the cluster was built with.
func (c *Cluster) KubectlPath() string { return c.bin("kubectl") }
