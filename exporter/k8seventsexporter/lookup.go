// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package k8seventsexporter // import "github.com/oomsight/oomsight/exporter/k8seventsexporter"

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
)

// lookup fills in the pod's name and namespace (and the container's name,
// when the record has its id but not its name) of a kill whose record
// names the pod by uid only (kill.lookup), from the pods of the record's
// node: one list request per such record, filtered by the API server to
// that node, as k8s_attributes' own watch is. It returns a drop reason
// when the pod cannot be named (no node on the record, or no pod of that
// uid on it: deleted meanwhile), and an error when the API server did not
// answer (the record is retried).
func (e *eventsExporter) lookup(ctx context.Context, k *kill) (string, error) {
	if k.node == "" || e.pods == nil {
		return dropNoPod, nil
	}
	list, err := e.pods.Pods("").List(ctx, metav1.ListOptions{
		FieldSelector:   fields.OneTermEqualSelector("spec.nodeName", k.node).String(),
		ResourceVersion: "0", // the API server's cache: no read from etcd
	})
	if err != nil {
		return "", fmt.Errorf("listing the pods of node %s for pod %s: %w", k.node, k.podUID, err)
	}
	ns, name, container, ok := podNames(list.Items, k.node, k.podUID, k.containerID)
	if !ok {
		return dropNoPod, nil
	}
	k.namespace, k.podName = ns, name
	if k.container == "" {
		k.container = container
	}
	k.lookup = false
	return "", nil
}

// podNames finds the pod of uid on node among pods (the API server
// filtered them by node already; checked again): its namespace and name,
// and the name of the container whose id (containerID, as the receiver
// reads it from the cgroup path: without the runtime's prefix) is its
// current or its last terminated instance ("" when no status has it).
func podNames(pods []corev1.Pod, node string, uid types.UID, containerID string) (namespace, name, container string, ok bool) {
	for i := range pods {
		p := &pods[i]
		if p.UID != uid || p.Spec.NodeName != node {
			continue
		}
		return p.Namespace, p.Name, containerNamed(p, containerID), true
	}
	return "", "", "", false
}

// containerNamed is the name of the pod's container (of any kind) whose
// current or last terminated instance has id containerID.
func containerNamed(p *corev1.Pod, containerID string) string {
	if containerID == "" {
		return ""
	}
	for _, statuses := range [][]corev1.ContainerStatus{p.Status.ContainerStatuses, p.Status.InitContainerStatuses, p.Status.EphemeralContainerStatuses} {
		for i := range statuses {
			cs := &statuses[i]
			last := ""
			if t := cs.LastTerminationState.Terminated; t != nil {
				last = t.ContainerID
			}
			if sameContainer(cs.ContainerID, containerID) || sameContainer(last, containerID) {
				return cs.Name
			}
		}
	}
	return ""
}

// sameContainer tells whether a status's container id (runtime://id)
// names id.
func sameContainer(status, id string) bool {
	_, bare, found := strings.Cut(status, "://")
	return found && bare == id
}
