// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

//go:build linux

package e2ev2

import (
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver"
)

// peakPoints returns the cgroup.memory.peak points of the cgroup at p, in
// the order exported.
func (r *receiverRun) peakPoints(p string) (ts []time.Time, vs []int64) {
	for _, md := range r.sink.AllMetrics() {
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			rm := md.ResourceMetrics().At(i)
			if cp, ok := rm.Resource().Attributes().Get("cgroup.path"); !ok || cp.Str() != p {
				continue
			}
			for j := 0; j < rm.ScopeMetrics().Len(); j++ {
				ms := rm.ScopeMetrics().At(j).Metrics()
				for k := 0; k < ms.Len(); k++ {
					if ms.At(k).Name() != "cgroup.memory.peak" || ms.At(k).Type() != pmetric.MetricTypeGauge {
						continue
					}
					dps := ms.At(k).Gauge().DataPoints()
					for l := 0; l < dps.Len(); l++ {
						ts = append(ts, dps.At(l).Timestamp().AsTime())
						vs = append(vs, dps.At(l).IntValue())
					}
				}
			}
		}
	}
	return ts, vs
}

// TestVMRemovedCgroupLastInterval is issue 18 item 1 on cgroup v2: a
// cgroup with a 64 MiB limit whose process grows 4 MiB every 50 ms until
// OOM-killed, removed right after the kill, collection_interval 1s,
// sampling_interval 100ms. The removed cgroup's exported cgroup.memory.peak
// reaches 95 % of its limit, and no peak point is exported twice.
func TestVMRemovedCgroupLastInterval(t *testing.T) {
	v := requireVM(t)
	const limit = 64 * mib
	for run := range 3 {
		p := fmt.Sprintf("/oomsight-last-interval-%d", run)
		cg := v.mkcg(t, p)
		cg.SetLimit(t, limit)
		rcv := startReceiverWith(t, func(cfg *cgroupmemoryreceiver.Config) {
			cfg.CollectionInterval = time.Second
			cfg.SamplingInterval = 100 * time.Millisecond
		}, p)
		_, err := rcv.waitLatest(p, time.Time{})
		must(t, "the collection at start", err)
		time.Sleep(time.Duration(run) * 330 * time.Millisecond) // another phase each run

		proc := cg.Start(t, v.memhog)
		do(t, proc, "anon 8")
		for range 100 {
			if _, err := proc.Do("anon 4", 60*time.Second); err != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		killed, how := killedBySIGKILL(proc)
		report(t, fmt.Sprintf("lastinterval/%d/killed", run), killed, "%s", how)
		must(t, "remove "+p, cgrouptest.RemoveCgroup(cg.Dir))
		time.Sleep(2500 * time.Millisecond) // two collections after the removal

		ts, vs := rcv.peakPoints(p)
		top := int64(0)
		for _, x := range vs {
			top = max(top, x)
		}
		report(t, fmt.Sprintf("lastinterval/%d/peak", run), top >= limit*95/100,
			"removed cgroup's exported peak %.1f MiB of a %d MiB limit (want >= 95 %%); peaks %v", float64(top)/mib, limit/mib, vs)
		ordered := true
		for i := 1; i < len(ts); i++ {
			ordered = ordered && ts[i].After(ts[i-1])
		}
		report(t, fmt.Sprintf("lastinterval/%d/no-point-twice", run), ordered, "%d peak points at strictly increasing times: %v", len(ts), ts)
	}
}
