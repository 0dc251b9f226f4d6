// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package k8seventsexporter

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter/exportertest"

	"github.com/oomsight/oomsight/exporter/k8seventsexporter/internal/metadata"
)

// TestFactoryAnswersToItsOldType: the type is k8s_oom_events, and for one
// release the factory also creates the exporter for a component ID of the
// deprecated type k8s_events (the collector registers it under both and
// logs the deprecation, see internal/testing/e2e's
// TestDeprecatedExporterTypeStillRuns); any other type is refused.
func TestFactoryAnswersToItsOldType(t *testing.T) {
	f := NewFactory()
	assert.Equal(t, "k8s_oom_events", f.Type().String())
	assert.Equal(t, metadata.Type, f.Type())
	holder, ok := f.(interface{ DeprecatedAlias() component.Type })
	require.True(t, ok, "the factory carries no deprecated alias")
	assert.Equal(t, "k8s_events", holder.DeprecatedAlias().String())

	cfg := f.CreateDefaultConfig().(*Config)
	cfg.AuthType = AuthKubeConfig
	cfg.KubeConfigPath = "testdata/kubeconfig"
	for _, tc := range []struct {
		id      component.ID
		wantErr string
	}{
		{component.NewID(metadata.Type), ""},
		{component.NewIDWithName(component.MustNewType("k8s_events"), "agent"), ""},
		{component.NewID(component.MustNewType("k8s_objects")), `or deprecated alias type "k8s_events"`},
	} {
		t.Run(tc.id.String(), func(t *testing.T) {
			set := exportertest.NewNopSettings(tc.id.Type())
			set.ID = tc.id
			e, err := f.CreateLogs(t.Context(), set, cfg)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.NoError(t, e.Shutdown(t.Context()))
		})
	}
}
