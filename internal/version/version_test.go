// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package version

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
)

// TestVersionIsBuilderConfigs fails when Version drifts from dist.version in
// builder-config.yaml (edited without `make generate`), so that the CLI
// never prints another number than the distribution it ships with.
func TestVersionIsBuilderConfigs(t *testing.T) {
	b, err := os.ReadFile("../../builder-config.yaml")
	require.NoError(t, err)
	r, err := confmap.NewRetrievedFromYAML(b)
	require.NoError(t, err)
	conf, err := r.AsConf()
	require.NoError(t, err)
	dist, ok := conf.Get("dist::version").(string)
	require.True(t, ok, "builder-config.yaml: dist.version must be a string, got %#v", conf.Get("dist::version"))
	generated := Version // a variable, so that testifylint takes dist for the expected value
	require.Equal(t, dist, generated, "internal/version is stale: run make generate")
}
