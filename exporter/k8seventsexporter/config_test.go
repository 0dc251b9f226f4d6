// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package k8seventsexporter

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/oomsight/oomsight/exporter/k8seventsexporter/internal/metadata"
)

func loadConfig(t *testing.T, name string) (*Config, error) {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
	require.NoError(t, err)
	require.NoError(t, sub.Unmarshal(cfg))
	return cfg, confmap.Validate(cfg)
}

func TestConfig(t *testing.T) {
	cfg, err := loadConfig(t, "")
	require.NoError(t, err)
	assert.Equal(t, createDefaultConfig(), cfg)
	assert.Equal(t, AuthServiceAccount, cfg.AuthType)
	assert.True(t, cfg.QueueConfig.HasValue(), "a queue by default: a slow API server holds up no other exporter")

	cfg, err = loadConfig(t, "custom")
	require.NoError(t, err)
	assert.Equal(t, AuthKubeConfig, cfg.AuthType)
	assert.Equal(t, "testdata/kubeconfig", cfg.KubeConfigPath)
	assert.Equal(t, "unreachable", cfg.Context)
	assert.InDelta(t, 2, cfg.QPS, 0)
	assert.Equal(t, 4, cfg.Burst)
	assert.Equal(t, "example.com/oom-events", cfg.ReportingController)
	assert.Equal(t, "node-7", cfg.ReportingInstance)
	assert.Equal(t, 100, cfg.CacheSize)
	assert.True(t, cfg.IncludeCommandLine)
	assert.Equal(t, 10*time.Minute, cfg.RetryConfig.MaxElapsedTime)
	assert.EqualValues(t, 50, cfg.QueueConfig.Get().QueueSize)
	rc, err := restConfig(cfg)
	require.NoError(t, err)
	assert.Equal(t, "https://127.0.0.1:1", rc.Host)

	for name, want := range map[string][]string{
		"bad_auth":                {`auth_type "token"`, "serviceAccount", "kubeConfig"},
		"bad_controller":          {`reporting_controller "not a name" is not a qualified name`},
		"bad_limits":              {"qps 0", "burst 0", "cache_size 0"},
		"path_without_kubeconfig": {"kube_config_path and context apply to auth_type \"kubeConfig\" only"},
	} {
		_, err := loadConfig(t, name)
		require.Error(t, err, name)
		for _, w := range want {
			assert.Contains(t, err.Error(), w, name)
		}
	}
}

// Outside a pod the default auth fails at start with the fix.
func TestServiceAccountOutsideAPod(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	_, err := restConfig(createDefaultConfig().(*Config))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "set auth_type: kubeConfig")
}
