// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oomrecord

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRecordAttributionIgnoresNestedPods: a real kill whose task_memcg is
// made deeper, as a workload allowed to make cgroups inside its own would
// (a nested node naming another pod), is still the kubelet pod's and
// container's on the record: the record's identity is internal/identity's.
func TestRecordAttributionIgnoresNestedPods(t *testing.T) {
	b, err := os.ReadFile("../../testdata/v2/oom/pod-limit.kmsg")
	require.NoError(t, err)
	const scope = "cri-containerd-2260b35b008a15bd118e629c0c5d74e7f3a1fe18c724fbac61a54862fea196dc.scope,task=memhog"
	require.Contains(t, string(b), scope)
	nested := strings.Replace(string(b), scope,
		"cri-containerd-2260b35b008a15bd118e629c0c5d74e7f3a1fe18c724fbac61a54862fea196dc.scope/kubepods/burstable/pod7c1d3e5f-0a2b-4c6d-8e9f-a0b1c2d3e4f5/9f02d9fa0049eb2655fc83c765f142362b2cb403b57b70ba3185071015ca3b64,task=memhog", 1)
	reps := readString(t, nested)
	require.Len(t, reps, 1)
	out, err := JSON(reps[0], Options{})
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(out, &m))
	assert.Contains(t, m["linux.oom.task_memcg"], "/kubepods/burstable/pod7c1d3e5f", "the record keeps the path as the kernel printed it")
	assert.Equal(t, "dfc377c9-c533-4d51-af9e-6e0e0b3db83b", m["k8s.pod.uid"])
	assert.Equal(t, "Burstable", m["k8s.pod.qos_class"])
	assert.Equal(t, "2260b35b008a15bd118e629c0c5d74e7f3a1fe18c724fbac61a54862fea196dc", m["container.id"])
	assert.Equal(t, "containerd", m["container.runtime.name"])
}
