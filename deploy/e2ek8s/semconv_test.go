// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package e2ek8s

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/oomsight/oomsight/internal/testing/promtest"
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
// The gateway's metrics of one collection, as the test's OTLP backend
// received them, go unchanged to the distribution on the host (its OTLP
// receiver and the prometheus exporter with deploy/config/prometheus.yaml's
// settings), which Debian's Prometheus scrapes; the kubernetes-mixin-otel
// Pod dashboard's memory panels, with namespace and pod chosen and cluster
// on All, must return the eater pod with the pod cgroup's values. The
// same metrics without the semantic-convention names first must return
// nothing: the proof fails where oomsight emits only cgroup.memory.*.
func (e *env) semconv(ctx context.Context) (string, error) {
	podPath := "/kubepods/burstable/pod" + string(e.pod.UID)
	batches, err := e.freshCollection(ctx, podPath)
	if err != nil {
		return "", err
	}
	otlpAddr, err := promtest.FreeAddr()
	if err != nil {
		return "", err
	}
	exporterAddr, err := promtest.FreeAddr()
	if err != nil {
		return "", err
	}
	if err := e.startDistro(fmt.Sprintf(hostDistroConfig, otlpAddr, exporterAddr)); err != nil {
		return "", err
	}
	prom, err := promtest.Start(e.t, fmt.Sprintf("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: oomsight\n    static_configs:\n      - targets: [%q]\n", exporterAddr))
	if err != nil {
		return "", err
	}
	vars := strings.NewReplacer("${cluster:pipe}", ".*", "${namespace:pipe}", workloadNS, "${pod:pipe}", e.pod.Name)
	wss, rss, cache := vars.Replace(mixinPodWSS), vars.Replace(mixinPodRSS), vars.Replace(mixinPodCache)
	cgroupWS := fmt.Sprintf(`cgroup_memory_working_set_bytes{cgroup_path=%q}`, podPath)

	// Without the semantic-convention names: the cgroup's series arrive,
	// the dashboard finds nothing.
	if err := replay(ctx, otlpAddr, withoutSemconv(batches)); err != nil {
		return "", err
	}
	if _, err := waitSeries(ctx, prom, cgroupWS, 1); err != nil {
		return "", fmt.Errorf("the pod cgroup's own series never reached Prometheus: %w", err)
	}
	if got, err := prom.Query(ctx, wss); err != nil || len(got) != 0 {
		return "", fmt.Errorf("without container.memory.* and k8s.pod.memory.* the dashboard's query %s finds %v (%v): it would not tell them apart", wss, got, err)
	}

	// With them, as the agent sends them.
	if err := replay(ctx, otlpAddr, batches); err != nil {
		return "", err
	}
	got, err := waitSeries(ctx, prom, wss, 1)
	if err != nil {
		return "", fmt.Errorf("Pod dashboard Memory Usage (WSS) %s: %w", wss, err)
	}
	ws, err := prom.Query(ctx, cgroupWS)
	if err != nil || len(ws) != 1 {
		return "", fmt.Errorf("%s: %v (%v)", cgroupWS, ws, err)
	}
	if got[0].Metric["k8s_pod_name"] != e.pod.Name || got[0].Value != ws[0].Value || got[0].Value <= 0 {
		return "", fmt.Errorf("Memory Usage (WSS): %v, want pod %s at the pod cgroup's working set %.0f", got[0], e.pod.Name, ws[0].Value)
	}
	r, err := waitSeries(ctx, prom, rss, 1)
	if err != nil {
		return "", fmt.Errorf("Memory Usage (RSS) %s: %w", rss, err)
	}
	c, err := waitSeries(ctx, prom, cache, 1)
	if err != nil {
		return "", fmt.Errorf("Memory Usage (Cache) %s: %w", cache, err)
	}
	ctrWS, err := waitSeries(ctx, prom, fmt.Sprintf(kubeletstatsContainer, "working_set", workloadNS, e.pod.Name), 1)
	if err != nil {
		return "", fmt.Errorf("the eater's container.memory.working_set: %w", err)
	}
	avail, err := waitSeries(ctx, prom, fmt.Sprintf(kubeletstatsContainer, "available", workloadNS, e.pod.Name), 1)
	if err != nil {
		return "", fmt.Errorf("the eater's container.memory.available: %w", err)
	}
	if a := avail[0].Value; a <= 0 || a > eaterLimit || math.Abs(a+ctrWS[0].Value-eaterLimit) > 0.5 {
		return "", fmt.Errorf("the eater's container.memory.available %.0f + working set %.0f, want its 64 MiB limit", a, ctrWS[0].Value)
	}
	return fmt.Sprintf("grafana/kubernetes-mixin-otel Pod dashboard on %s/%s: Memory Usage (WSS) %.1f MiB = cgroup.memory.working_set of %s, RSS %.1f MiB, Cache %.1f MiB; kubeletstats' container_memory_working_set_bytes / _available_bytes of the eater %.1f / %.1f MiB (limit 64 MiB); the same collection without the semconv names: the panel empty",
		workloadNS, e.pod.Name, got[0].Value/(1<<20), podPath, r[0].Value/(1<<20), c[0].Value/(1<<20), ctrWS[0].Value/(1<<20), avail[0].Value/(1<<20)), nil
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

// freshCollection waits for one whole collection of the agent that
// arrives after the call, through the gateway with names: the batches
// from now until the pod cgroup's k8s.pod.memory.working_set with
// k8s.pod.name and the eater's container.memory.working_set with
// k8s.container.name have both arrived.
func (e *env) freshCollection(ctx context.Context, podPath string) ([]pmetric.Metrics, error) {
	from := len(e.srv.Metrics.AllMetrics())
	var batches []pmetric.Metrics
	err := waitFor(ctx, 60*time.Second, "a collection with the semantic-convention names", func() error {
		batches = e.srv.Metrics.AllMetrics()[from:]
		pod, eater := false, false
		for _, md := range batches {
			rms := md.ResourceMetrics()
			for i := range rms.Len() {
				attrs := rms.At(i).Resource().Attributes().AsRaw()
				names := metricNames(rms.At(i))
				if attrs["cgroup.path"] == podPath && attrs["k8s.pod.name"] == e.pod.Name && names["k8s.pod.memory.working_set"] {
					pod = true
				}
				if attrs["k8s.pod.uid"] == string(e.pod.UID) && attrs["k8s.container.name"] == "eater" && names["container.memory.working_set"] {
					eater = true
				}
			}
		}
		if !pod || !eater {
			return fmt.Errorf("pod cgroup's k8s.pod.memory.working_set: %v, eater's container.memory.working_set: %v", pod, eater)
		}
		return nil
	})
	return batches, err
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

// waitSeries polls the query until it returns n series.
func waitSeries(ctx context.Context, prom *promtest.Prometheus, q string, n int) ([]promtest.Sample, error) {
	var got []promtest.Sample
	err := waitFor(ctx, 30*time.Second, q, func() error {
		var err error
		got, err = prom.Query(ctx, q)
		if err != nil {
			return err
		}
		if len(got) != n {
			return fmt.Errorf("%d series, want %d: %v", len(got), n, got)
		}
		return nil
	})
	return got, err
}

// startDistro runs _build/otelcol-oomsight on the host with the
// configuration until the test ends.
func (e *env) startDistro(config string) error {
	bin := e.repoPath("_build", "otelcol-oomsight")
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%s (make e2e-k8s builds it): %w", bin, err)
	}
	dir := e.t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		return fmt.Errorf("host distribution config: %w", err)
	}
	logFile := filepath.Join(dir, "otelcol.log")
	out, err := os.Create(logFile)
	if err != nil {
		return fmt.Errorf("host distribution log: %w", err)
	}
	cmd := exec.Command(bin, "--config", cfg)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		_ = out.Close()
		return fmt.Errorf("start %s: %w", bin, err)
	}
	e.t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		_ = out.Close()
		if e.t.Failed() {
			b, _ := os.ReadFile(logFile)
			fmt.Printf("k8s: host distribution log:\n%s\n", tail(string(b), 30))
		}
	})
	return nil
}
