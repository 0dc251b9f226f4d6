// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oomsight/oomsight/internal/identity"
	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
)

// The dashboard and the rules the test runs, relative to this package.
const (
	dashboardFile = "../../../deploy/grafana/oomsight.json"
	rulesFile     = "../../../deploy/prometheus/oomsight-rules.yaml"
	// testNode is the node name: k8s_node_name on the distribution's series
	// (the agent's resource processor sets it from the downward API) and
	// node-exporter's relabeled instance.
	testNode = "oomsight-e2e-node"
	// A second pod, BestEffort, whose container is OOM-killed and removed.
	victimUID = "5a1d2c3e-4b5f-4a6b-8c7d-9e0f1a2b3c4d"
	victimCID = "7c1e0f8a9b2d3c4e5f60718293a4b5c6d7e8f90112233445566778899aabbccd"
	// A third pod, Burstable, whose container's main process (the init of
	// its pid namespace) loses a worker to an OOM kill and runs on.
	survivorUID = "3e9b7c21-5d4a-4f6e-9a8b-7c6d5e4f3a2b"
	survivorCID = "2b4d6f8a0c1e3f5a7b9d1e3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c"
)

// dashboard is the part of Grafana's JSON model the test reads.
type dashboard struct {
	Panels     []dashPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type dashPanel struct {
	Title   string      `json:"title"`
	Type    string      `json:"type"`
	Panels  []dashPanel `json:"panels"` // a collapsed row's panels
	Targets []struct {
		RefID        string `json:"refId"`
		Expr         string `json:"expr"`
		LegendFormat string `json:"legendFormat"`
	} `json:"targets"`
}

// dashQuery is one panel target, its variables substituted.
type dashQuery struct {
	key    string // "panel title/refId"
	expr   string
	legend string
}

var (
	grafanaVar  = regexp.MustCompile(`\$\{(\w+)\}|\$(\w+)`)
	legendLabel = regexp.MustCompile(`\{\{\s*(\w+)\s*\}\}`)
	labelValues = regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)
)

// readDashboard parses deploy/grafana/oomsight.json.
func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	require.NoError(t, err)
	var d dashboard
	require.NoError(t, json.Unmarshal(b, &d))
	return d
}

// substitute replaces Grafana's variables in expr: builtins, then vars.
func substitute(expr string, vars map[string]string) string {
	builtin := map[string]string{
		// Grafana: max($__interval + scrape interval, 4 × scrape interval),
		// with the test's scrape interval of 5 s.
		"__rate_interval": "20s",
		"__interval":      "5s",
		"__range":         "2m",
	}
	return grafanaVar.ReplaceAllStringFunc(expr, func(m string) string {
		name := strings.Trim(m, "${}")
		if v, ok := builtin[name]; ok {
			return v
		}
		if v, ok := vars[name]; ok {
			return v
		}
		return m
	})
}

// variableQueries turns the dashboard's query variables, Grafana's
// label_values(selector, label), into PromQL (count by (label) (selector))
// keyed by variable name.
func variableQueries(t *testing.T, d dashboard, vars map[string]string) map[string]dashQuery {
	t.Helper()
	out := map[string]dashQuery{}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		require.NoError(t, json.Unmarshal(v.Query, &q), "variable %s", v.Name)
		m := labelValues.FindStringSubmatch(q.Query)
		require.NotNil(t, m, "variable %s: not label_values(selector, label): %q", v.Name, q.Query)
		expr := substitute(fmt.Sprintf("count by (%s) (%s)", m[2], m[1]), vars)
		require.NotContains(t, expr, "$", "variable %s: a variable left: %s", v.Name, expr)
		out[v.Name] = dashQuery{key: "variable " + v.Name, expr: expr, legend: m[2]}
	}
	return out
}

// dashboardQueries reads every panel target of the dashboard and
// substitutes Grafana's variables as Grafana would for a selection (vars:
// template variable → regular expression; builtins: the test's scrape
// interval of 5 s). A panel without a query, an empty query or a variable
// the test does not know fails the test.
func dashboardQueries(t *testing.T, d dashboard, vars map[string]string) []dashQuery {
	t.Helper()
	for _, v := range d.Templating.List {
		if v.Type == "datasource" {
			continue
		}
		_, ok := vars[v.Name]
		require.True(t, ok, "the test has no value for the dashboard's variable $%s", v.Name)
	}
	var out []dashQuery
	var walk func([]dashPanel)
	walk = func(ps []dashPanel) {
		for _, p := range ps {
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
			for _, tg := range p.Targets {
				key := p.Title + "/" + tg.RefID
				require.NotEmpty(t, strings.TrimSpace(tg.Expr), "%s has no expr", key)
				expr := substitute(tg.Expr, vars)
				require.NotContains(t, expr, "$", "%s: a variable left: %s", key, expr)
				out = append(out, dashQuery{key: key, expr: expr, legend: tg.LegendFormat})
			}
		}
	}
	walk(d.Panels)
	require.NotEmpty(t, out, "no panels in %s", dashboardFile)
	return out
}

// agentLabels are the labels the node agent produces by itself (no gateway):
// a legend that names one of them must find it on every series.
var agentLabels = map[string]bool{
	"cgroup_path": true, "k8s_pod_uid": true, "k8s_pod_qos_class": true, "container_id": true,
	"container_runtime_name": true, "k8s_node_name": true, "linux_oom_cause": true,
}

// TestPrometheusDashboardQueries runs every query of the Grafana dashboard
// (deploy/grafana/oomsight.json) against Debian's real Prometheus, which
// loads deploy/prometheus/oomsight-rules.yaml and scrapes the distribution
// (on kubepods-shaped test cgroups, the root cgroup, and the logs pipeline
// reading /dev/kmsg) and Debian's node_exporter (relabeled as
// kube-prometheus does). Each query must return series with the labels its
// legend names and the identity of their cgroup path. A container
// OOM-killed and removed right after the kill still shows through PromQL,
// in the records counter, the dashboard's OOM panel and the CgroupOOMKill
// alert. A container whose main process loses a worker to an OOM kill
// shows in cgroup.memory.oom_kill.survived, its panel and the
// ContainerOOMKillSurvived alert; the removed victim in none of them.
func TestPrometheusDashboardQueries(t *testing.T) {
	bin := distro(t)
	env := cgrouptest.Require(t)
	memhog := cgrouptest.BuildMemhog(t)
	nodeExporter := startNodeExporter(t)

	base := fmt.Sprintf("oomsight-dash-%d/kubepods", os.Getpid())
	kubepods := env.NewCgroup(t, base)
	kubepods.SetLimit(t, 1<<30)
	pod := env.NewCgroup(t, base+"/burstable/pod"+podUID)
	pod.SetLimit(t, 512<<20)
	ctr := env.NewCgroup(t, base+"/burstable/pod"+podUID+"/"+containerID)
	ctr.SetLimit(t, 128<<20)
	victim := env.NewCgroup(t, base+"/besteffort/pod"+victimUID+"/"+victimCID)
	victim.SetLimit(t, 64<<20)
	victimPod := filepath.Dir(victim.Dir)
	survivor := env.NewCgroup(t, base+"/burstable/pod"+survivorUID+"/"+survivorCID)
	survivor.SetLimit(t, 64<<20)

	// What fills ctr: anon, page cache on disk, shmem on /dev/shm.
	p := ctr.Start(t, memhog)
	p.MustDo(t, "anon 40")
	cache := filepath.Join(t.TempDir(), "cache")
	p.MustDo(t, "file "+cache+" 16")
	shm := fmt.Sprintf("/dev/shm/oomsight-dash-%d", os.Getpid())
	t.Cleanup(func() { _ = os.Remove(shm) })
	p.MustDo(t, "file "+shm+" 8")
	// And anonymous memory rising at 0.5 MiB/s for up to 2 minutes (to
	// 100 MiB of anon and 8 MiB of shmem under its 128 MiB limit: no
	// kill), so that the time-to-OOM panel has a series. Ends with memhog.
	go func() { _, _ = p.Do("ramp 512 60", 3*time.Minute) }()

	target := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	runDistro(t, bin, fmt.Sprintf(`
receivers:
  cgroupmemory:
    collection_interval: 5s
    sampling_interval: 100ms
    include: ["/", %q, %q]
processors:
  # As deploy/kubernetes/agent.yaml, with the name the downward API gives.
  resource:
    attributes:
      - key: k8s.node.name
        value: %s
        action: upsert
exporters:
  prometheus:
    endpoint: %s
    # 4 collections, as deploy/config/prometheus.yaml: a removed cgroup's
    # series leave /metrics then (the exporter's default keeps them 5 m).
    metric_expiration: 20s
    resource_to_telemetry_conversion:
      enabled: true
  debug:
    verbosity: basic
service:
  pipelines:
    metrics:
      receivers: [cgroupmemory]
      processors: [resource]
      exporters: [prometheus]
    logs:
      receivers: [cgroupmemory]
      exporters: [debug]
  telemetry:
    metrics:
      level: none
`, kubepods.Path, kubepods.Path+"/**", testNode, target))
	rules, err := filepath.Abs(rulesFile)
	require.NoError(t, err)
	prom := startPrometheusConfig(t, fmt.Sprintf(`global:
  scrape_interval: 5s
  evaluation_interval: 5s
rule_files: [%q]
scrape_configs:
  - job_name: oomsight
    static_configs:
      - targets: [%q]
  - job_name: node-exporter
    static_configs:
      - targets: [%q]
    relabel_configs:
      # kube-prometheus: instance is the node's name
      # (__meta_kubernetes_pod_node_name); a static target has no meta label.
      - target_label: instance
        replacement: %s
`, rules, target, nodeExporter, testNode))

	// rate() over the dashboard's 20 s window needs the samples first.
	q := fmt.Sprintf(`count_over_time(cgroup_memory_usage_bytes{cgroup_path=%q}[30s]) >= 5`, ctr.Path)
	require.Eventually(t, func() bool { return len(promInstant(t, prom, q, time.Time{})) == 1 }, 90*time.Second, time.Second,
		"fewer than 5 samples of %s in Prometheus", ctr.Path)

	// --- ContainerOOMKillSurvived (issue 19 item 2) ---
	// A worker of the survivor's main process OOM-killed: the container
	// runs on, the survived counter and the alert say so. Before the
	// victim's kill, so that the dashboard's panel shows it at the time
	// the panels are queried.
	sv := survivor.StartContainer(t, memhog)
	cgrouptest.PaceOOM(t)
	sv.MustDo(t, "child 100")
	survived := fmt.Sprintf(`cgroup_memory_oom_kill_survived_total{cgroup_path=%q} == 1`, survivor.Path)
	require.Eventually(t, func() bool { return len(promInstant(t, prom, survived, time.Time{})) == 1 }, 60*time.Second, 500*time.Millisecond,
		"no %s in Prometheus", survived)
	survivedAlert := fmt.Sprintf(`ALERTS{alertname="ContainerOOMKillSurvived", alertstate="firing", cgroup_path=%q, k8s_pod_uid=%q, container_id=%q}`,
		survivor.Path, survivorUID, survivorCID)
	require.Eventually(t, func() bool { return len(promInstant(t, prom, survivedAlert, time.Time{})) == 1 }, 30*time.Second, time.Second,
		"ContainerOOMKillSurvived did not fire for the survivor's worker")
	// --- end ContainerOOMKillSurvived ---

	// OOM-kill the victim and remove its cgroups at once, as a runtime does.
	v := victim.Start(t, memhog)
	v.MustDo(t, "anon 20")
	cgrouptest.PaceOOM(t)
	_, err = v.Do("anon 100", 30*time.Second)
	require.Error(t, err, "memhog must be OOM-killed")
	require.NoError(t, cgrouptest.RemoveCgroup(victim.Dir))
	require.NoError(t, cgrouptest.RemoveCgroup(victimPod))

	// The records counter of the removed cgroup: its first sample is the
	// moment the dashboard's OOM panel must show it.
	records := fmt.Sprintf(`cgroup_memory_oom_kill_records_total{cgroup_path=%q}`, victim.Path)
	var first time.Time
	require.Eventually(t, func() bool {
		r := promRange(t, prom, records+"[5m]")
		if len(r) == 0 || len(r[0].Values) == 0 {
			return false
		}
		ts, ok := r[0].Values[0][0].(float64)
		first = time.UnixMilli(int64(ts * 1000))
		return ok
	}, 60*time.Second, 500*time.Millisecond, "no %s in Prometheus", records)

	// After the cgroup's own series went stale, the counter is still there.
	require.Eventually(t, func() bool {
		return len(promInstant(t, prom, fmt.Sprintf(`cgroup_memory_usage_bytes{cgroup_path=%q}`, victim.Path), time.Time{})) == 0
	}, 60*time.Second, time.Second, "the removed cgroup's usage series did not go stale")
	r := promInstant(t, prom, records+" >= 1", time.Time{})
	require.Len(t, r, 1, "%s >= 1 after the cgroup is gone", records)
	assert.Equal(t, victimUID, r[0].Metric["k8s_pod_uid"])
	assert.Equal(t, victimCID, r[0].Metric["container_id"])
	assert.Equal(t, "anon", r[0].Metric["linux_oom_cause"])
	alert := fmt.Sprintf(`ALERTS{alertname="CgroupOOMKill", alertstate="firing", cgroup_path=%q}`, victim.Path)
	require.Eventually(t, func() bool { return len(promInstant(t, prom, alert, time.Time{})) == 1 }, 30*time.Second, time.Second,
		"CgroupOOMKill did not fire for the removed cgroup's first kill")
	// The victim's main process was killed: its container did not survive.
	assert.Empty(t, promInstant(t, prom, fmt.Sprintf(`cgroup_memory_oom_kill_survived_total{cgroup_path=%q}`, victim.Path), time.Time{}))
	assert.Empty(t, promInstant(t, prom, fmt.Sprintf(`ALERTS{alertname="ContainerOOMKillSurvived", cgroup_path=%q}`, victim.Path), time.Time{}))

	// The eviction threshold: node_exporter's MemTotal − 100Mi, on the node.
	thr := promInstant(t, prom, fmt.Sprintf(`oomsight:node_eviction_threshold_bytes{k8s_node_name=%q}`, testNode), time.Time{})
	require.Len(t, thr, 1, "the eviction threshold recording rule for %s", testNode)
	assert.Equal(t, memTotal(t)-100<<20, sampleValue(t, thr[0].Value))

	d := readDashboard(t)
	vars := map[string]string{
		"node":         regexp.QuoteMeta(testNode),
		"namespace":    ".*", // gateway labels: All, as without the gateway
		"pod":          ".*",
		"container":    ".*",
		"pod_uid":      "(" + podUID + "|" + victimUID + "|" + survivorUID + ")",
		"container_id": ".*",
		"cgroup_path":  regexp.QuoteMeta(kubepods.Path) + ".*",
	}
	// The variables' own queries offer the node agent's values; those on
	// the gateway's labels only have to be queries Prometheus accepts.
	wantValues := map[string][]string{
		"node":         {testNode},
		"pod_uid":      {podUID},
		"container_id": {containerID},
		"namespace":    nil, "pod": nil, "container": nil,
	}
	vq := variableQueries(t, d, vars)
	for name, want := range wantValues {
		q, ok := vq[name]
		if !assert.True(t, ok, "the dashboard has no variable %s (the test is stale)", name) {
			continue
		}
		var got []string
		for _, s := range promInstant(t, prom, q.expr, time.Time{}) {
			got = append(got, s.Metric[q.legend])
		}
		for _, w := range want {
			assert.Contains(t, got, w, "%s: %s", q.key, q.expr)
		}
	}
	assert.Len(t, vq, len(wantValues), "variables the test does not check: %v", vq)

	queries := dashboardQueries(t, d, vars)
	// Series each query must return (label subsets), beyond "some series".
	want := map[string][]map[string]string{
		"Usage, interval peak and limit per pod and container/A":        {{"cgroup_path": ctr.Path}, {"cgroup_path": pod.Path}},
		"Usage, interval peak and limit per pod and container/D":        {{"cgroup_path": ctr.Path}, {"cgroup_path": pod.Path}},
		"OOM kills (records, by cause)/A":                               {{"cgroup_path": victim.Path, "linux_oom_cause": "anon"}},
		"OOM kills the container survived (no OOMKilled, no restart)/A": {{"cgroup_path": survivor.Path, "k8s_pod_uid": survivorUID, "container_id": survivorCID}},
		"Closest to their limit by peak (time range)/A":                 {{"cgroup_path": ctr.Path}},
		"Node: distance to kubelet eviction/A":                          {{"k8s_node_name": testNode}},
		"Node: distance to kubelet eviction/B":                          {{"k8s_node_name": testNode}},
		"Node: distance to kubelet eviction/C":                          {{"cgroup_path": kubepods.Path}},
		"Node: distance to kubelet eviction/D":                          {{"cgroup_path": kubepods.Path}},
		"memory.available above eviction-hard/A":                        {{"k8s_node_name": testNode}},
		// ctr's own 128 MiB limit comes first (the pod's is 512 MiB).
		"Time to OOM at the current rise (unreclaimable memory)/A": {{"cgroup_path": ctr.Path}},
		"Time to OOM at the current rise (unreclaimable memory)/B": {{}},
	}
	// Lower bounds of single-series panels: what fills ctr.
	atLeast := map[string]float64{
		"What fills the limit: anon, active_file, inactive_file, shmem/A": 40 << 20,
		"What fills the limit: anon, active_file, inactive_file, shmem/B": 8 << 20,
		"What fills the limit: anon, active_file, inactive_file, shmem/E": 128 << 20,
	}
	at := first.Add(time.Second)
	seen := map[string]bool{}
	for _, dq := range queries {
		seen[dq.key] = true
		res := promInstant(t, prom, dq.expr, at)
		if !assert.NotEmpty(t, res, "%s returned nothing: %s", dq.key, dq.expr) {
			continue
		}
		checkSeries(t, dq, res, kubepods.Path)
		for _, w := range want[dq.key] {
			assert.True(t, anyHas(res, w), "%s: no series with %v in %v", dq.key, w, res)
		}
		if lo, ok := atLeast[dq.key]; ok {
			assert.GreaterOrEqual(t, sampleValue(t, res[0].Value), lo, dq.key)
		}
	}
	for k := range want {
		assert.True(t, seen[k], "the dashboard has no query %s (the test is stale)", k)
	}
	for k := range atLeast {
		assert.True(t, seen[k], "the dashboard has no query %s (the test is stale)", k)
	}
}

// checkSeries asserts what every series of a dashboard query must carry:
// the node agent's labels its legend names, and for a cgroup the identity
// its path tells. Cgroups are the test's own or the root.
func checkSeries(t *testing.T, dq dashQuery, res []promSample, prefix string) {
	t.Helper()
	for _, s := range res {
		for _, m := range legendLabel.FindAllStringSubmatch(dq.legend, -1) {
			if agentLabels[m[1]] {
				assert.NotEmpty(t, s.Metric[m[1]], "%s: legend label %s missing on %v", dq.key, m[1], s.Metric)
			}
		}
		path, ok := s.Metric["cgroup_path"]
		if !ok {
			continue
		}
		assert.True(t, path == "/" || strings.HasPrefix(path, prefix), "%s: a cgroup not the test's: %s", dq.key, path)
		id := identity.FromPath(path)
		assert.Equal(t, id.PodUID, s.Metric["k8s_pod_uid"], "%s %s", dq.key, path)
		assert.Equal(t, id.QOSClass, s.Metric["k8s_pod_qos_class"], "%s %s", dq.key, path)
		assert.Equal(t, id.ContainerID, s.Metric["container_id"], "%s %s", dq.key, path)
	}
}

// anyHas tells whether some series carries all the labels of want.
func anyHas(res []promSample, want map[string]string) bool {
	for _, s := range res {
		ok := true
		for k, v := range want {
			ok = ok && s.Metric[k] == v
		}
		if ok {
			return true
		}
	}
	return false
}
