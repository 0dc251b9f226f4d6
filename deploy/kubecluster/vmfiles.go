// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package kubecluster // import "github.com/oomsight/oomsight/deploy/kubecluster"

import (
	"fmt"
	"strings"
)

// The VM node's files. The root filesystem image (vmimage.go) holds only
// Debian's packages and a unit that runs setup.sh from the node disk, a
// second virtio disk that Up makes anew each time (mounted read-only at
// vmDir): the binaries of this checkout (the kubelet and kube-proxy of
// make kube, containerd 2 of make containerd2), the certificates minted on
// the host for this cluster, the images and the configs below. So the
// cached image depends on the package list only, and a change of the
// Kubernetes or containerd version, or of a config, never rebuilds it.

// vmDir is where the node disk is mounted inside the VM.
const vmDir = "/opt/oomsight"

// vmDiskLabel is the node disk's ext4 label, which the image's fstab mounts.
const vmDiskLabel = "oomnode"

// vmContainerdSocket is the VM's containerd: its default path, since it is
// the only one there.
const vmContainerdSocket = "/run/containerd/containerd.sock"

// vmPath names a file on the node disk as the VM sees it.
func vmPath(elem ...string) string { return vmDir + "/" + strings.Join(elem, "/") }

// vmContainerdConfig: containerd 2's config (version 3) with its CRI
// plugin, the runc runtime with SystemdCgroup = true (the kubelet's
// systemd driver asks for cri-containerd-<id>.scope units under the pod's
// slice), the cluster's pause image pinned (imported from the node disk,
// never pulled) and the CNI plugins of Debian's containernetworking-plugins.
func vmContainerdConfig() string {
	return fmt.Sprintf(`version = 3
root = "/var/lib/containerd"
state = "/run/containerd"

[grpc]
  address = %q

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = %q

[plugins.'io.containerd.cri.v1.runtime']
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        SystemdCgroup = true
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "/etc/cni/net.d"
`, vmContainerdSocket, PauseImage)
}

// vmCNIConfig: the VM's pods on a bridge of their own (VMPodCIDR, the VM
// at VMPodGateway), routed to the Service range and to every node's pods
// through the VM; no masquerading, no default route.
func vmCNIConfig() string {
	return cniConfig(Bridge, "/var/lib/cni/networks", VMPodCIDR, VMPodGateway, ServiceCIDR, ClusterCIDR)
}

// vmKubeletConfig: as the host's kubelet (kubeletConfig), but the systemd
// cgroup driver on cgroup v2, and the VM's address and containerd.
func vmKubeletConfig() string {
	return kubeletConfig(kubeletParams{
		caFile:     vmPath("pki", "ca.crt"),
		certFile:   vmPath("pki", "kubelet.crt"),
		keyFile:    vmPath("pki", "kubelet.key"),
		address:    VMIP,
		driver:     "systemd",
		endpoint:   vmContainerdSocket,
		failV1:     true,
		dnsAddress: DNSIP,
	})
}

// vmKubeProxyConfig: the VM's own kube-proxy, so that a Service whose
// endpoint is on the VM is answered inside the VM (through the host the
// reply would bypass the host's connection tracking).
func vmKubeProxyConfig() string {
	return kubeProxyConfig(vmPath("etc", "kube-proxy.kubeconfig"), VMNodeName, ClusterCIDR, VMIP)
}

// vmUnits are the systemd units setup.sh installs into /run/systemd/system.
// containerd's are upstream's containerd.service (Delegate, KillMode
// process) with the node disk's binaries.
func vmUnits() map[string]string {
	path := "PATH=" + vmPath("bin") + ":/usr/sbin:/usr/bin:/sbin:/bin"
	return map[string]string{
		"containerd.service": `[Unit]
Description=containerd 2 (oomsight VM node)
After=network.target local-fs.target

[Service]
Environment=` + path + `
ExecStart=` + vmPath("bin", "containerd") + ` --config ` + vmPath("etc", "containerd.toml") + `
Type=notify
Delegate=yes
KillMode=process
Restart=always
RestartSec=2
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
OOMScoreAdjust=-999
`,
		"kubelet.service": `[Unit]
Description=kubelet (oomsight VM node)
After=containerd.service
Requires=containerd.service

[Service]
Environment=` + path + `
ExecStart=` + vmPath("bin", "kubelet") + ` --config=` + vmPath("etc", "kubelet.yaml") + ` --kubeconfig=` + vmPath("etc", "kubelet.kubeconfig") +
			` --hostname-override=` + VMNodeName + ` --node-ip=` + VMIP + ` --node-labels=` + NodeLabel + `=` + string(V2) + ` --v=1
Restart=always
RestartSec=2
`,
		"kube-proxy.service": `[Unit]
Description=kube-proxy (oomsight VM node)
After=network.target

[Service]
Environment=` + path + `
ExecStart=` + vmPath("bin", "kube-proxy") + ` --config=` + vmPath("etc", "kube-proxy.yaml") + `
Restart=always
RestartSec=2
`,
	}
}

// vmSetupScript runs once at boot (oomsight-node.service of the image):
// the VM's address and routes (to the host's pods and Services through
// the host, nothing else), forwarding and bridge netfilter for kube-proxy,
// the CNI config, then containerd, the kubelet and kube-proxy, and the
// images, all at once (under emulation the two large ones take about a
// minute each, and the kubelet's start as long: the Node's Ready does not
// wait for them, Up waits for both). Each step echoes its name and the seconds since boot, which the console
// shows: a VM that does not become Ready names the last step reached.
func vmSetupScript() string {
	hostLink := VMHostIP
	return `#!/bin/sh
set -eu
step() { echo "oomsight-node: $1 at $(cut -d' ' -f1 /proc/uptime) s"; }
step network
modprobe -a overlay br_netfilter bridge veth
sysctl -q -w net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
ip link set lo up
ip link set eth0 up
ip addr add ` + VMIP + fmt.Sprintf("/%d", VMLinkBits) + ` dev eth0
ip route add ` + PodCIDR + ` via ` + hostLink + `
ip route add ` + ServiceCIDR + ` via ` + hostLink + `
mkdir -p /etc/cni/net.d /var/lib/kubelet /var/log/pods
cp ` + vmPath("etc", "10-oomsight.conflist") + ` /etc/cni/net.d/
cp ` + vmPath("units") + `/*.service /run/systemd/system/
chmod 644 /run/systemd/system/*.service
systemctl daemon-reload
step containerd
systemctl start containerd.service
step kubelet
systemctl start kubelet.service kube-proxy.service
step images
pids=""
for t in ` + vmPath("images") + `/*.tar; do
  ` + vmPath("bin", "ctr") + ` --address ` + vmContainerdSocket + ` --namespace k8s.io images import "$t" >/dev/null &
  pids="$pids $!"
done
for p in $pids; do wait "$p"; done
step done
`
}
