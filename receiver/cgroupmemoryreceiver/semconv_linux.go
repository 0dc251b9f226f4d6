// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgroupmemoryreceiver // import "github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver"

import (
	"slices"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/oomsight/oomsight/internal/cgroupfs"
	"github.com/oomsight/oomsight/internal/identity"
	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/metadata"
)

// cgroupKind says which semantic-convention metrics a cgroup carries
// (docs/semconv.md): container.memory.* on a container's cgroup,
// k8s.pod.memory.* on a pod's, none elsewhere. kubeletstats keys the same
// names on the same two levels, so its dashboards find one series per
// container and per pod, never one per QoS slice or per node.
type cgroupKind uint8

const (
	kindOther cgroupKind = iota
	kindContainer
	kindPod
	numKinds
)

// kindOf tells a cgroup's kind from what its path tells: a container id
// makes it a container (a pod's container or a plain docker/podman one),
// a pod uid without one the pod's own cgroup.
func kindOf(id identity.Identity) cgroupKind {
	switch {
	case id.ContainerID != "":
		return kindContainer
	case id.PodUID != "":
		return kindPod
	}
	return kindOther
}

// semconvMetrics are the enabled recorders of one kind's
// semantic-convention metrics; all empty for kindOther.
type semconvMetrics struct {
	plain       []plainMetric // usage, working_set, rss: one field as it is
	available   func(pcommon.Timestamp, int64)
	utilization func(pcommon.Timestamp, float64)
}

// newSemconvMetrics binds each kind's recorders, leaving out the ones the
// configuration disables.
func newSemconvMetrics(mb *metadata.MetricsBuilder, m *metadata.MetricsConfig) [numKinds]semconvMetrics {
	var k [numKinds]semconvMetrics
	k[kindContainer] = semconvMetrics{
		plain: enabledOnly([]plainMetric{
			{cgroupfs.Usage, mb.RecordContainerMemoryUsageDataPoint, m.ContainerMemoryUsage.Enabled},
			{cgroupfs.WorkingSet, mb.RecordContainerMemoryWorkingSetDataPoint, m.ContainerMemoryWorkingSet.Enabled},
			{cgroupfs.Anon, mb.RecordContainerMemoryRssDataPoint, m.ContainerMemoryRss.Enabled},
		}),
	}
	if m.ContainerMemoryAvailable.Enabled {
		k[kindContainer].available = mb.RecordContainerMemoryAvailableDataPoint
	}
	if m.K8sContainerMemoryLimitUtilization.Enabled {
		k[kindContainer].utilization = mb.RecordK8sContainerMemoryLimitUtilizationDataPoint
	}
	k[kindPod] = semconvMetrics{
		plain: enabledOnly([]plainMetric{
			{cgroupfs.Usage, mb.RecordK8sPodMemoryUsageDataPoint, m.K8sPodMemoryUsage.Enabled},
			{cgroupfs.WorkingSet, mb.RecordK8sPodMemoryWorkingSetDataPoint, m.K8sPodMemoryWorkingSet.Enabled},
			{cgroupfs.Anon, mb.RecordK8sPodMemoryRssDataPoint, m.K8sPodMemoryRss.Enabled},
		}),
	}
	if m.K8sPodMemoryAvailable.Enabled {
		k[kindPod].available = mb.RecordK8sPodMemoryAvailableDataPoint
	}
	if m.K8sPodMemoryLimitUtilization.Enabled {
		k[kindPod].utilization = mb.RecordK8sPodMemoryLimitUtilizationDataPoint
	}
	return k
}

func enabledOnly(ms []plainMetric) []plainMetric {
	return slices.DeleteFunc(ms, func(p plainMetric) bool { return !p.enabled })
}

// record adds one sample's data points under the kind's names.
func (sm *semconvMetrics) record(ts pcommon.Timestamp, smp *cgroupfs.Sample) {
	for _, m := range sm.plain {
		if v, ok := smp.Get(m.field); ok {
			m.record(ts, clampInt64(v))
		}
	}
	if sm.available != nil {
		if v, ok := available(smp); ok {
			sm.available(ts, clampInt64(v))
		}
	}
	if sm.utilization != nil {
		if v, ok := limitUtilization(smp); ok {
			sm.utilization(ts, v)
		}
	}
}

// available is kubelet's AvailableBytes: the limit minus the working set,
// floored at 0 (a limit lowered below the usage); none without a limit.
func available(smp *cgroupfs.Sample) (uint64, bool) {
	limit, ok := smp.Get(cgroupfs.Limit)
	if !ok {
		return 0, false
	}
	ws, ok := smp.Get(cgroupfs.WorkingSet)
	if !ok {
		return 0, false
	}
	if ws >= limit {
		return 0, true
	}
	return limit - ws, true
}

// limitUtilization is kubeletstats' memory_limit_utilization: usage over
// the limit (not the working set); none without a limit or with a zero one.
func limitUtilization(smp *cgroupfs.Sample) (float64, bool) {
	limit, ok := smp.Get(cgroupfs.Limit)
	if !ok || limit == 0 {
		return 0, false
	}
	usage, ok := smp.Get(cgroupfs.Usage)
	if !ok {
		return 0, false
	}
	return float64(usage) / float64(limit), true
}
