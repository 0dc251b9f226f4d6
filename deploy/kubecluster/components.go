// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package kubecluster // import "github.com/oomsight/oomsight/deploy/kubecluster"

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

func (c *Cluster) startEtcd(ctx context.Context) error {
	p, err := c.start("etcd", "etcd",
		"--name", "oomsight",
		"--data-dir", c.path("etcd"),
		"--listen-client-urls", etcdClientURL, "--advertise-client-urls", etcdClientURL,
		"--listen-peer-urls", etcdPeerURL, "--initial-advertise-peer-urls", etcdPeerURL,
		"--initial-cluster", "oomsight="+etcdPeerURL,
		"--listen-metrics-urls", "http://127.0.0.1:23810")
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 2 * time.Second}
	return c.waitReady(ctx, p, 30*time.Second, "healthy", func() error { return httpGet(client, etcdClientURL+"/health") })
}

func (c *Cluster) startAPIServer(ctx context.Context) error {
	pk := c.pki.path
	p, err := c.start("kube-apiserver", c.bin("kube-apiserver"),
		"--etcd-servers="+etcdClientURL,
		"--bind-address="+HostIP, "--advertise-address="+HostIP, "--secure-port=6443",
		"--tls-cert-file="+pk("apiserver.crt"), "--tls-private-key-file="+pk("apiserver.key"),
		"--client-ca-file="+pk("ca.crt"),
		"--kubelet-client-certificate="+pk("apiserver-kubelet-client.crt"),
		"--kubelet-client-key="+pk("apiserver-kubelet-client.key"),
		"--service-cluster-ip-range="+ServiceCIDR,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+pk("sa.pub"),
		"--service-account-signing-key-file="+pk("sa.key"),
		"--authorization-mode=Node,RBAC",
		// The node by its address, not its name (no resolver knows it).
		"--kubelet-preferred-address-types=InternalIP",
		"--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true",
		"--profiling=false")
	if err != nil {
		return err
	}
	return c.waitReady(ctx, p, 90*time.Second, "ready (/readyz)", func() error { return c.httpsGet(APIServer+"/readyz", true) })
}

func (c *Cluster) startControllerManager(ctx context.Context) error {
	kc := c.path("controller-manager.kubeconfig")
	p, err := c.start("kube-controller-manager", c.bin("kube-controller-manager"),
		"--kubeconfig="+kc, "--authentication-kubeconfig="+kc, "--authorization-kubeconfig="+kc,
		"--root-ca-file="+c.pki.path("ca.crt"),
		"--service-account-private-key-file="+c.pki.path("sa.key"),
		"--use-service-account-credentials=true",
		"--cluster-signing-cert-file="+c.pki.path("ca.crt"), "--cluster-signing-key-file="+c.pki.path("ca.key"),
		"--service-cluster-ip-range="+ServiceCIDR,
		"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=10257", "--profiling=false")
	if err != nil {
		return err
	}
	return c.waitReady(ctx, p, 60*time.Second, "healthy", func() error { return c.httpsGet("https://127.0.0.1:10257/healthz", false) })
}

func (c *Cluster) startScheduler(ctx context.Context) error {
	kc := c.path("scheduler.kubeconfig")
	p, err := c.start("kube-scheduler", c.bin("kube-scheduler"),
		"--kubeconfig="+kc, "--authentication-kubeconfig="+kc, "--authorization-kubeconfig="+kc,
		"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=10259", "--profiling=false")
	if err != nil {
		return err
	}
	return c.waitReady(ctx, p, 60*time.Second, "healthy", func() error { return c.httpsGet("https://127.0.0.1:10259/healthz", false) })
}

func (c *Cluster) startContainerd(ctx context.Context) error {
	p, err := c.start("containerd", "containerd", "--config", c.path("containerd.toml"))
	if err != nil {
		return err
	}
	return c.waitReady(ctx, p, 30*time.Second, "serving", func() error {
		_, err := c.ctr(ctx, "version")
		return err
	})
}

func (c *Cluster) startKubelet(ctx context.Context) error {
	p, err := c.start("kubelet", c.bin("kubelet"),
		"--config="+c.path("kubelet.yaml"),
		"--kubeconfig="+c.path("kubelet.kubeconfig"),
		"--hostname-override="+NodeName, "--node-ip="+HostIP,
		"--node-labels="+NodeLabel+"="+string(V1), "--v=1")
	if err != nil {
		return err
	}
	return c.waitReady(ctx, p, 120*time.Second, "Ready", func() error {
		out, err := c.Kubectl(ctx, "get", "node", NodeName, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		if err != nil {
			return err
		}
		if strings.TrimSpace(out) != "True" {
			return fmt.Errorf("node %s Ready=%q", NodeName, out)
		}
		return nil
	})
}

func (c *Cluster) startKubeProxy(ctx context.Context) error {
	p, err := c.start("kube-proxy", c.bin("kube-proxy"), "--config="+c.path("kube-proxy.yaml"))
	if err != nil {
		return err
	}
	// /healthz answers 503 while kube-proxy's Node does not exist (its
	// "nodeEligible"): with NODES=v2 the host is no node, and its
	// kube-proxy is there only for the host's own connections to
	// Services; /livez leaves the Node out.
	health := "http://127.0.0.1:10256/healthz"
	if !c.nodeSet().Has(V1) {
		health = "http://127.0.0.1:10256/livez"
	}
	client := &http.Client{Timeout: 2 * time.Second}
	return c.waitReady(ctx, p, 60*time.Second, "healthy (rules synced)", func() error {
		return httpGet(client, health)
	})
}

// startCoreDNS applies the cluster DNS and waits until it answers for the
// kubernetes Service through the kube-dns Service address.
func (c *Cluster) startCoreDNS(ctx context.Context) error {
	if _, err := c.Kubectl(ctx, "apply", "-f", c.path("coredns.yaml")); err != nil {
		return err
	}
	deadline := time.Now().Add(120 * time.Second)
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, DNSIP+":53")
	}}
	var last error
	for time.Now().Before(deadline) {
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		addrs, err := r.LookupHost(lctx, "kubernetes.default.svc.cluster.local")
		cancel()
		if err == nil && len(addrs) == 1 && addrs[0] == "10.96.0.1" {
			return nil
		}
		last = fmt.Errorf("kubernetes.default.svc.cluster.local via %s: %v %w", DNSIP, addrs, err)
		time.Sleep(time.Second)
	}
	pods, _ := c.Kubectl(ctx, "-n", "kube-system", "get", "pods", "-o", "wide")
	events, _ := c.Kubectl(ctx, "-n", "kube-system", "get", "events", "--sort-by=.lastTimestamp")
	return fmt.Errorf("not answering after 120 s: %w\n%s\n%s\nlast lines of %s:\n%s", last, pods, tailString(events, 15), c.LogFile("kubelet"), c.tailLog("kubelet", 15))
}

func tailString(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func parseIPs(ss []string) []net.IP {
	ips := make([]net.IP, 0, len(ss))
	for _, s := range ss {
		ips = append(ips, net.ParseIP(s))
	}
	return ips
}

// ctr runs containerd's ctr against the cluster's containerd, namespace
// k8s.io (the CRI's).
func (c *Cluster) ctr(ctx context.Context, args ...string) (string, error) {
	return run(ctx, "ctr", append([]string{"--address", c.ContainerdSocket(), "--namespace", "k8s.io"}, args...)...)
}

// StopAPIServer stops kube-apiserver (SIGTERM, SIGKILL after 10 s), the
// rest of the cluster running on: what a control-plane outage looks like
// to a node. StartAPIServer brings it back.
func (c *Cluster) StopAPIServer() error {
	return c.stopComponent("kube-apiserver", 10*time.Second)
}

// StartAPIServer starts kube-apiserver again with the same flags and
// certificates (the cluster must have been started by this Cluster's Up)
// and waits until /readyz answers.
func (c *Cluster) StartAPIServer(ctx context.Context) error {
	if c.pki == nil {
		return errors.New("kube-apiserver: the cluster's certificates are not loaded (start it with Up first)")
	}
	return c.startAPIServer(ctx)
}
