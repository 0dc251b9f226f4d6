// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package peerbench // import "github.com/oomsight/oomsight/internal/peerbench"

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// CadvisorMetrics maps each memory metric cAdvisor exports (its "memory"
// metric kind, on cgroup v1) to the receiver's metric that carries the same
// value: the equal-work setup enables exactly these. cAdvisor's
// container_memory_file_dirty_bytes and _file_writeback_bytes have no
// counterpart (their memory.stat lines are parsed anyway), nor do
// container_last_seen, _start_time_seconds, _creation_time_seconds and
// container_health_state; container_spec_memory_reservation_limit_bytes
// (v1's soft limit) has none on v1.
var CadvisorMetrics = map[string]string{
	"container_memory_usage_bytes":                   "cgroup.memory.usage",
	"container_memory_working_set_bytes":             "cgroup.memory.working_set",
	"container_memory_rss":                           "cgroup.memory.anon",
	"container_memory_cache":                         "cgroup.memory.file",
	"container_memory_swap":                          "cgroup.memory.swap",
	"container_memory_mapped_file":                   "cgroup.memory.mapped_file",
	"container_memory_kernel_usage":                  "cgroup.memory.kernel",
	"container_memory_max_usage_bytes":               "cgroup.memory.peak.lifetime",
	"container_memory_failcnt":                       "cgroup.memory.failcnt",
	"container_memory_failures_total":                "cgroup.memory.page_faults",
	"container_memory_total_active_file_bytes":       "cgroup.memory.active_file",
	"container_memory_total_inactive_file_bytes":     "cgroup.memory.inactive_file",
	"container_memory_workingset_refault_file_total": "cgroup.memory.workingset.refaults",
	"container_memory_workingset_refault_anon_total": "cgroup.memory.workingset.refaults",
	"container_memory_pgscan_total":                  "cgroup.memory.reclaim.scanned",
	"container_memory_pgsteal_total":                 "cgroup.memory.reclaim.stolen",
	"container_memory_events_max_total":              "cgroup.memory.events",
	"container_memory_events_high_total":             "cgroup.memory.events",
	"container_spec_memory_limit_bytes":              "cgroup.memory.limit",
	"container_spec_memory_swap_limit_bytes":         "cgroup.memory.memsw.limit",
}

// DefaultMetrics are the receiver's metrics enabled by default (its
// metadata.yaml); the equal-work setup turns off those cAdvisor does not
// export. A test checks the list against the generated defaults.
var DefaultMetrics = []string{
	"cgroup.memory.active_file", "cgroup.memory.anon", "cgroup.memory.events",
	"cgroup.memory.failcnt", "cgroup.memory.file", "cgroup.memory.inactive_file",
	"cgroup.memory.limit", "cgroup.memory.oom.eta", "cgroup.memory.oom_kill.records",
	"cgroup.memory.oom_kill.survived", "cgroup.memory.oom_kills", "cgroup.memory.peak",
	"cgroup.memory.pressure.avg10", "cgroup.memory.pressure.stall_time",
	"cgroup.memory.shmem", "cgroup.memory.under_oom", "cgroup.memory.unreclaimable",
	"cgroup.memory.usage", "cgroup.memory.working_set",
	"container.memory.available", "container.memory.rss", "container.memory.usage",
	"container.memory.working_set", "k8s.pod.memory.available", "k8s.pod.memory.rss",
	"k8s.pod.memory.usage", "k8s.pod.memory.working_set",
}

// Params are what a setup's configuration points at: the cgroups, and the
// loopback addresses and files of this run.
type Params struct {
	// Parent is the cgroup path (as /proc/<pid>/cgroup prints it) whose
	// children are measured; both programs read these and no other.
	Parent string
	// Listen is cAdvisor's /metrics address, or the oomsight prometheus
	// exporter's: the driver scrapes either the same way.
	Listen string
	// OTLP is the driver's OTLP/gRPC server (the shipped setups export
	// there, as the DaemonSet exports to its gateway).
	OTLP string
	// Health and Telemetry are loopback host:port for the health_check
	// extension and the collector's own metrics (the shipped defaults,
	// :13133 and :8888, moved so that runs never collide).
	Health, Telemetry string
	// Dir is a directory of the run's own: the exporter queue and the OOM
	// checkpoint of the shipped setups, the kubeconfig of k8s_oom_events.
	Dir string
}

// CadvisorArgs are cAdvisor's flags for a housekeeping interval: memory
// metrics only, housekeeping at a fixed interval (dynamic housekeeping off,
// which would stretch it up to --max_housekeeping_interval for cgroups
// whose stats do not change), only the benchmark's cgroups (and the root,
// which cAdvisor always keeps).
func CadvisorArgs(p Params, housekeeping time.Duration) []string {
	return []string{
		"--listen=" + p.Listen,
		"--enable_metrics=memory",
		"--housekeeping_interval=" + housekeeping.String(),
		"--allow_dynamic_housekeeping=false",
		"--raw_cgroup_prefix_whitelist=" + p.Parent + "/",
	}
}

// EqualConfig is otelcol-oomsight at cAdvisor's work: every memory file of
// every cgroup read once a second, no fast pass, exactly the values
// cAdvisor exports (CadvisorMetrics), no OOM reading, no process snapshots.
// With otlp false they are exposed on a Prometheus endpoint that the driver
// scrapes as it scrapes cAdvisor, each cgroup's resource attributes as
// labels (as cAdvisor's id label; deploy/config/prometheus.yaml's exporter
// settings); with otlp true they are sent to the driver's OTLP server at
// every collection.
func EqualConfig(p Params, otlp bool) string {
	want := map[string]bool{}
	for _, m := range CadvisorMetrics {
		want[m] = true
	}
	for _, m := range DefaultMetrics {
		if !want[m] {
			want[m] = false
		}
	}
	var metrics strings.Builder
	for _, m := range slices.Sorted(maps.Keys(want)) {
		fmt.Fprintf(&metrics, "      %s:\n        enabled: %t\n", m, want[m])
	}
	exporter := fmt.Sprintf(`  prometheus:
    endpoint: %s
    resource_to_telemetry_conversion:
      enabled: true
    metric_expiration: 1m
`, p.Listen)
	name := "prometheus"
	if otlp {
		exporter = fmt.Sprintf(`  otlp_grpc:
    endpoint: %s
    tls:
      insecure: true
`, p.OTLP)
		name = "otlp_grpc"
	}
	return fmt.Sprintf(`receivers:
  cgroupmemory:
    collection_interval: 1s
    sampling_interval: 0s
    include: [%q]
    oom:
      enabled: false
    processes:
      enabled: false
    metrics:
%sexporters:
%sservice:
  pipelines:
    metrics:
      receivers: [cgroupmemory]
      exporters: [%s]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
`, p.Parent+"/*", metrics.String(), exporter, name)
}

// Feature is one default feature of the shipped configuration and how to
// turn it off (item 4 of issue 27: its price is the default's cost minus
// the cost without it, in the same alternations).
type Feature struct {
	Name string
	// Off edits the receiver's configuration (and, for records, the
	// service) to turn the feature off.
	Off func(receiver, service map[string]any)
}

// Features are the default features that the configuration can turn off.
// The flight recorder and the capture at limit events have no switch: the
// receiver always keeps them (its sampler's Events option is always on),
// so their price is not measured here.
var Features = []Feature{
	{"fast_pass", func(r, _ map[string]any) { r["sampling_interval"] = "0s" }},
	{"metrics_memory_stat", metricsOff("cgroup.memory.anon", "cgroup.memory.file", "cgroup.memory.active_file",
		"cgroup.memory.inactive_file", "cgroup.memory.shmem", "cgroup.memory.working_set", "cgroup.memory.unreclaimable")},
	{"metrics_peak", metricsOff("cgroup.memory.peak")},
	{"metrics_oom_eta", metricsOff("cgroup.memory.oom.eta")},
	{"metrics_events", metricsOff("cgroup.memory.events", "cgroup.memory.under_oom", "cgroup.memory.failcnt")},
	{"metrics_oom_counts", metricsOff("cgroup.memory.oom_kills", "cgroup.memory.oom_kill.records", "cgroup.memory.oom_kill.survived")},
	{"metrics_pressure", metricsOff("cgroup.memory.pressure.avg10", "cgroup.memory.pressure.stall_time")},
	{"metrics_limit", metricsOff("cgroup.memory.limit")},
	// The semantic-conventions names beside cgroup.memory.* (docs/semconv.md).
	{"metrics_semconv", metricsOff("container.memory.usage", "container.memory.working_set", "container.memory.rss",
		"container.memory.available", "k8s.pod.memory.usage", "k8s.pod.memory.working_set", "k8s.pod.memory.rss",
		"k8s.pod.memory.available")},
	{"process_snapshots", func(r, _ map[string]any) { sub(r, "processes")["enabled"] = false }},
	{"kernel_log_reader", func(r, _ map[string]any) {
		oom := sub(r, "oom")
		oom["kmsg_path"] = ""
		delete(oom, "checkpoint_file") // it records kernel log positions
	}},
	{"oom_records_and_k8s_oom_events", func(_, s map[string]any) { delete(sub(s, "pipelines"), "logs") }},
}

// FeatureNames lists Features' names.
func FeatureNames() []string {
	out := make([]string, len(Features))
	for i, f := range Features {
		out[i] = f.Name
	}
	return out
}

func metricsOff(names ...string) func(r, s map[string]any) {
	return func(r, _ map[string]any) {
		m := sub(r, "metrics")
		for _, n := range names {
			m[n] = map[string]any{"enabled": false}
		}
	}
}

// sub returns m[key] as a map, creating it when missing.
func sub(m map[string]any, key string) map[string]any {
	if v, ok := m[key].(map[string]any); ok {
		return v
	}
	v := map[string]any{}
	m[key] = v
	return v
}

// ShippedConfig is the agent configuration of the DaemonSet as shipped
// (the ConfigMap oomsight-agent in deploy/kubernetes/agent.yaml, given as
// agentYAML), run on this host outside a cluster: collection at the given
// interval (0 keeps the shipped one), the host's /sys/fs/cgroup, only the
// benchmark's cgroups, export to the driver's OTLP server, and the
// feature named off turned off ("" for none). Left out, because they need
// a Kubernetes API server: the k8s_attributes processor (it lists and
// watches the node's pods). k8s_oom_events stays (it reads nothing from the
// API server until a record names a pod) with auth_type kubeConfig and a
// kubeconfig of the run's own.
func ShippedConfig(agentYAML []byte, p Params, collection time.Duration, off string) ([]byte, error) {
	raw, err := configMapConfig(agentYAML, "oomsight-agent")
	if err != nil {
		return nil, err
	}
	var cfg map[string]any
	if uerr := yaml.Unmarshal([]byte(raw), &cfg); uerr != nil {
		return nil, fmt.Errorf("the agent's config.yaml: %w", uerr)
	}
	recv := sub(sub(cfg, "receivers"), "cgroupmemory")
	if len(recv) == 0 {
		return nil, errors.New("the agent's config.yaml has no cgroupmemory receiver")
	}
	if collection > 0 {
		recv["collection_interval"] = collection.String()
	}
	recv["root_path"] = "/sys/fs/cgroup"
	recv["include"] = []any{p.Parent + "/*"}
	sub(recv, "oom")["checkpoint_file"] = p.Dir + "/oom.checkpoint"

	ext := sub(cfg, "extensions")
	sub(ext, "health_check")["endpoint"] = p.Health
	fs := sub(ext, "file_storage")
	fs["directory"] = p.Dir + "/queue"

	procs := sub(cfg, "processors")
	if _, ok := procs["k8s_attributes"]; !ok {
		return nil, errors.New("the agent's config.yaml has no k8s_attributes processor to leave out: update ShippedConfig")
	}
	delete(procs, "k8s_attributes")

	exps := sub(cfg, "exporters")
	redirected := 0
	for name := range exps {
		// Every OTLP/gRPC exporter, whatever its name after the type
		// (otlp_grpc, otlp_grpc/records): all of them go to the driver.
		if typ, _, _ := strings.Cut(name, "/"); typ == "otlp_grpc" {
			otlp := sub(exps, name)
			otlp["endpoint"] = p.OTLP
			otlp["tls"] = map[string]any{"insecure": true}
			redirected++
		}
	}
	if redirected == 0 {
		return nil, errors.New("the agent's config.yaml has no otlp_grpc exporter to send to the driver")
	}
	ev := sub(exps, "k8s_oom_events")
	ev["auth_type"] = "kubeConfig"
	ev["kube_config_path"] = p.Dir + "/kubeconfig"

	svc := sub(cfg, "service")
	for name, pl := range sub(svc, "pipelines") {
		plm, ok := pl.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("pipeline %s: not a map", name)
		}
		var kept []any
		for _, pr := range asList(plm["processors"]) {
			if pr != "k8s_attributes" {
				kept = append(kept, pr)
			}
		}
		plm["processors"] = kept
	}
	sub(svc, "telemetry")["metrics"] = map[string]any{"readers": []any{map[string]any{"pull": map[string]any{
		"exporter": map[string]any{"prometheus": map[string]any{"host": hostOf(p.Telemetry), "port": portOf(p.Telemetry)}},
	}}}}

	if off != "" {
		i := slices.IndexFunc(Features, func(f Feature) bool { return f.Name == off })
		if i < 0 {
			return nil, fmt.Errorf("feature %q: want one of %s", off, strings.Join(FeatureNames(), ", "))
		}
		Features[i].Off(recv, svc)
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("writing the configuration: %w", err)
	}
	return out, nil
}

// ShippedEnv is the environment of the shipped agent outside its pod: what
// its configuration reads (the DaemonSet sets it from the downward API),
// and the Go runtime's settings the DaemonSet oomsight-agent in agentYAML
// gives its container (GOMEMLIMIT, GOGC, any GO* variable with a literal
// value), so that the benchmark runs the runtime as shipped.
func ShippedEnv(agentYAML []byte) ([]string, error) {
	env, err := daemonSetEnv(agentYAML, "oomsight-agent")
	if err != nil {
		return nil, err
	}
	out := []string{"K8S_NODE_NAME=bench-peers", "POD_IP=127.0.0.1"}
	for _, e := range env {
		if strings.HasPrefix(e.Name, "GO") && e.Value != "" {
			out = append(out, e.Name+"="+e.Value)
		}
	}
	return out, nil
}

// envVar is one entry of a container's env in a manifest.
type envVar struct {
	Name  string `yaml:"name"`
	Value string `yaml:"value"`
}

// daemonSetEnv returns the env of the first container of the DaemonSet
// name in the manifests.
func daemonSetEnv(manifests []byte, name string) ([]envVar, error) {
	dec := yaml.NewDecoder(bytes.NewReader(manifests))
	for {
		var doc struct {
			Kind     string                `yaml:"kind"`
			Metadata struct{ Name string } `yaml:"metadata"`
			Spec     struct {
				Template struct {
					Spec struct {
						Containers []struct {
							Env []envVar `yaml:"env"`
						} `yaml:"containers"`
					} `yaml:"spec"`
				} `yaml:"template"`
			} `yaml:"spec"`
		}
		if err := dec.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("no DaemonSet %s with a container in the manifests", name)
			}
			return nil, fmt.Errorf("reading the manifests: %w", err)
		}
		if doc.Kind == "DaemonSet" && doc.Metadata.Name == name && len(doc.Spec.Template.Spec.Containers) > 0 {
			return doc.Spec.Template.Spec.Containers[0].Env, nil
		}
	}
}

// Kubeconfig is the kubeconfig of k8s_oom_events in the shipped setups: an
// API server on a loopback port where nothing listens. The exporter only
// builds its client at start, and no record names a pod in the benchmark.
const Kubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: none
  cluster:
    server: https://127.0.0.1:1
contexts:
- name: none
  context:
    cluster: none
    user: none
current-context: none
users:
- name: none
  user:
    token: none
`

// configMapConfig finds the config.yaml of the ConfigMap name in the
// manifests.
func configMapConfig(manifests []byte, name string) (string, error) {
	dec := yaml.NewDecoder(bytes.NewReader(manifests))
	for {
		var doc struct {
			Kind     string                `yaml:"kind"`
			Metadata struct{ Name string } `yaml:"metadata"`
			Data     map[string]string     `yaml:"data"`
		}
		if err := dec.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) {
				return "", fmt.Errorf("no ConfigMap %s with a config.yaml in the manifests", name)
			}
			return "", fmt.Errorf("reading the manifests: %w", err)
		}
		if doc.Kind == "ConfigMap" && doc.Metadata.Name == name && doc.Data["config.yaml"] != "" {
			return doc.Data["config.yaml"], nil
		}
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func hostOf(hostport string) string {
	h, _, _ := strings.Cut(hostport, ":")
	return h
}

func portOf(hostport string) int {
	_, p, _ := strings.Cut(hostport, ":")
	var n int
	_, _ = fmt.Sscan(p, &n)
	return n
}
