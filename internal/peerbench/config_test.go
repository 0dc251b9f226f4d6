// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package peerbench

import (
	"maps"
	"os"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

var params = Params{
	Parent:    "/oomsight-peers-1",
	Listen:    "127.0.0.1:9100",
	OTLP:      "127.0.0.1:4317",
	Health:    "127.0.0.1:13133",
	Telemetry: "127.0.0.1:8888",
	Dir:       "/tmp/run",
}

// receiverMetrics reads the receiver's metadata.yaml: every metric name
// and the ones enabled by default.
func receiverMetrics(t *testing.T) (all map[string]bool, defaults []string) {
	t.Helper()
	b, err := os.ReadFile("../../receiver/cgroupmemoryreceiver/metadata.yaml")
	require.NoError(t, err)
	var md struct {
		Metrics map[string]struct {
			Enabled bool `yaml:"enabled"`
		} `yaml:"metrics"`
	}
	require.NoError(t, yaml.Unmarshal(b, &md))
	all = map[string]bool{}
	for name, m := range md.Metrics {
		all[name] = true
		if m.Enabled {
			defaults = append(defaults, name)
		}
	}
	sort.Strings(defaults)
	return all, defaults
}

func TestMetricListsMatchTheReceiver(t *testing.T) {
	all, defaults := receiverMetrics(t)
	assert.Equal(t, defaults, slices.Sorted(slices.Values(DefaultMetrics)), "DefaultMetrics drifted from metadata.yaml")
	for prom, m := range CadvisorMetrics {
		assert.True(t, all[m], "%s maps to %s, which the receiver does not have", prom, m)
	}
}

func TestEqualConfig(t *testing.T) {
	var cfg struct {
		Receivers struct {
			Cgroupmemory struct {
				Collection string   `yaml:"collection_interval"`
				Sampling   string   `yaml:"sampling_interval"`
				Include    []string `yaml:"include"`
				OOM        struct{ Enabled bool }
				Processes  struct{ Enabled bool }
				Metrics    map[string]struct{ Enabled bool }
			}
		}
		Exporters struct {
			Prometheus struct {
				Endpoint   string
				Conversion struct{ Enabled bool } `yaml:"resource_to_telemetry_conversion"`
			}
		}
		Service struct {
			Pipelines struct {
				Metrics struct{ Exporters []string }
			}
		}
	}
	require.NoError(t, yaml.Unmarshal([]byte(EqualConfig(params, false)), &cfg))
	assert.Equal(t, []string{"prometheus"}, cfg.Service.Pipelines.Metrics.Exporters)
	assert.True(t, cfg.Exporters.Prometheus.Conversion.Enabled, "one series per cgroup, labeled by its path")
	r := cfg.Receivers.Cgroupmemory
	assert.Equal(t, "1s", r.Collection)
	assert.Equal(t, "0s", r.Sampling)
	assert.Equal(t, []string{"/oomsight-peers-1/*"}, r.Include)
	assert.False(t, r.OOM.Enabled)
	assert.False(t, r.Processes.Enabled)
	assert.Equal(t, params.Listen, cfg.Exporters.Prometheus.Endpoint)

	var on, off []string
	for name, m := range r.Metrics {
		if m.Enabled {
			on = append(on, name)
		} else {
			off = append(off, name)
		}
	}
	want := map[string]bool{}
	for _, m := range CadvisorMetrics {
		want[m] = true
	}
	assert.ElementsMatch(t, slices.Collect(maps.Keys(want)), on)
	for _, m := range off {
		assert.Contains(t, DefaultMetrics, m, "only default metrics need turning off")
		assert.False(t, want[m])
	}
	assert.Contains(t, off, "cgroup.memory.peak")
	assert.Contains(t, off, "cgroup.memory.oom.eta")

	var viaOTLP struct {
		Receivers map[string]any
		Exporters struct {
			OTLP struct {
				Endpoint string
				TLS      struct{ Insecure bool }
			} `yaml:"otlp_grpc"`
		}
		Service struct {
			Pipelines struct {
				Metrics struct{ Exporters []string }
			}
		}
	}
	require.NoError(t, yaml.Unmarshal([]byte(EqualConfig(params, true)), &viaOTLP))
	assert.Equal(t, params.OTLP, viaOTLP.Exporters.OTLP.Endpoint)
	assert.True(t, viaOTLP.Exporters.OTLP.TLS.Insecure)
	assert.Equal(t, []string{"otlp_grpc"}, viaOTLP.Service.Pipelines.Metrics.Exporters)
	var sameReceiver struct{ Receivers map[string]any }
	require.NoError(t, yaml.Unmarshal([]byte(EqualConfig(params, false)), &sameReceiver))
	assert.Equal(t, sameReceiver.Receivers, viaOTLP.Receivers, "the same reads either way")
}

func TestCadvisorArgs(t *testing.T) {
	assert.Equal(t, []string{
		"--listen=127.0.0.1:9100",
		"--enable_metrics=memory",
		"--housekeeping_interval=1s",
		"--allow_dynamic_housekeeping=false",
		"--raw_cgroup_prefix_whitelist=/oomsight-peers-1/",
	}, CadvisorArgs(params, time.Second))
}

type otlpExporter struct {
	Endpoint string
	TLS      struct{ Insecure bool }
}

// shipped is the configuration ShippedConfig makes of the real agent.yaml.
type shipped struct {
	Extensions struct {
		HealthCheck struct{ Endpoint string }  `yaml:"health_check"`
		FileStorage struct{ Directory string } `yaml:"file_storage"`
	}
	Receivers struct {
		Cgroupmemory map[string]any
	}
	Processors map[string]any
	Exporters  struct {
		OTLP      otlpExporter `yaml:"otlp_grpc"`
		Records   otlpExporter `yaml:"otlp_grpc/records"`
		K8sEvents struct {
			AuthType string `yaml:"auth_type"`
			Path     string `yaml:"kube_config_path"`
		} `yaml:"k8s_oom_events"`
	}
	Service struct {
		Pipelines map[string]struct {
			Receivers, Processors, Exporters []string
		}
		Telemetry map[string]any
	}
}

func shippedConfig(t *testing.T, collection time.Duration, off string) shipped {
	t.Helper()
	agent, err := os.ReadFile("../../deploy/kubernetes/agent.yaml")
	require.NoError(t, err)
	b, err := ShippedConfig(agent, params, collection, off)
	require.NoError(t, err)
	var s shipped
	require.NoError(t, yaml.Unmarshal(b, &s))
	return s
}

func TestShippedConfig(t *testing.T) {
	s := shippedConfig(t, time.Second, "")
	r := s.Receivers.Cgroupmemory
	assert.Equal(t, "1s", r["collection_interval"])
	assert.Equal(t, "100ms", r["sampling_interval"], "the shipped fast pass stays")
	assert.Equal(t, "/sys/fs/cgroup", r["root_path"])
	assert.Equal(t, []any{"/oomsight-peers-1/*"}, r["include"])
	assert.Equal(t, "/tmp/run/oom.checkpoint", r["oom"].(map[string]any)["checkpoint_file"])
	assert.Equal(t, "redacted", r["processes"].(map[string]any)["command_line"])
	assert.Equal(t, "127.0.0.1:13133", s.Extensions.HealthCheck.Endpoint)
	assert.Equal(t, "/tmp/run/queue", s.Extensions.FileStorage.Directory)
	assert.NotContains(t, s.Processors, "k8s_attributes")
	assert.Contains(t, s.Processors, "memory_limiter")
	assert.Equal(t, "127.0.0.1:4317", s.Exporters.OTLP.Endpoint)
	assert.True(t, s.Exporters.OTLP.TLS.Insecure)
	assert.Equal(t, "127.0.0.1:4317", s.Exporters.Records.Endpoint, "every otlp_grpc exporter goes to the driver")
	assert.True(t, s.Exporters.Records.TLS.Insecure)
	assert.Equal(t, "kubeConfig", s.Exporters.K8sEvents.AuthType)
	assert.Equal(t, "/tmp/run/kubeconfig", s.Exporters.K8sEvents.Path)
	require.Contains(t, s.Service.Pipelines, "logs")
	for name, p := range s.Service.Pipelines {
		assert.Equal(t, []string{"memory_limiter", "resource", "batch"}, p.Processors, name)
	}
	assert.Equal(t, []string{"otlp_grpc/records", "k8s_oom_events"}, s.Service.Pipelines["logs"].Exporters)
	assert.Contains(t, s.Service.Telemetry, "metrics")

	asShipped := shippedConfig(t, 0, "")
	assert.Equal(t, "10s", asShipped.Receivers.Cgroupmemory["collection_interval"], "0 keeps the shipped interval")
}

// TestShippedEnv: the benchmark runs the Go runtime with the DaemonSet's
// settings, and nothing of its environment that needs the pod.
func TestShippedEnv(t *testing.T) {
	agent, err := os.ReadFile("../../deploy/kubernetes/agent.yaml")
	require.NoError(t, err)
	env, err := ShippedEnv(agent)
	require.NoError(t, err)
	assert.Equal(t, []string{"K8S_NODE_NAME=bench-peers", "POD_IP=127.0.0.1", "GOMEMLIMIT=160MiB", "GOGC=50"}, env)

	_, err = ShippedEnv([]byte("kind: ConfigMap\nmetadata: {name: oomsight-agent}\n"))
	require.ErrorContains(t, err, "no DaemonSet oomsight-agent")
}

func TestShippedConfigFeaturesOff(t *testing.T) {
	for _, tc := range []struct {
		feature string
		check   func(t *testing.T, s shipped)
	}{
		{"fast_pass", func(t *testing.T, s shipped) { assert.Equal(t, "0s", s.Receivers.Cgroupmemory["sampling_interval"]) }},
		{"metrics_oom_eta", func(t *testing.T, s shipped) {
			m := s.Receivers.Cgroupmemory["metrics"].(map[string]any)
			assert.Equal(t, map[string]any{"cgroup.memory.oom.eta": map[string]any{"enabled": false}}, m)
		}},
		{"metrics_memory_stat", func(t *testing.T, s shipped) {
			assert.Len(t, s.Receivers.Cgroupmemory["metrics"], 7)
		}},
		{"metrics_semconv", func(t *testing.T, s shipped) {
			assert.Len(t, s.Receivers.Cgroupmemory["metrics"], 8)
		}},
		{"process_snapshots", func(t *testing.T, s shipped) {
			p := s.Receivers.Cgroupmemory["processes"].(map[string]any)
			assert.Equal(t, false, p["enabled"])
			assert.Equal(t, "redacted", p["command_line"])
		}},
		{"kernel_log_reader", func(t *testing.T, s shipped) {
			assert.Equal(t, map[string]any{"kmsg_path": ""}, s.Receivers.Cgroupmemory["oom"])
		}},
		{"oom_records_and_k8s_oom_events", func(t *testing.T, s shipped) {
			assert.NotContains(t, s.Service.Pipelines, "logs")
			assert.Contains(t, s.Service.Pipelines, "metrics")
		}},
	} {
		t.Run(tc.feature, func(t *testing.T) { tc.check(t, shippedConfig(t, time.Second, tc.feature)) })
	}
	// Every feature changes the configuration, and only its own part.
	agent, err := os.ReadFile("../../deploy/kubernetes/agent.yaml")
	require.NoError(t, err)
	base, err := ShippedConfig(agent, params, time.Second, "")
	require.NoError(t, err)
	for _, name := range FeatureNames() {
		b, ferr := ShippedConfig(agent, params, time.Second, name)
		require.NoError(t, ferr)
		assert.NotEqual(t, string(base), string(b), name)
	}
	_, err = ShippedConfig(agent, params, time.Second, "flight_recorder")
	assert.ErrorContains(t, err, "want one of fast_pass")
}

// TestFeaturesCoverDefaultMetrics: every metric the receiver enables by
// default (its metadata.yaml) is turned off by exactly one feature, so
// that the table of prices in docs/performance.md misses none; but
// cgroup.memory.usage, the one every setup keeps.
func TestFeaturesCoverDefaultMetrics(t *testing.T) {
	raw, err := os.ReadFile("../../receiver/cgroupmemoryreceiver/metadata.yaml")
	require.NoError(t, err)
	var md struct {
		Metrics map[string]struct{ Enabled bool }
	}
	require.NoError(t, yaml.Unmarshal(raw, &md))
	var enabled []string
	for name, m := range md.Metrics {
		if m.Enabled && name != "cgroup.memory.usage" {
			enabled = append(enabled, name)
		}
	}
	require.NotEmpty(t, enabled)
	owner := map[string]string{}
	for _, f := range Features {
		recv := map[string]any{}
		f.Off(recv, map[string]any{})
		metrics, _ := recv["metrics"].(map[string]any)
		for name := range metrics {
			assert.Empty(t, owner[name], "%s is turned off by both %s and %s", name, owner[name], f.Name)
			owner[name] = f.Name
		}
	}
	sort.Strings(enabled)
	assert.Equal(t, enabled, slices.Sorted(maps.Keys(owner)), "the default metrics and those a feature turns off")
}

func TestShippedConfigBadManifests(t *testing.T) {
	_, err := ShippedConfig([]byte("kind: Namespace\nmetadata:\n  name: oomsight\n"), params, 0, "")
	assert.ErrorContains(t, err, "no ConfigMap oomsight-agent")
	_, err = ShippedConfig([]byte("kind: ConfigMap\nmetadata:\n  name: oomsight-agent\ndata:\n  config.yaml: |\n    receivers: {}\n"), params, 0, "")
	assert.ErrorContains(t, err, "no cgroupmemory receiver")
	_, err = ShippedConfig([]byte("kind: ConfigMap\nmetadata:\n  name: oomsight-agent\ndata:\n  config.yaml: |\n    receivers:\n      cgroupmemory: {collection_interval: 1s}\n"), params, 0, "")
	assert.ErrorContains(t, err, "no k8s_attributes")
	_, err = ShippedConfig([]byte("kind: ConfigMap\nmetadata:\n  name: oomsight-agent\ndata:\n  config.yaml: |\n    receivers:\n      cgroupmemory: {collection_interval: 1s}\n    processors:\n      k8s_attributes: {}\n    exporters:\n      debug: {}\n"), params, 0, "")
	assert.ErrorContains(t, err, "no otlp_grpc exporter")
	_, err = ShippedConfig([]byte("\t:"), params, 0, "")
	assert.ErrorContains(t, err, "reading the manifests")
}
