// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package e2ek8s

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/oomsight/oomsight/deploy/kubecluster"
	"github.com/oomsight/oomsight/internal/cgroupfs"
)

// node is one node of the cluster as the proofs see it: where their
// workloads run (a namespace of the node's own, a nodeSelector), how its
// kubelet names their cgroups (cgroupfs on the host's v1, systemd slices
// and scopes on the VM's v2), how its files are read (the host's directly,
// the VM's through its guest agent), and what the proofs learnt there.
type node struct {
	kubecluster.Node
	c  *kubecluster.Cluster
	ns string // the workloads' namespace

	pod      corev1.Pod // the eater's pod as first seen Running
	firstID  string     // the eater's first container id
	secondID string     // its id after the first kill
}

// newNode: the host's workloads keep the namespace they always had, the
// VM's get one of their own, so that a proof's kubectl get and Events
// never mix the two.
func newNode(c *kubecluster.Cluster, n kubecluster.Node) *node {
	ns := workloadNS
	if n.Generation != kubecluster.V1 {
		ns = workloadNS + "-" + string(n.Generation)
	}
	return &node{Node: n, c: c, ns: ns}
}

// tag is the node's mark in a proof's line.
func (n *node) tag() string { return "node=" + string(n.Generation) }

// v2 tells whether the node runs cgroup v2 (the VM).
func (n *node) v2() bool { return n.Generation == kubecluster.V2 }

// killReason checks the kubelet's last termination of a container the
// kernel OOM-killed and returns it for a proof's line. OOMKilled passes on
// every node. On the VM's node (systemd cgroup driver, containerd 2) Error
// with exit code 137 passes too: containerd can lose or reorder the OOM
// event of a container whose scope systemd removes as it dies (seen here
// after an API server outage; containerd#8893, containerd#12714 skips
// cri-tools' OOMKilled test for the systemd driver), so the kubelet there
// shows a plain SIGKILL. That is the gap oomsight's record fills, and the
// line says which the kubelet gave.
func (n *node) killReason(term *corev1.ContainerStateTerminated) (string, error) {
	switch {
	case term.Reason == "OOMKilled":
		return term.Reason, nil
	case n.v2() && term.ExitCode == 137:
		return fmt.Sprintf("%s, exit code %d (containerd's OOM event lost, a known race with the systemd driver)", term.Reason, term.ExitCode), nil
	}
	return "", fmt.Errorf("last termination: reason %q, exit code %d; want OOMKilled", term.Reason, term.ExitCode)
}

// manifest puts a workload template on the node: {{ns}} becomes its
// namespace, {{nodeSelector}} the selector of its label.
func (n *node) manifest(tmpl string) string {
	return strings.NewReplacer(
		"{{ns}}", n.ns,
		"{{nodeSelector}}", fmt.Sprintf("{%s: %s}", kubecluster.NodeLabel, n.Generation),
	).Replace(tmpl)
}

// apply writes a workload template for the node and applies it; it returns
// the file (for a later kubectl delete -f).
func (n *node) apply(ctx context.Context, name, tmpl string) (string, error) {
	f := filepath.Join(kubecluster.StateDir, name+"-"+string(n.Generation)+".yaml")
	if err := os.WriteFile(f, []byte(n.manifest(tmpl)), 0o600); err != nil {
		return "", fmt.Errorf("%s manifest: %w", name, err)
	}
	if _, err := n.c.Kubectl(ctx, "apply", "-f", f); err != nil {
		return "", err
	}
	return f, nil
}

// podPath is a Burstable pod's cgroup as the agent names it (relative to
// the memory hierarchy's root): /kubepods/burstable/pod<uid> under
// cgroupfs, kubepods.slice/kubepods-burstable.slice/
// kubepods-burstable-pod<uid with _>.slice under systemd.
func (n *node) podPath(uid string) string { return n.qosPodPath("burstable", uid) }

// qosPodPath is podPath for any QoS class ("burstable", "besteffort",
// "guaranteed").
func (n *node) qosPodPath(qos, uid string) string {
	if !n.v2() {
		if qos == "guaranteed" {
			return "/kubepods/pod" + uid
		}
		return "/kubepods/" + qos + "/pod" + uid
	}
	esc := strings.ReplaceAll(uid, "-", "_")
	if qos == "guaranteed" {
		return "/kubepods.slice/kubepods-pod" + esc + ".slice"
	}
	return "/kubepods.slice/kubepods-" + qos + ".slice/kubepods-" + qos + "-pod" + esc + ".slice"
}

// containerPath is a container's cgroup in a Burstable pod.
func (n *node) containerPath(uid, id string) string {
	return n.qosContainerPath("burstable", uid, id)
}

func (n *node) qosContainerPath(qos, uid, id string) string {
	if !n.v2() {
		return n.qosPodPath(qos, uid) + "/" + id
	}
	return n.qosPodPath(qos, uid) + "/cri-containerd-" + id + ".scope"
}

// hierarchy is the node's memory hierarchy as seen from the node itself.
func (n *node) hierarchy() cgroupfs.Hierarchy {
	if n.v2() {
		return cgroupfs.Hierarchy{Version: cgroupfs.V2, Dir: "/sys/fs/cgroup"}
	}
	return cgroupfs.Hierarchy{Version: cgroupfs.V1, Dir: "/sys/fs/cgroup/memory"}
}

// cgroupFile is a file of a cgroup (podPath, containerPath) on the node.
func (n *node) cgroupFile(path, file string) string {
	return filepath.Join(n.hierarchy().Dir, filepath.FromSlash(path), file)
}

// readFile reads a file on the node: the host's directly, the VM's through
// its guest agent.
func (n *node) readFile(ctx context.Context, path string) ([]byte, error) {
	if !n.v2() {
		return os.ReadFile(path)
	}
	out, err := n.c.VMExec(ctx, "cat "+strconv.Quote(path))
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w", path, n.Name, err)
	}
	return []byte(out), nil
}

// exists tells whether a file or directory is on the node.
func (n *node) exists(ctx context.Context, path string) bool {
	if !n.v2() {
		_, err := os.Stat(path)
		return err == nil
	}
	_, err := n.c.VMExec(ctx, "test -e "+strconv.Quote(path))
	return err == nil
}

// emptyDir is a pod's emptyDir volume on its node (the kubelet's root
// directory is the same on both).
func emptyDir(uid, volume string) string {
	return filepath.Join(kubecluster.KubeletDir, "pods", uid, "volumes", "kubernetes.io~empty-dir", volume)
}

// askKill asks an eater for one more kill through its pod's emptyDir on
// the node (what `workload kill` does inside the pod), so no API call is
// needed.
func (n *node) askKill(ctx context.Context, dir string) error {
	if !n.v2() {
		return askKill(dir)
	}
	f := strconv.Quote(filepath.Join(dir, "kills"))
	if _, err := n.c.VMExec(ctx, "n=$(cat "+f+" 2>/dev/null || echo 0); echo $((n+1)) > "+f); err != nil {
		return fmt.Errorf("the eater's trigger on %s: %w", n.Name, err)
	}
	return nil
}

// agentPod returns the node's one running agent pod.
func (e *env) agentPod(ctx context.Context, n *node) (corev1.Pod, error) {
	var pods corev1.PodList
	if err := e.getJSON(ctx, &pods, "pods", "-n", "oomsight", "-l", "app.kubernetes.io/name=oomsight-agent"); err != nil {
		return corev1.Pod{}, err
	}
	var live []corev1.Pod
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp == nil && p.Spec.NodeName == n.Name {
			live = append(live, *p)
		}
	}
	if len(live) != 1 {
		return corev1.Pod{}, fmt.Errorf("%d agent pods on %s", len(live), n.Name)
	}
	return live[0], nil
}
