// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package kubecluster // import "github.com/oomsight/oomsight/deploy/kubecluster"

import "fmt"

// The cluster has up to two nodes, told apart by the label NodeLabel:
//
//	v1  the host itself (NodeName): cgroup v1 (hybrid), the kubelet's
//	    cgroupfs driver, Debian's containerd 1.6
//	v2  a qemu VM (VMNodeName): cgroup v2 unified, systemd as PID 1, the
//	    kubelet's systemd driver, containerd 2 built from its Go module
//
// The control plane (etcd, API server, controller-manager, scheduler) runs
// on the host in every case: an API server inside the emulated VM took 224 s
// to become ready (issue 25).
const (
	// NodeLabel is set by each kubelet (--node-labels) to the node's
	// generation, "v1" or "v2": a pod's nodeSelector picks its node by it.
	NodeLabel = "oomsight.io/e2e-node"

	// VMNodeName is the VM's Node.
	VMNodeName = "oomsight-vm"
	// ClusterCIDR holds every node's pod range: the host's PodCIDR and the
	// VM's VMPodCIDR. Pods route it through their node.
	ClusterCIDR = "10.244.0.0/16"
	// VMPodCIDR is the VM's pod range, VMPodGateway its bridge inside the VM.
	VMPodCIDR    = "10.244.1.0/24"
	VMPodGateway = "10.244.1.1"
	// The link between the host and the VM: the bridge VMBridge with the
	// host at VMHostIP, the VM's tap VMTap on it, the VM at VMIP (its node
	// address: the API server reaches its kubelet there).
	VMBridge   = "oomvm0"
	VMTap      = "oomvm0tap"
	VMHostIP   = "10.245.0.1"
	VMIP       = "10.245.0.2"
	VMLinkBits = 30
)

// Generation is a node's kind, the value of its NodeLabel.
type Generation string

// The two node generations.
const (
	V1 Generation = "v1"
	V2 Generation = "v2"
)

// NodeSet is which nodes `make k8s-up NODES=...` starts.
type NodeSet string

// The accepted NODES values; the empty NodeSet is V1Only (today's
// single-node cluster).
const (
	V1Only NodeSet = "v1"
	V2Only NodeSet = "v2"
	Both   NodeSet = "both"
)

// ParseNodeSet reads NODES; "" is V1Only.
func ParseNodeSet(s string) (NodeSet, error) {
	switch NodeSet(s) {
	case "", V1Only:
		return V1Only, nil
	case V2Only, Both:
		return NodeSet(s), nil
	}
	return "", fmt.Errorf("NODES=%q: want v1, v2 or both", s)
}

// Has tells whether the set includes a generation.
func (s NodeSet) Has(g Generation) bool {
	switch s {
	case Both:
		return true
	case V2Only:
		return g == V2
	}
	return g == V1
}

// Node is one node of the cluster.
type Node struct {
	// Name is the Node's name in the API server.
	Name string
	// Generation is the value of its NodeLabel.
	Generation Generation
	// IP is the node's address (the kubelet's --node-ip).
	IP string
	// PodCIDR is the range its pods' addresses come from.
	PodCIDR string
}

// Nodes lists the nodes of the set, the host's first.
func (s NodeSet) Nodes() []Node {
	var nodes []Node
	if s.Has(V1) {
		nodes = append(nodes, Node{Name: NodeName, Generation: V1, IP: HostIP, PodCIDR: PodCIDR})
	}
	if s.Has(V2) {
		nodes = append(nodes, Node{Name: VMNodeName, Generation: V2, IP: VMIP, PodCIDR: VMPodCIDR})
	}
	return nodes
}

// NodeSelector is the nodeSelector that puts a pod on the node of a
// generation.
func NodeSelector(g Generation) map[string]string {
	return map[string]string{NodeLabel: string(g)}
}

// Nodes lists the cluster's nodes, the host's first.
func (c *Cluster) Nodes() []Node { return c.nodeSet().Nodes() }

func (c *Cluster) nodeSet() NodeSet {
	if c.NodeSet == "" {
		return V1Only
	}
	return c.NodeSet
}

// systemGeneration is where the cluster's own pods (CoreDNS) run: the host
// when it is a node, it starts them in a fraction of the VM's time.
func (s NodeSet) systemGeneration() Generation {
	if s.Has(V1) {
		return V1
	}
	return V2
}

// kubeProxyClusterCIDR is kube-proxy's clusterCIDR: traffic to a Service
// from outside it is masqueraded. With one node it is the node's range as
// before; with the VM, every node's.
func (s NodeSet) kubeProxyClusterCIDR() string {
	if s.Has(V2) {
		return ClusterCIDR
	}
	return PodCIDR
}
