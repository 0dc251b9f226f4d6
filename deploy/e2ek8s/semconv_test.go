// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package e2ek8s

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// mixinPodWSS is the "Memory Usage (WSS)" panel of the Pod dashboard of
// grafana/kubernetes-mixin-otel (the kubernetes-mixin's dashboards on
// kubeletstats and k8s_cluster metrics; dashboards/resources/queries/
// pod.libsonnet memoryUsageWSS through common.libsonnet's metricSum), as
// its jsonnet renders it, with the dashboard's variables left in.
// mixinPodRSS and mixinPodCache are the panels beside it (memoryUsageRSS,
// memoryUsageCache).
const (
	mixinSelector = `{k8s_cluster_name=~"${cluster:pipe}", k8s_namespace_name=~"${namespace:pipe}", k8s_pod_name=~"${pod:pipe}"}`
	mixinMaxBy    = `max by (k8s_cluster_name, k8s_namespace_name, k8s_pod_name, k8s_container_name)`
	mixinPodWSS   = `sum by (k8s_pod_name) (` + mixinMaxBy + ` (k8s_pod_memory_working_set_bytes` + mixinSelector + `))`
	mixinPodRSS   = `sum by (k8s_pod_name) (` + mixinMaxBy + ` (k8s_pod_memory_rss_bytes` + mixinSelector + `))`
	mixinPodCache = `sum by (k8s_pod_name) (` + mixinMaxBy + ` (k8s_pod_memory_usage_bytes` + mixinSelector + `) - ` +
		mixinMaxBy + ` (k8s_pod_memory_rss_bytes` + mixinSelector + `))`
	// kubeletstats' container.memory.working_set and .available
	// (contrib's receiver/kubeletstatsreceiver/documentation.md) through
	// the same exporter, keyed as its users key them.
	kubeletstatsContainer = `container_memory_%s_bytes{k8s_namespace_name="%s", k8s_pod_name="%s", k8s_container_name="eater"}`
)

// semconv: dashboards written for kubeletstats find oomsight's series.
// The gateway's metrics of one collection for the workload's namespace, as
// the test's OTLP backend received them, go unchanged to the distribution
// on the host (its OTLP
// receiver and the prometheus exporter with deploy/config/prometheus.yaml's
// settings), which Debian's Prometheus scrapes; the kubernetes-mixin-otel
// Pod dashboard's memory panels, with namespace and pod chosen and cluster
// on All, must return the eater pod with the pod cgroup's values. The
// same metrics without the semantic-convention names first must return
// nothing: the proof fails where oomsight emits only cgroup.memory.*.
func (e *env) semconv(ctx context.Context, n *node) (string, error) {
	podPath := n.podPath(string(n.pod.UID))
	batches, err := e.freshCollection(ctx, n, podPath)
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "oomsight-e2ek8s-semconv-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	otlpAddr, exporterAddr, promAddr := freeLocal(), freeLocal(), freeLocal()
	if werr := os.WriteFile(filepath.Join(dir, "otelcol.yaml"), []byte(fmt.Sprintf(hostDistroConfig, otlpAddr, exporterAddr)), 0o600); werr != nil {
		return "", werr
	}
	stopCol, err := startLogged(filepath.Join(dir, "otelcol.log"), e.repoPath("_build", "otelcol-oomsight"), "--config", filepath.Join(dir, "otelcol.yaml"))
	if err != nil {
		return "", err
	}
	defer stopCol()
	promCfg := fmt.Sprintf("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: oomsight\n    static_configs:\n      - targets: [%q]\n", exporterAddr)
	if werr := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(promCfg), 0o600); werr != nil {
		return "", werr
	}
	stopProm, err := startLogged(filepath.Join(dir, "prometheus.log"), "prometheus", "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+promAddr)
	if err != nil {
		return "", err
	}
	defer stopProm()
	detail, err := semconvQueries(ctx, n, batches, otlpAddr, promAddr, podPath)
	if err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "otelcol.log"))
		var errs []string
		for line := range strings.SplitSeq(string(b), "\n") {
			if strings.Contains(line, "\terror\t") && len(errs) < 3 {
				errs = append(errs, line)
			}
		}
		return "", fmt.Errorf("%w; the host distribution's errors: %s", err, strings.Join(errs, "\n"))
	}
	return detail, nil
}

// semconvQueries replays the batches without and with the semantic-
// convention names and asks the dashboard's queries after each.
func semconvQueries(ctx context.Context, n *node, batches []pmetric.Metrics, otlpAddr, promAddr, podPath string) (string, error) {
	vars := strings.NewReplacer("${cluster:pipe}", ".*", "${namespace:pipe}", n.ns, "${pod:pipe}", n.pod.Name)
	wss, rss, cache := vars.Replace(mixinPodWSS), vars.Replace(mixinPodRSS), vars.Replace(mixinPodCache)
	cgroupWS := fmt.Sprintf(`cgroup_memory_working_set_bytes{cgroup_path=%q}`, podPath)

	// Without the semantic-convention names: the cgroup's series arrive,
	// the dashboard finds nothing.
	if err := replay(ctx, otlpAddr, withoutSemconv(batches)); err != nil {
		return "", err
	}
	if _, err := waitSeries(ctx, promAddr, cgroupWS); err != nil {
		return "", fmt.Errorf("the pod cgroup's own series never reached Prometheus: %w", err)
	}
	got, err := promSamples(ctx, promAddr, wss)
	if err != nil {
		return "", fmt.Errorf("the dashboard's query %s: %w", wss, err)
	}
	if len(got) != 0 {
		return "", fmt.Errorf("without container.memory.* and k8s.pod.memory.* the dashboard's query %s finds %v: it would not tell them apart", wss, got)
	}

	// With them, as the agent sends them.
	if rerr := replay(ctx, otlpAddr, batches); rerr != nil {
		return "", rerr
	}
	got, err = waitSeries(ctx, promAddr, wss)
	if err != nil {
		return "", fmt.Errorf("Pod dashboard Memory Usage (WSS) %s: %w", wss, err)
	}
	sent := pointValues(batches, podPath, "k8s.pod.memory.working_set")
	if got[0].Metric["k8s_pod_name"] != n.pod.Name || got[0].Value <= 0 || !sent[got[0].Value] {
		return "", fmt.Errorf("Memory Usage (WSS): %v, want pod %s at one of the working sets the agent sent for %s: %v", got[0], n.pod.Name, podPath, sent)
	}
	r, err := waitSeries(ctx, promAddr, rss)
	if err != nil {
		return "", fmt.Errorf("Memory Usage (RSS) %s: %w", rss, err)
	}
	c, err := waitSeries(ctx, promAddr, cache)
	if err != nil {
		return "", fmt.Errorf("Memory Usage (Cache) %s: %w", cache, err)
	}
	ctrWS, err := waitSeries(ctx, promAddr, fmt.Sprintf(kubeletstatsContainer, "working_set", n.ns, n.pod.Name))
	if err != nil {
		return "", fmt.Errorf("the eater's container.memory.working_set: %w", err)
	}
	avail, err := waitSeries(ctx, promAddr, fmt.Sprintf(kubeletstatsContainer, "available", n.ns, n.pod.Name))
	if err != nil {
		return "", fmt.Errorf("the eater's container.memory.available: %w", err)
	}
	eaterPath := n.containerPath(string(n.pod.UID), n.firstID)
	if a := avail[0].Value; a <= 0 || a > eaterLimit || !pointValues(batches, eaterPath, "container.memory.available")[a] ||
		!pointValues(batches, eaterPath, "container.memory.working_set")[ctrWS[0].Value] {
		return "", fmt.Errorf("the eater's container.memory.available %.0f and working set %.0f: not what the agent sent for %s under its 64 MiB limit", a, ctrWS[0].Value, eaterPath)
	}
	return fmt.Sprintf("grafana/kubernetes-mixin-otel Pod dashboard on %s/%s: Memory Usage (WSS) %.1f MiB = the agent's k8s.pod.memory.working_set of %s, RSS %.1f MiB, Cache %.1f MiB; kubeletstats' container_memory_working_set_bytes / _available_bytes of the eater %.1f / %.1f MiB (limit 64 MiB), each a value the agent sent; the same collection without the semconv names: the panel empty",
		n.ns, n.pod.Name, got[0].Value/(1<<20), podPath, r[0].Value/(1<<20), c[0].Value/(1<<20), ctrWS[0].Value/(1<<20), avail[0].Value/(1<<20)), nil
}

// hostDistroConfig is the distribution on the host between the replayed
// OTLP and Prometheus: an OTLP receiver (%[1]s) and the prometheus
// exporter (%[2]s) with deploy/config/prometheus.yaml's settings.
const hostDistroConfig = `receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %[1]s
exporters:
  prometheus:
    endpoint: %[2]s
    resource_to_telemetry_conversion:
      enabled: true
    metric_expiration: 1m
service:
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [prometheus]
  telemetry:
    metrics:
      level: none
`

// freshCollection waits for a collection of the agent that arrives after
// the call, through the gateway with names: the batches from now until the
// pod cgroup's k8s.pod.memory.working_set and cgroup.memory.working_set
// with k8s.pod.name and the eater's container.memory.working_set with
// k8s.container.name have all arrived (a collection may come in several
// messages: the batches are split).
func (e *env) freshCollection(ctx context.Context, n *node, podPath string) ([]pmetric.Metrics, error) {
	from := len(e.srv.Metrics.AllMetrics())
	var batches []pmetric.Metrics
	err := waitFor(ctx, 60*time.Second, "a collection with the semantic-convention names", func() error {
		batches = e.srv.Metrics.AllMetrics()[from:]
		pod, podCgroup, eater := false, false, false
		for _, md := range batches {
			rms := md.ResourceMetrics()
			for i := range rms.Len() {
				attrs := rms.At(i).Resource().Attributes().AsRaw()
				names := metricNames(rms.At(i))
				if attrs["cgroup.path"] == podPath && attrs["k8s.pod.name"] == n.pod.Name {
					pod = pod || names["k8s.pod.memory.working_set"]
					podCgroup = podCgroup || names["cgroup.memory.working_set"]
				}
				if attrs["k8s.pod.uid"] == string(n.pod.UID) && attrs["k8s.container.name"] == "eater" && names["container.memory.working_set"] {
					eater = true
				}
			}
		}
		if !pod || !podCgroup || !eater {
			return fmt.Errorf("pod cgroup's k8s.pod.memory.working_set: %v, its cgroup.memory.working_set: %v, eater's container.memory.working_set: %v", pod, podCgroup, eater)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return inNamespace(batches, n.ns), nil
}

// inNamespace copies the batches' resources of the namespace: the
// dashboard asks about the workload, and the node's other cgroups (a
// thousand when another test runs beside the cluster) would only make
// the exporter's page several MB, near Prometheus' 1 s scrape timeout.
func inNamespace(batches []pmetric.Metrics, ns string) []pmetric.Metrics {
	out := make([]pmetric.Metrics, 0, len(batches))
	for _, md := range batches {
		cp := pmetric.NewMetrics()
		md.CopyTo(cp)
		cp.ResourceMetrics().RemoveIf(func(rm pmetric.ResourceMetrics) bool {
			v, _ := rm.Resource().Attributes().Get("k8s.namespace.name")
			return v.Str() != ns
		})
		if cp.ResourceMetrics().Len() > 0 {
			out = append(out, cp)
		}
	}
	return out
}

// pointValues returns the values of the named metric's data points on the
// cgroup's resource in the batches.
func pointValues(batches []pmetric.Metrics, path, name string) map[float64]bool {
	out := map[float64]bool{}
	for _, md := range batches {
		rms := md.ResourceMetrics()
		for i := range rms.Len() {
			if p, _ := rms.At(i).Resource().Attributes().Get("cgroup.path"); p.Str() != path {
				continue
			}
			sms := rms.At(i).ScopeMetrics()
			for j := range sms.Len() {
				ms := sms.At(j).Metrics()
				for k := range ms.Len() {
					if m := ms.At(k); m.Name() == name && m.Type() == pmetric.MetricTypeSum {
						dps := m.Sum().DataPoints()
						for l := range dps.Len() {
							out[float64(dps.At(l).IntValue())] = true
						}
					}
				}
			}
		}
	}
	return out
}

func metricNames(rm pmetric.ResourceMetrics) map[string]bool {
	out := map[string]bool{}
	sms := rm.ScopeMetrics()
	for i := range sms.Len() {
		ms := sms.At(i).Metrics()
		for j := range ms.Len() {
			out[ms.At(j).Name()] = true
		}
	}
	return out
}

// withoutSemconv copies the batches without the semantic-convention
// metrics: what the agent sent before it had them.
func withoutSemconv(batches []pmetric.Metrics) []pmetric.Metrics {
	out := make([]pmetric.Metrics, len(batches))
	for i, md := range batches {
		out[i] = pmetric.NewMetrics()
		md.CopyTo(out[i])
		rms := out[i].ResourceMetrics()
		for j := range rms.Len() {
			sms := rms.At(j).ScopeMetrics()
			for k := range sms.Len() {
				sms.At(k).Metrics().RemoveIf(func(m pmetric.Metric) bool {
					return !strings.HasPrefix(m.Name(), "cgroup.")
				})
			}
		}
	}
	return out
}

// replay sends the batches over OTLP/gRPC to addr, retrying while the
// receiver is not up yet.
func replay(ctx context.Context, addr string, batches []pmetric.Metrics) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("otlp client %s: %w", addr, err)
	}
	defer conn.Close()
	client := pmetricotlp.NewGRPCClient(conn)
	for _, md := range batches {
		err := waitFor(ctx, 30*time.Second, "replay to the host's distribution", func() error {
			_, err := client.Export(ctx, pmetricotlp.NewExportRequestFromMetrics(md))
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// waitSeries polls the query until it returns exactly one series.
func waitSeries(ctx context.Context, addr, q string) ([]promSample, error) {
	var got []promSample
	err := waitFor(ctx, 30*time.Second, q, func() error {
		var err error
		got, err = promSamples(ctx, addr, q)
		if err != nil {
			return err
		}
		if len(got) != 1 {
			return fmt.Errorf("%d series, want 1: %v", len(got), got)
		}
		return nil
	})
	return got, err
}

// promSample is one series of an instant query's result.
type promSample struct {
	Metric map[string]string
	Value  float64
}

// promSamples runs an instant PromQL query on the Prometheus at addr. An
// unreachable server, a refused query or an unparsable answer is an
// error; no series is an empty result.
func promSamples(ctx context.Context, addr, query string) ([]promSample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/api/v1/query?query="+url.QueryEscape(query), http.NoBody)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("prometheus query %s: %w", query, err)
	}
	if out.Status != "success" {
		return nil, fmt.Errorf("prometheus query %s: %s %s", query, out.Status, out.Error)
	}
	samples := make([]promSample, 0, len(out.Data.Result))
	for _, r := range out.Data.Result {
		str, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, fmt.Errorf("prometheus query %s: value %v: %w", query, r.Value, err)
		}
		samples = append(samples, promSample{Metric: r.Metric, Value: v})
	}
	return samples, nil
}
