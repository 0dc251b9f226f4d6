// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package kubecluster // import "github.com/oomsight/oomsight/deploy/kubecluster"

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The configuration files of the components. Every value here that users
// would not set on their own nodes is a workaround for this machine and is
// listed in docs/tested-on-kubernetes.md.

// containerdConfig: Debian's containerd 1.6 with its CRI plugin, state
// under the cluster's own directories and socket. restrict_oom_score_adj:
// this machine cannot lower oom_score_adj, and without it every pod
// sandbox fails in runc ("can't get final child's PID from pipe: EOF").
func (c *Cluster) containerdConfig() string {
	return fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = %q

[ttrpc]
  address = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "runc"
        Root = %q
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %q
`, c.path("containerd", "root"), c.runPath("containerd"), c.ContainerdSocket(), c.runPath("containerd.ttrpc.sock"),
		PauseImage, c.runPath("runc"), c.path("cni", "net.d"))
}

// cniConfig: a bridge between the pods' network namespaces and the host,
// host-local addresses, no masquerading and no default route: pods reach
// each other, the Service range (through the host, where kube-proxy's
// rules are) and the host's address on the bridge, nothing beyond. With
// the VM node, the other node's pods too (ClusterCIDR through the host).
func (c *Cluster) cniConfig() string {
	routes := []string{ServiceCIDR}
	if c.nodeSet().Has(V2) {
		routes = append(routes, ClusterCIDR)
	}
	return cniConfig(Bridge, c.path("cni", "ipam"), PodCIDR, HostIP, routes...)
}

// cniConfig renders a node's bridge network: subnet on bridge with the
// node at gateway, and routes through it.
func cniConfig(bridge, ipamDir, subnet, gateway string, routes ...string) string {
	rs := make([]string, 0, len(routes))
	for _, r := range routes {
		rs = append(rs, fmt.Sprintf(`{"dst": %q}`, r))
	}
	return fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "oomsight-e2e",
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": %q,
        "ranges": [[{"subnet": %q, "gateway": %q}]],
        "routes": [%s]
      }
    }
  ]
}
`, bridge, ipamDir, subnet, gateway, strings.Join(rs, ", "))
}

// kubeletConfig: failCgroupV1 (the host's memory controller is on cgroup
// v1), failSwapOn and cgroupfs are this machine's; resolvConf "" gives pods
// with dnsPolicy Default no resolver (nothing outside the machine is
// reachable anyway).
func (c *Cluster) kubeletConfig() string {
	return kubeletConfig(kubeletParams{
		caFile: c.pki.path("ca.crt"), certFile: c.pki.path("kubelet.crt"), keyFile: c.pki.path("kubelet.key"),
		address: HostIP, driver: "cgroupfs", endpoint: c.ContainerdSocket(), failV1: false, dnsAddress: DNSIP,
	})
}

// kubeletParams are what differs between the nodes' kubelets.
type kubeletParams struct {
	caFile, certFile, keyFile string
	address                   string
	driver                    string // cgroupDriver: cgroupfs or systemd
	endpoint                  string // containerd's socket
	failV1                    bool   // failCgroupV1
	dnsAddress                string
}

func kubeletConfig(p kubeletParams) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: %s
authorization:
  mode: Webhook
tlsCertFile: %s
tlsPrivateKeyFile: %s
address: %s
healthzBindAddress: 127.0.0.1
cgroupDriver: %s
failCgroupV1: %t
failSwapOn: false
containerRuntimeEndpoint: unix://%s
clusterDNS: [%s]
clusterDomain: cluster.local
resolvConf: ""
staticPodPath: ""
rotateCertificates: false
serverTLSBootstrap: false
imageGCHighThresholdPercent: 100
evictionHard:
  memory.available: "100Mi"
  nodefs.available: "1%%"
  imagefs.available: "1%%"
`, p.caFile, p.certFile, p.keyFile, p.address, p.driver, p.failV1, p.endpoint, p.dnsAddress)
}

// kubeProxyConfig: iptables mode; the conntrack and localhost-node-port
// settings are left as the host has them (0 and false: kube-proxy changes
// no kernel tunable).
func (c *Cluster) kubeProxyConfig() string {
	return kubeProxyConfig(c.path("kube-proxy.kubeconfig"), NodeName, c.nodeSet().kubeProxyClusterCIDR(), HostIP)
}

func kubeProxyConfig(kubeconfig, node, clusterCIDR, bind string) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: %s
mode: iptables
hostnameOverride: %s
clusterCIDR: %s
bindAddress: %s
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
iptables:
  localhostNodePorts: false
`, kubeconfig, node, clusterCIDR, bind)
}

// coreDNSManifests: CoreDNS as the cluster DNS (the kube-dns Service at
// DNSIP), serving cluster.local from the API server, forwarding nothing,
// on the node of generation g (NodeLabel).
func coreDNSManifests(g Generation) string {
	return fmt.Sprintf(`apiVersion: v1
kind: ServiceAccount
metadata:
  name: coredns
  namespace: kube-system
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: system:coredns
rules:
  - apiGroups: [""]
    resources: ["endpoints", "services", "pods", "namespaces"]
    verbs: ["list", "watch"]
  - apiGroups: ["discovery.k8s.io"]
    resources: ["endpointslices"]
    verbs: ["list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: system:coredns
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:coredns
subjects:
  - kind: ServiceAccount
    name: coredns
    namespace: kube-system
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: coredns
  namespace: kube-system
data:
  Corefile: |
    .:53 {
        errors
        health {
            lameduck 5s
        }
        ready
        kubernetes cluster.local in-addr.arpa ip6.arpa {
            pods insecure
            fallthrough in-addr.arpa ip6.arpa
        }
        cache 30
    }
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: coredns
  namespace: kube-system
  labels:
    k8s-app: kube-dns
spec:
  replicas: 1
  selector:
    matchLabels:
      k8s-app: kube-dns
  template:
    metadata:
      labels:
        k8s-app: kube-dns
    spec:
      serviceAccountName: coredns
      dnsPolicy: Default
      nodeSelector:
        %s: %s
      containers:
        - name: coredns
          image: %s
          imagePullPolicy: IfNotPresent
          args: ["-conf", "/etc/coredns/Corefile"]
          resources:
            requests:
              cpu: 50m
              memory: 40Mi
            limits:
              memory: 170Mi
          ports:
            - {name: dns, containerPort: 53, protocol: UDP}
            - {name: dns-tcp, containerPort: 53, protocol: TCP}
          readinessProbe:
            httpGet:
              path: /ready
              port: 8181
            periodSeconds: 2
          volumeMounts:
            - name: config
              mountPath: /etc/coredns
              readOnly: true
      volumes:
        - name: config
          configMap:
            name: coredns
---
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels:
    k8s-app: kube-dns
spec:
  selector:
    k8s-app: kube-dns
  clusterIP: %s
  ports:
    - {name: dns, port: 53, protocol: UDP}
    - {name: dns-tcp, port: 53, protocol: TCP}
`, NodeLabel, g, CoreDNSImage, DNSIP)
}

func writeFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("mkdir for %s: %w", path, err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
