// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
	"github.com/oomsight/oomsight/internal/testing/otlptest"
)

const (
	podUID      = "0f5eb28f-6722-4cf5-ab0f-b62748c018d4"
	containerID = "0dc1822caf9e150de25daa1cf572418426ce6b72757b5efdff52acef348368a3"
)

// distro returns the built collector, or stops the test (failing under
// CI=true) when `make build` has not been run.
func distro(tb testing.TB) string {
	tb.Helper()
	p, err := filepath.Abs("../../../_build/otelcol-oomsight")
	require.NoError(tb, err)
	if _, err := os.Stat(p); err != nil {
		cgrouptest.Unavailable(tb, "%s not built (run make build): %v", p, err)
	}
	return p
}

// syncBuffer collects the collector's log output for failure messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runDistro runs the built collector on the configuration until the test
// ends (SIGTERM), and shows its output when the test failed. It returns
// the process.
func runDistro(tb testing.TB, bin, config string) *os.Process {
	tb.Helper()
	cfgFile := filepath.Join(tb.TempDir(), "config.yaml")
	require.NoError(tb, os.WriteFile(cfgFile, []byte(config), 0o600))
	var logs syncBuffer
	cmd := exec.Command(bin, "--config", cfgFile)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(tb, cmd.Start())
	tb.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if tb.Failed() {
			tb.Logf("otelcol-oomsight output:\n%s", logs.String())
		}
	})
	return cmd.Process
}

// TestDistroExportsCgroupMetricsOverOTLP runs _build/otelcol-oomsight on a
// kubepods-shaped test cgroup holding 40 MiB under a 64 MiB limit and
// checks what an OTLP server receives from it.
func TestDistroExportsCgroupMetricsOverOTLP(t *testing.T) {
	bin := distro(t)
	env := cgrouptest.Require(t)
	memhog := cgrouptest.BuildMemhog(t)
	rel := fmt.Sprintf("oomsight-e2e-%d/kubepods/burstable/pod%s/%s", os.Getpid(), podUID, containerID)
	cg := env.NewCgroup(t, rel)
	cg.SetLimit(t, 64<<20)
	p := cg.Start(t, memhog)
	p.MustDo(t, "anon 40")

	srv := otlptest.Start(t)
	runDistro(t, bin, fmt.Sprintf(`
receivers:
  cgroupmemory:
    collection_interval: 200ms
    include: [%q]
exporters:
  otlp_grpc:
    endpoint: %s
    tls:
      insecure: true
service:
  pipelines:
    metrics:
      receivers: [cgroupmemory]
      exporters: [otlp_grpc]
  telemetry:
    metrics:
      level: none
`, cg.Path, srv.Endpoint))

	var rm pmetric.ResourceMetrics
	found := func() bool {
		for _, md := range srv.Metrics.AllMetrics() {
			rms := md.ResourceMetrics()
			for i := 0; i < rms.Len(); i++ {
				if v, ok := rms.At(i).Resource().Attributes().Get("cgroup.path"); ok && v.Str() == cg.Path {
					rm = rms.At(i)
					return true
				}
			}
		}
		return false
	}
	require.Eventually(t, found, 30*time.Second, 100*time.Millisecond, "no metrics for %s arrived over OTLP", cg.Path)

	attrs := rm.Resource().Attributes().AsRaw()
	assert.Equal(t, map[string]any{
		"cgroup.path":       cg.Path,
		"k8s.pod.uid":       podUID,
		"k8s.pod.qos_class": "Burstable",
		"container.id":      containerID,
	}, attrs)

	got := map[string]int64{}
	doubles := map[string]float64{}
	kinds := map[string]pmetric.MetricType{}
	sms := rm.ScopeMetrics()
	for i := 0; i < sms.Len(); i++ {
		assert.Equal(t, "github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver", sms.At(i).Scope().Name())
		ms := sms.At(i).Metrics()
		for j := 0; j < ms.Len(); j++ {
			m := ms.At(j)
			kinds[m.Name()] = m.Type()
			switch m.Type() {
			case pmetric.MetricTypeSum:
				got[m.Name()] = m.Sum().DataPoints().At(0).IntValue()
			case pmetric.MetricTypeGauge:
				got[m.Name()] = m.Gauge().DataPoints().At(0).IntValue()
				doubles[m.Name()] = m.Gauge().DataPoints().At(0).DoubleValue()
			}
		}
	}
	// The default set on v1: the eleven headline metrics, events (max and
	// oom_kill), under_oom, unreclaimable and oom.eta; PSI is absent on v1;
	// and, the cgroup being a container's, the semantic conventions'
	// container.memory.* (docs/semconv.md) with the same sample's values.
	assert.Len(t, got, 19, "the default metric set: %v", got)
	assert.Equal(t, got["cgroup.memory.usage"], got["container.memory.usage"])
	assert.Equal(t, got["cgroup.memory.working_set"], got["container.memory.working_set"])
	assert.Equal(t, got["cgroup.memory.anon"], got["container.memory.rss"])
	assert.Equal(t, int64(64<<20)-got["cgroup.memory.working_set"], got["container.memory.available"])
	assert.Equal(t, pmetric.MetricTypeSum, kinds["container.memory.working_set"])
	assert.Contains(t, got, "cgroup.memory.events")
	assert.Contains(t, got, "cgroup.memory.under_oom")
	assert.Contains(t, got, "cgroup.memory.unreclaimable")
	assert.True(t, math.IsInf(doubles["cgroup.memory.oom.eta"], 1), "memory holding steady under a limit: +Inf to OOM, got %v", doubles["cgroup.memory.oom.eta"])
	assert.Equal(t, int64(64<<20), got["cgroup.memory.limit"])
	assert.GreaterOrEqual(t, got["cgroup.memory.anon"], int64(40<<20))
	assert.Less(t, got["cgroup.memory.anon"], int64(56<<20))
	assert.GreaterOrEqual(t, got["cgroup.memory.usage"], got["cgroup.memory.anon"])
	assert.GreaterOrEqual(t, got["cgroup.memory.working_set"], int64(40<<20))
	assert.GreaterOrEqual(t, got["cgroup.memory.peak"], got["cgroup.memory.anon"])
	assert.Equal(t, pmetric.MetricTypeGauge, kinds["cgroup.memory.peak"])
	assert.Equal(t, pmetric.MetricTypeSum, kinds["cgroup.memory.usage"])
}
