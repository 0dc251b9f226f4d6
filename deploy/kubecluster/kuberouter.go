// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package kubecluster // import "github.com/oomsight/oomsight/deploy/kubecluster"

import (
	"context"
	"errors"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The node's NetworkPolicy enforcer: kube-router (make kube-router) in
// firewall-only mode, on the host like kube-proxy. The CNI bridge plugin
// enforces nothing, so without it deploy/kubernetes/networkpolicy.yaml
// would be accepted and do nothing. It turns policies into iptables rules
// in the filter table (chains KUBE-ROUTER-*, KUBE-POD-FW-*, KUBE-NWPLCY-*,
// jumped to from INPUT, FORWARD and OUTPUT) and ipsets (KUBE-SRC-*,
// KUBE-DST-*); bridged pod-to-pod traffic reaches FORWARD through
// net.bridge.bridge-nf-call-iptables, which setupHost sets.

// kubeRouterUser is the identity of kube-router's client certificate,
// which kubeRouterRBAC binds.
const kubeRouterUser = "oomsight-e2e:kube-router"

// kubeRouterHealth is its health endpoint (its default port).
const kubeRouterHealth = "http://127.0.0.1:20244/healthz"

// kubeRouterSetPrefixes name the ipsets its firewall makes.
var kubeRouterSetPrefixes = []string{"KUBE-SRC-", "KUBE-DST-"}

// kubeRouterBin is make kube-router's binary (its own cache directory,
// keyed by its version, apart from make kube's).
func (c *Cluster) kubeRouterBin() string {
	return filepath.Join(c.Root, "_build", "kube-router", "kube-router")
}

// kubeRouterRBAC is what firewall-only mode reads: pkg/cmd/kube-router.go
// of v2.1.0 starts informers on services, endpoints, endpointslices,
// pods, nodes, namespaces and networkpolicies whatever mode is on, and
// exits when one cannot sync; nodes also for its own Node (get).
func kubeRouterRBAC() string {
	return `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: oomsight-e2e:kube-router
rules:
  - apiGroups: [""]
    resources: ["pods", "namespaces", "nodes", "services", "endpoints"]
    verbs: ["get", "list", "watch"]
  - apiGroups: ["discovery.k8s.io"]
    resources: ["endpointslices"]
    verbs: ["get", "list", "watch"]
  - apiGroups: ["networking.k8s.io"]
    resources: ["networkpolicies"]
    verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: oomsight-e2e:kube-router
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: oomsight-e2e:kube-router
subjects:
  - apiGroup: rbac.authorization.k8s.io
    kind: User
    name: ` + kubeRouterUser + `
`
}

// startKubeRouter grants kube-router its reads and starts it; it is up
// when its health endpoint answers and its chains are jumped to from
// FORWARD (it has written the host's rules once). It finds its Node by
// $NODE_NAME, else the host name, else --hostname-override (NodeName);
// the Node's InternalIP, HostIP (the kubelet's --node-ip), tells it which
// pods are local (their status.hostIP).
func (c *Cluster) startKubeRouter(ctx context.Context) error {
	if _, err := c.Kubectl(ctx, "apply", "-f", c.path("kube-router.yaml")); err != nil {
		return err
	}
	p, err := c.start("kube-router", c.kubeRouterBin(),
		"--run-firewall=true", "--run-router=false", "--run-service-proxy=false",
		"--kubeconfig="+c.path("kube-router.kubeconfig"),
		"--hostname-override="+NodeName,
		"--service-cluster-ip-range="+ServiceCIDR,
		"--enable-ipv4=true", "--enable-ipv6=false",
		"--v=1")
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 2 * time.Second}
	return c.waitReady(ctx, p, 90*time.Second, "healthy with its chains in FORWARD", func() error {
		if err := httpGet(client, kubeRouterHealth); err != nil {
			return err
		}
		out, err := run(ctx, "iptables", "-t", "filter", "-S", "FORWARD")
		if err != nil {
			return err
		}
		if !strings.Contains(out, "-j KUBE-ROUTER-FORWARD") {
			return errors.New("no jump to KUBE-ROUTER-FORWARD in FORWARD yet")
		}
		return nil
	})
}

// destroyKubeRouterSets removes kube-router's ipsets; the rules that use
// them must be gone first (cleanIptables), or the kernel keeps them.
// kube-router's own --cleanup-config is of no use here: in v2.1.0 it
// removes none of the firewall's rules or sets (its cleanup runs on a
// controller made without iptables or ipset handlers, and logs success),
// then panics in the service proxy's cleanup (a nil pointer in
// deleteHairpinIptablesRules) after trying to delete every IPVS service
// of the host.
func destroyKubeRouterSets(ctx context.Context) error {
	var errs []error
	for _, set := range kubeRouterSets(ctx) {
		if _, err := run(ctx, "ipset", "destroy", set); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// kubeRouterSets lists the ipsets whose names are kube-router's firewall's
// (none where the ipset tool is missing: nothing could have made them).
func kubeRouterSets(ctx context.Context) []string {
	if _, err := exec.LookPath("ipset"); err != nil {
		return nil
	}
	out, err := exec.CommandContext(ctx, "ipset", "list", "-n").Output()
	if err != nil {
		return nil
	}
	return kubeRouterSetNames(string(out))
}

// kubeRouterSetNames picks kube-router's sets from `ipset list -n`.
func kubeRouterSetNames(list string) []string {
	var sets []string
	for name := range strings.FieldsSeq(list) {
		for _, p := range kubeRouterSetPrefixes {
			if strings.HasPrefix(name, p) {
				sets = append(sets, name)
				break
			}
		}
	}
	return sets
}
