// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgroupmemoryreceiver

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"

	"github.com/oomsight/oomsight/internal/peerbench"
)

// TestPeerFloorReadsWhatEqualWorkReads: the floor setup of make
// bench-peers reads the optional files peerbench.EqualOptional names; they
// are the ones this receiver reads for the equal-work setup's metrics
// (peerbench.EqualConfig), so that cAdvisor's CPU over the floor's is the
// ceiling of the equal-work ratio.
func TestPeerFloorReadsWhatEqualWorkReads(t *testing.T) {
	raw, err := confmap.NewRetrievedFromYAML([]byte(peerbench.EqualConfig(peerbench.Params{Parent: "/p", Listen: "127.0.0.1:1", OTLP: "127.0.0.1:2"}, true)))
	require.NoError(t, err)
	all, err := raw.AsConf()
	require.NoError(t, err)
	sub, err := all.Sub("receivers::cgroupmemory")
	require.NoError(t, err)
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, sub.Unmarshal(cfg))
	assert.Equal(t, peerbench.EqualOptional, optionalFiles(cfg))
	assert.NotEqual(t, optionalFiles(createDefaultConfig().(*Config)), optionalFiles(cfg), "the control: the defaults read fewer files")
}
