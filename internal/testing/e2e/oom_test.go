// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
	"github.com/oomsight/oomsight/internal/testing/otlptest"
)

// TestDistroExportsOOMRecordOverOTLP runs _build/otelcol-oomsight with the
// receiver in a metrics and a logs pipeline (one shared instance), OOM-kills
// a process in a kubepods-shaped test cgroup for real, and checks the OOM
// record and the oom_kills metric an OTLP server receives.
func TestDistroExportsOOMRecordOverOTLP(t *testing.T) {
	bin := distro(t)
	env := cgrouptest.Require(t)
	memhog := cgrouptest.BuildMemhog(t)
	rel := fmt.Sprintf("oomsight-e2e-oom-%d/kubepods/burstable/pod%s/%s", os.Getpid(), podUID, containerID)
	cg := env.NewCgroup(t, rel)
	cg.SetLimit(t, 64<<20)

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
    logs:
      receivers: [cgroupmemory]
      exporters: [otlp_grpc]
  telemetry:
    metrics:
      level: none
`, cg.Path, srv.Endpoint))
	// The receiver reads only kills after its start: wait until it runs.
	require.Eventually(t, func() bool { return srv.Metrics.DataPointCount() > 0 }, 30*time.Second, 50*time.Millisecond, "collector did not start")

	p := cg.Start(t, memhog)
	p.MustDo(t, "anon 40")
	cgrouptest.PaceOOM(t)
	_, err := p.Do("anon 100", 30*time.Second)
	require.Error(t, err, "memhog must be OOM-killed")

	var rec plog.LogRecord
	var res map[string]any
	require.Eventually(t, func() bool {
		for _, ld := range srv.Logs.AllLogs() {
			for i := 0; i < ld.ResourceLogs().Len(); i++ {
				rl := ld.ResourceLogs().At(i)
				if v, ok := rl.Resource().Attributes().Get("cgroup.path"); ok && v.Str() == cg.Path {
					rec = rl.ScopeLogs().At(0).LogRecords().At(0)
					res = rl.Resource().Attributes().AsRaw()
					return true
				}
			}
		}
		return false
	}, 20*time.Second, 50*time.Millisecond, "no OOM record for %s arrived over OTLP", cg.Path)

	assert.Equal(t, "linux.oom_kill", rec.EventName())
	assert.Equal(t, plog.SeverityNumberError, rec.SeverityNumber())
	assert.Equal(t, podUID, res["k8s.pod.uid"])
	assert.Equal(t, containerID, res["container.id"])
	a := rec.Attributes().AsRaw()
	assert.Equal(t, int64(p.Pid), a["process.pid"])
	assert.Equal(t, "memhog", a["process.executable.name"])
	assert.Equal(t, cg.Path, a["linux.oom.memcg"])
	assert.Equal(t, int64(64<<20), a["linux.oom.memcg.limit"])
	assert.Contains(t, rec.Body().Str(), "memhog")

	// The same instance's metrics see the kill too.
	require.Eventually(t, func() bool {
		all := srv.Metrics.AllMetrics()
		for _, a := range slices.Backward(all) {
			rms := a.ResourceMetrics()
			for j := 0; j < rms.Len(); j++ {
				if v, ok := rms.At(j).Resource().Attributes().Get("cgroup.path"); !ok || v.Str() != cg.Path {
					continue
				}
				ms := rms.At(j).ScopeMetrics().At(0).Metrics()
				for k := 0; k < ms.Len(); k++ {
					if ms.At(k).Name() == "cgroup.memory.oom_kills" {
						return ms.At(k).Sum().DataPoints().At(0).IntValue() == 1
					}
				}
			}
		}
		return false
	}, 10*time.Second, 50*time.Millisecond, "oom_kills metric did not reach 1")
}
