// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package e2ek8s

import (
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/oomsight/oomsight/internal/testing/otlptest"
)

// series is one resource's metrics as the test's OTLP server received
// them: its attributes and the start time of its cumulative sums.
type series struct {
	attrs map[string]string
	start pcommon.Timestamp
	last  pcommon.Timestamp
}

// metricSeries lists every resource the server received metrics for.
func metricSeries(s *otlptest.Server) []series {
	var out []series
	for _, md := range s.Metrics.AllMetrics() {
		rms := md.ResourceMetrics()
		for i := range rms.Len() {
			rm := rms.At(i)
			se := series{attrs: flat(rm.Resource().Attributes())}
			sms := rm.ScopeMetrics()
			for j := range sms.Len() {
				ms := sms.At(j).Metrics()
				for k := range ms.Len() {
					m := ms.At(k)
					if m.Type() != pmetric.MetricTypeSum || m.Sum().DataPoints().Len() == 0 {
						continue
					}
					dp := m.Sum().DataPoints().At(0)
					if se.start == 0 || dp.StartTimestamp() < se.start {
						se.start = dp.StartTimestamp()
					}
					if dp.Timestamp() > se.last {
						se.last = dp.Timestamp()
					}
				}
			}
			out = append(out, se)
		}
	}
	return out
}

// record is one OOM record the server received.
type record struct {
	res      map[string]string
	attrs    pcommon.Map
	body     string
	ts       pcommon.Timestamp // the kill's time
	observed pcommon.Timestamp
}

func (r record) str(key string) string {
	v, ok := r.attrs.Get(key)
	if !ok {
		return ""
	}
	return v.AsString()
}

func (r record) int(key string) int64 {
	v, ok := r.attrs.Get(key)
	if !ok {
		return -1
	}
	return v.Int()
}

// oomRecords lists the linux.oom_kill records the server received that
// match.
func oomRecords(s *otlptest.Server, match func(record) bool) []record {
	var out []record
	for _, ld := range s.Logs.AllLogs() {
		rls := ld.ResourceLogs()
		for i := range rls.Len() {
			res := flat(rls.At(i).Resource().Attributes())
			sls := rls.At(i).ScopeLogs()
			for j := range sls.Len() {
				lrs := sls.At(j).LogRecords()
				for k := range lrs.Len() {
					lr := lrs.At(k)
					if lr.EventName() != "linux.oom_kill" {
						continue
					}
					r := record{res: res, attrs: lr.Attributes(), body: lr.Body().AsString(), ts: lr.Timestamp(), observed: lr.ObservedTimestamp()}
					if match(r) {
						out = append(out, r)
					}
				}
			}
		}
	}
	return out
}

func flat(m pcommon.Map) map[string]string {
	out := make(map[string]string, m.Len())
	m.Range(func(k string, v pcommon.Value) bool {
		out[k] = v.AsString()
		return true
	})
	return out
}

// trimRuntime turns the kubelet's "containerd://<id>" into the id.
func trimRuntime(id string) string {
	if _, after, ok := strings.Cut(id, "://"); ok {
		return after
	}
	return id
}
