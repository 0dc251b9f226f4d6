// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package k8seventsexporter

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/plog"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"
)

// The captured v1 container-limit kill: its pod's uid and container id,
// as the receiver reads them from the cgroup path.
const (
	capturedUID = "0f5eb28f-6722-4cf5-ab0f-b62748c018d4"
	capturedID  = "0dc1822caf9e150de25daa1cf572418426ce6b72757b5efdff52acef348368a3"
)

// pod is a pod on node with one container, eater, whose last instance
// (terminated) is lastID and whose current one is currentID.
func pod(uid types.UID, node, lastID, currentID string) *corev1.Pod {
	cs := corev1.ContainerStatus{Name: "eater", ContainerID: currentID}
	if lastID != "" {
		cs.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ContainerID: lastID, Reason: "OOMKilled", ExitCode: 137}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: eater.pod, Namespace: eater.namespace, UID: uid},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "eater"}, {Name: "sidecar"}}},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{
			{Name: "sidecar", ContainerID: "containerd://5c19f1d424f812dfda054ccb5be3977d2fbc6ba7c33251b8c0ba988c74a6b285"},
			cs,
		}},
	}
}

func TestPodNames(t *testing.T) {
	restarted := *pod(capturedUID, "node-a", "containerd://"+capturedID, "containerd://"+"6e0e0b3db83b"+capturedID[12:])
	running := *pod(capturedUID, "node-a", "", "cri-o://"+capturedID)
	other := *pod("9b3a27c6-24e9-450b-af99-217c8f74ba71", "node-a", "", "containerd://"+capturedID)
	init := running
	init.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "migrate", ContainerID: "containerd://" + capturedID}}
	init.Status.ContainerStatuses = nil
	for name, tt := range map[string]struct {
		pods          []corev1.Pod
		containerID   string
		container     string
		found         bool
		wantNamespace string
	}{
		"the killed instance is the last terminated one": {[]corev1.Pod{other, restarted}, capturedID, "eater", true, eater.namespace},
		"the killed instance still current (cri-o)":      {[]corev1.Pod{running}, capturedID, "eater", true, eater.namespace},
		"an init container":                              {[]corev1.Pod{init}, capturedID, "migrate", true, eater.namespace},
		"no container id on the record: the pod only":    {[]corev1.Pod{restarted}, "", "", true, eater.namespace},
		"an id no status has: the pod only":              {[]corev1.Pod{restarted}, "0000", "", true, eater.namespace},
		"a prefix of an id is not the id":                {[]corev1.Pod{restarted}, capturedID[:12], "", true, eater.namespace},
		"no pod of that uid (deleted meanwhile)":         {[]corev1.Pod{other}, capturedID, "", false, ""},
		"no pod at all":                                  {nil, capturedID, "", false, ""},
		"that uid on another node":                       {[]corev1.Pod{*pod(capturedUID, "node-b", "", "containerd://"+capturedID)}, capturedID, "", false, ""},
	} {
		t.Run(name, func(t *testing.T) {
			ns, podName, container, ok := podNames(tt.pods, "node-a", capturedUID, tt.containerID)
			assert.Equal(t, tt.found, ok)
			assert.Equal(t, tt.wantNamespace, ns)
			if tt.found {
				assert.Equal(t, eater.pod, podName)
			}
			assert.Equal(t, tt.container, container)
		})
	}
}

// TestLookupNamesThePod: a record with the pod's uid but no names (the
// pod unknown to k8s_attributes when it was killed) gets its Event on
// the pod, found among the pods of the record's node, with the container
// of the killed instance; the list asks the API server for that node's
// pods only.
func TestLookupNamesThePod(t *testing.T) {
	h := newHarness(t)
	require.NoError(t, h.cs.Tracker().Add(pod(capturedUID, "node-a", "containerd://"+capturedID, "containerd://"+"6e0e0b3db83b"+capturedID[12:])))
	var selectors []string
	h.cs.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		selectors = append(selectors, a.(k8stesting.ListAction).GetListRestrictions().Fields.String())
		return false, nil, nil
	})
	ld := h.kill(killAt)
	res := ld.ResourceLogs().At(0).Resource().Attributes()
	for _, k := range []string{podNameKey, namespaceKey, containerKey} {
		res.Remove(k)
	}
	require.NoError(t, h.e.pushLogs(t.Context(), ld))
	evs := h.events()
	require.Len(t, evs, 1)
	assert.Equal(t, corev1.ObjectReference{
		Kind: "Pod", APIVersion: "v1", Namespace: eater.namespace, Name: eater.pod,
		UID: capturedUID, FieldPath: "spec.containers{eater}",
	}, evs[0].Regarding)
	assert.Equal(t, []string{"spec.nodeName=node-a"}, selectors)
	h.counters(1, 0, nil)

	// The next kill of the same container, with its names this time,
	// counts in the same Event.
	require.NoError(t, h.e.pushLogs(t.Context(), h.kill(killAt.Add(time.Minute))))
	evs = h.events()
	require.Len(t, evs, 1)
	require.NotNil(t, evs[0].Series)
	assert.Equal(t, int32(2), evs[0].Series.Count)
}

// TestLookupFailures: no pod of that uid on the node (deleted, or on
// another node), and no node on the record, drop the record as no_pod;
// the API server not answering returns it for a retry; a refused list
// (no RBAC) drops it, logged.
func TestLookupFailures(t *testing.T) {
	noNames := func(h *harness, node bool) plog.Logs {
		ld := h.kill(killAt)
		res := ld.ResourceLogs().At(0).Resource().Attributes()
		res.Remove(podNameKey)
		if !node {
			res.Remove(nodeNameKey)
		}
		return ld
	}
	t.Run("on another node", func(t *testing.T) {
		h := newHarness(t)
		require.NoError(t, h.cs.Tracker().Add(pod(capturedUID, "node-b", "", "containerd://"+capturedID)))
		require.NoError(t, h.e.pushLogs(t.Context(), noNames(h, true)))
		assert.Empty(t, h.events())
		h.counters(0, 0, map[string]int64{dropNoPod: 1})
	})
	t.Run("no node on the record", func(t *testing.T) {
		h := newHarness(t)
		require.NoError(t, h.cs.Tracker().Add(pod(capturedUID, "node-a", "", "containerd://"+capturedID)))
		require.NoError(t, h.e.pushLogs(t.Context(), noNames(h, false)))
		assert.Empty(t, h.events())
		h.counters(0, 0, map[string]int64{dropNoPod: 1})
	})
	t.Run("API server unavailable: retried", func(t *testing.T) {
		h := newHarness(t)
		h.cs.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewServiceUnavailable("restarting")
		})
		ld := noNames(h, true)
		err := h.e.pushLogs(t.Context(), ld)
		require.Error(t, err)
		assert.False(t, consumererror.IsPermanent(err))
		var logsErr consumererror.Logs
		require.ErrorAs(t, err, &logsErr)
		assert.Equal(t, 1, logsErr.Data().LogRecordCount(), "the record comes back for the retry")
		assert.Empty(t, h.events())
	})
	t.Run("list refused: dropped", func(t *testing.T) {
		h := newHarness(t)
		h.cs.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New("rbac"))
		})
		require.NoError(t, h.e.pushLogs(t.Context(), noNames(h, true)))
		assert.Empty(t, h.events())
		h.counters(0, 0, map[string]int64{dropNoPod: 1})
	})
}
