// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package deploy

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml" //nolint:depguard // decodes manifests into k8s.io/api types through their json tags, which go.yaml.in/yaml ignores
)

// maxBatchPoints bounds the data points of one OTLP message the shipped
// collectors send: an OTLP/gRPC receiver refuses a message over 4 MiB
// (after decompression) by default, and a data point of this receiver,
// resource and names included, takes about 400 bytes (docs/semconv.md,
// Cost: 29 619 bytes for 75 points of the captured tree), so 4096 points
// is about 1.6 MB. Unsplit, one collection of a node with some 700
// cgroups went over it and every export was refused.
const maxBatchPoints = 4096

// TestBatchesFitOTLPMessages: every batch processor of the agents' and the
// gateway's collector configs splits what it sends at maxBatchPoints.
func TestBatchesFitOTLPMessages(t *testing.T) {
	n := 0
	for _, m := range manifests(t) {
		cm, ok := m.obj.(*corev1.ConfigMap)
		if !ok || cm.Name != "oomsight-agent" && cm.Name != "oomsight-gateway" {
			continue
		}
		var cfg struct {
			Processors map[string]struct {
				SendBatchSize    int `json:"send_batch_size"`
				SendBatchMaxSize int `json:"send_batch_max_size"`
			} `json:"processors"`
		}
		require.NoError(t, yaml.Unmarshal([]byte(cm.Data["config.yaml"]), &cfg), m.file)
		b, ok := cfg.Processors["batch"]
		require.True(t, ok, "%s: no batch processor", m.file)
		n++
		assert.Positive(t, b.SendBatchMaxSize, "%s: batch without send_batch_max_size sends a whole collection as one message", m.file)
		assert.LessOrEqual(t, b.SendBatchMaxSize, maxBatchPoints, m.file)
		assert.LessOrEqual(t, b.SendBatchSize, b.SendBatchMaxSize, "%s: send_batch_size above the max", m.file)
	}
	assert.Equal(t, 3, n, "the default and the restricted agent, the gateway")
}
