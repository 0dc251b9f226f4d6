// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
)

// freePort returns a loopback TCP port nobody listens on right now.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startPrometheus runs Debian's prometheus on loopback, scraping target
// every 5 s, until the test ends, and returns its HTTP address.
func startPrometheus(t *testing.T, target string) string {
	t.Helper()
	return startPrometheusConfig(t, fmt.Sprintf(`global:
  scrape_interval: 5s
scrape_configs:
  - job_name: oomsight
    static_configs:
      - targets: [%q]
`, target))
}

// startPrometheusConfig runs Debian's prometheus on loopback with the
// configuration until the test ends, and returns its HTTP address.
func startPrometheusConfig(t *testing.T, config string) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		cgrouptest.Unavailable(t, "prometheus is not installed (make deps installs Debian's prometheus): %v", err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(config), 0o600))
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr)
	startLogged(t, cmd, filepath.Join(dir, "prometheus.log"))
	return addr
}

// startLogged starts cmd with its output in logFile until the test ends
// (SIGTERM), and shows the log when the test failed.
func startLogged(t *testing.T, cmd *exec.Cmd, logFile string) {
	t.Helper()
	out, err := os.Create(logFile)
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		_ = out.Close()
		if t.Failed() {
			b, _ := os.ReadFile(out.Name())
			t.Logf("%s log:\n%s", filepath.Base(cmd.Path), b)
		}
	})
}

// promQuery runs an instant PromQL query and returns the result vector.
func promQuery(t *testing.T, addr, q string) []struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
} {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Status != "success" {
		return nil
	}
	return body.Data.Result
}

func sampleValue(t *testing.T, v [2]any) float64 {
	t.Helper()
	s, ok := v[1].(string)
	require.True(t, ok)
	f, err := strconv.ParseFloat(s, 64)
	require.NoError(t, err)
	return f
}

// prometheusOnly is a distribution configuration with one metrics
// pipeline and nothing else (no logs pipeline): the cgroupmemory receiver
// on the include globs, collecting every 5 s with 100 ms sampling, to the
// prometheus exporter on target with the resource attributes as labels.
func prometheusOnly(target string, include ...string) string {
	quoted := make([]string, len(include))
	for i, g := range include {
		quoted[i] = strconv.Quote(g)
	}
	return fmt.Sprintf(`
receivers:
  cgroupmemory:
    collection_interval: 5s
    sampling_interval: 100ms
    include: [%s]
exporters:
  prometheus:
    endpoint: %s
    resource_to_telemetry_conversion:
      enabled: true
service:
  pipelines:
    metrics:
      receivers: [cgroupmemory]
      exporters: [prometheus]
  telemetry:
    metrics:
      level: none
`, strings.Join(quoted, ", "), target)
}

// TestPrometheusSeriesPerCgroupAndSpike: Debian's Prometheus scrapes the
// distribution (deploy/config/prometheus.yaml's exporter settings) every
// 5 s, with collection_interval equal to it. Each test cgroup is its own
// series with its resource attributes as labels and the kernel's value; a
// 200 ms spike to 120 MiB in a cgroup holding 20 MiB shows in Prometheus as
// a peak sample of at least 120 MiB.
func TestPrometheusSeriesPerCgroupAndSpike(t *testing.T) {
	bin := distro(t)
	env := cgrouptest.Require(t)
	memhog := cgrouptest.BuildMemhog(t)
	base := fmt.Sprintf("oomsight-prom-%d/kubepods/burstable/pod%s", os.Getpid(), podUID)
	pod := env.NewCgroup(t, base)
	ctr := env.NewCgroup(t, base+"/"+containerID)
	ctr.SetLimit(t, 256<<20)
	p := ctr.Start(t, memhog)
	p.MustDo(t, "anon 20")

	target := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	runDistro(t, bin, prometheusOnly(target, pod.Path, ctr.Path))
	prom := startPrometheus(t, target)

	q := fmt.Sprintf(`cgroup_memory_usage_bytes{cgroup_path=%q}`, ctr.Path)
	var res []struct {
		Metric map[string]string `json:"metric"`
		Value  [2]any            `json:"value"`
	}
	require.Eventually(t, func() bool {
		res = promQuery(t, prom, q)
		return len(res) == 1
	}, 60*time.Second, 500*time.Millisecond, "no series %s in Prometheus", q)
	assert.Equal(t, podUID, res[0].Metric["k8s_pod_uid"])
	assert.Equal(t, containerID, res[0].Metric["container_id"])
	assert.Equal(t, "Burstable", res[0].Metric["k8s_pod_qos_class"])
	kernel := float64(ctr.ReadUint(t, "memory.usage_in_bytes"))
	assert.InDelta(t, kernel, sampleValue(t, res[0].Value), 2<<20, "the kernel's usage within one sample")
	all := promQuery(t, prom, fmt.Sprintf(`cgroup_memory_working_set_bytes{cgroup_path=~%q}`, pod.Path+".*"))
	assert.Len(t, all, 2, "the pod and the container: one series each")

	base20 := kernel
	p.MustDo(t, "spike 100 200")
	want := base20 + 100<<20
	peakQ := fmt.Sprintf(`max_over_time(cgroup_memory_peak_bytes{cgroup_path=%q}[1m])`, ctr.Path)
	var got float64
	require.Eventually(t, func() bool {
		r := promQuery(t, prom, peakQ)
		if len(r) != 1 {
			return false
		}
		got = sampleValue(t, r[0].Value)
		return got >= 0.95*want
	}, 30*time.Second, 500*time.Millisecond, "the 200 ms spike to %.0f MiB never showed in Prometheus (peak %.0f MiB)", want/(1<<20), got/(1<<20))
}

// TestPrometheusCountsKillsWithoutLogs is issue 18 item 2 for a
// Prometheus-only user: the distribution with a metrics pipeline and the
// prometheus exporter only (no logs pipeline), Debian's Prometheus scraping
// it every 5 s, and a real OOM kill in a cgroup removed right after it:
// cgroup_memory_oom_kill_records_total of that cgroup is at least 1 within
// two scrapes of the removal.
func TestPrometheusCountsKillsWithoutLogs(t *testing.T) {
	bin := distro(t)
	env := cgrouptest.Require(t)
	memhog := cgrouptest.BuildMemhog(t)
	cg := env.NewCgroup(t, fmt.Sprintf("oomsight-prom-kill-%d", os.Getpid()))
	cg.SetLimit(t, 64<<20)

	target := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	runDistro(t, bin, prometheusOnly(target, cg.Path))
	prom := startPrometheus(t, target)
	usage := fmt.Sprintf(`cgroup_memory_usage_bytes{cgroup_path=%q}`, cg.Path)
	require.Eventually(t, func() bool { return len(promQuery(t, prom, usage)) == 1 }, 60*time.Second, 500*time.Millisecond,
		"no series %s in Prometheus", usage)

	p := cg.Start(t, memhog)
	p.MustDo(t, "anon 20")
	cgrouptest.PaceOOM(t)
	_, err := p.Do("anon 100", 30*time.Second)
	require.Error(t, err, "memhog must be OOM-killed")
	_, err = p.Wait(10 * time.Second)
	require.NoError(t, err)
	require.NoError(t, cgrouptest.RemoveCgroup(cg.Dir), "removing the killed cgroup right after the kill")
	removed := time.Now()

	q := fmt.Sprintf(`cgroup_memory_oom_kill_records_total{cgroup_path=%q}`, cg.Path)
	var got float64
	require.Eventually(t, func() bool {
		r := promQuery(t, prom, q)
		if len(r) != 1 {
			return false
		}
		got = sampleValue(t, r[0].Value)
		return got >= 1
	}, 2*5*time.Second+2*time.Second, 200*time.Millisecond, "%s is not >= 1 within two scrapes of the removal (%v)", q, got)
	t.Logf("%s = %v, %.1f s after the removal", q, got, time.Since(removed).Seconds())
}
