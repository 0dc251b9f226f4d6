// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgroupmemoryreceiver

import (
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/oomsight/oomsight/internal/cgroupfs"
	"github.com/oomsight/oomsight/internal/identity"
)

// TestSemconvDerived: container.memory.available and the limit
// utilization are kubelet's and kubeletstats' arithmetic on a sample.
func TestSemconvDerived(t *testing.T) {
	sample := func(usage, ws, limit int64) *cgroupfs.Sample {
		var s cgroupfs.Sample
		for f, v := range map[cgroupfs.Field]int64{cgroupfs.Usage: usage, cgroupfs.WorkingSet: ws, cgroupfs.Limit: limit} {
			if v >= 0 {
				s.Set(f, uint64(v))
			}
		}
		return &s
	}
	for _, tc := range []struct {
		name             string
		usage, ws, limit int64 // -1: absent
		avail            int64 // -1: none
		util             float64
		hasUtil          bool
	}{
		{"under the limit", 48 << 20, 40 << 20, 64 << 20, 24 << 20, 0.75, true},
		{"no limit", 48 << 20, 40 << 20, -1, -1, 0, false},
		{"limit lowered below the working set", 80 << 20, 70 << 20, 64 << 20, 0, 1.25, true},
		{"working set at the limit", 64 << 20, 64 << 20, 64 << 20, 0, 1, true},
		{"zero limit", 0, 0, 0, 0, 0, false},
		{"no working set read", 48 << 20, -1, 64 << 20, -1, 0.75, true},
		{"no usage read", -1, 40 << 20, 64 << 20, 24 << 20, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := sample(tc.usage, tc.ws, tc.limit)
			a, ok := available(s)
			assert.Equal(t, tc.avail >= 0, ok, "available present")
			if ok {
				assert.Equal(t, uint64(tc.avail), a)
			}
			u, ok := limitUtilization(s)
			assert.Equal(t, tc.hasUtil, ok, "utilization present")
			assert.InDelta(t, tc.util, u, 1e-12)
		})
	}
}

// TestKindOf: the cgroup paths of the captured fixtures (and the shapes of
// DESIGN's kernel facts) by kind: only a container's cgroup and a pod's own
// get semantic-convention names, never a QoS level or the root.
func TestKindOf(t *testing.T) {
	for _, tc := range []struct {
		path string
		want cgroupKind
	}{
		{
			path: "/",
			want: kindOther,
		},
		{
			path: "/kubepods",
			want: kindOther,
		},
		{
			path: "/kubepods/burstable",
			want: kindOther,
		},
		{
			path: "/kubepods/burstable/pod0f5eb28f-6722-4cf5-ab0f-b62748c018d4",
			want: kindPod,
		},
		{
			path: "/kubepods/burstable/pod0f5eb28f-6722-4cf5-ab0f-b62748c018d4/0dc1822caf9e150de25daa1cf572418426ce6b72757b5efdff52acef348368a3",
			want: kindContainer,
		},
		{
			path: "/kubepods.slice/kubepods-burstable.slice",
			want: kindOther,
		},
		{
			path: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-poddfc377c9_c533_4d51_af9e_6e0e0b3db83b.slice",
			want: kindPod,
		},
		{
			path: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-poddfc377c9_c533_4d51_af9e_6e0e0b3db83b.slice/cri-containerd-2260b35b008a15bd118e629c0c5d74e7f3a1fe18c724fbac61a54862fea196dc.scope",
			want: kindContainer,
		},
		// A plain container outside Kubernetes is a container too.
		{
			path: "/system.slice/docker-2260b35b008a15bd118e629c0c5d74e7f3a1fe18c724fbac61a54862fea196dc.scope",
			want: kindContainer,
		},
		{
			path: "/system.slice/kubelet.service",
			want: kindOther,
		},
	} {
		assert.Equal(t, tc.want, kindOf(identity.FromPath(tc.path)), tc.path)
	}
}

// TestSemconvOnCapturedTree scrapes the captured v1 tree (cgroupfs and
// systemd kubelet layouts side by side): each pod cgroup carries exactly
// the k8s.pod.memory.* names, each container cgroup exactly the
// container.memory.* ones, with the values of the cgroup.memory.* metrics
// beside them; a metric switched off in the configuration is not emitted.
func TestSemconvOnCapturedTree(t *testing.T) {
	names := func(cfg *Config) map[string]string {
		s, _ := fixtureScraper(t, "../../testdata/v1/root", cfg)
		md, err := s.scrape(t.Context())
		require.NoError(t, err)
		out := map[string]string{}
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			rm := md.ResourceMetrics().At(i)
			path, _ := rm.Resource().Attributes().Get("cgroup.path")
			vals := values(rm)
			var got []string
			for name, v := range vals {
				base, ok := mirrorOf(name)
				if !ok {
					continue
				}
				got = append(got, name)
				if base != "" {
					assert.Equal(t, vals[base], v, "%s: %s mirrors %s", path.Str(), name, base)
				}
			}
			sort.Strings(got)
			out[path.Str()] = strings.Join(got, " ")
		}
		return out
	}
	const (
		pod1 = "/kubepods/burstable/pod0f5eb28f-6722-4cf5-ab0f-b62748c018d4"
		ctr1 = pod1 + "/0dc1822caf9e150de25daa1cf572418426ce6b72757b5efdff52acef348368a3"
		pod2 = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-poddfc377c9_c533_4d51_af9e_6e0e0b3db83b.slice"
		ctr2 = pod2 + "/cri-containerd-2260b35b008a15bd118e629c0c5d74e7f3a1fe18c724fbac61a54862fea196dc.scope"
	)
	got := names(createDefaultConfig().(*Config))
	assert.Equal(t, map[string]string{
		"/": "", "/kubepods": "", "/kubepods/burstable": "", "/kubepods.slice": "", "/kubepods.slice/kubepods-burstable.slice": "",
		// pod1 has no limit (its container limits only itself): no available.
		pod1: "k8s.pod.memory.rss k8s.pod.memory.usage k8s.pod.memory.working_set",
		ctr1: "container.memory.available container.memory.rss container.memory.usage container.memory.working_set",
		pod2: "k8s.pod.memory.available k8s.pod.memory.rss k8s.pod.memory.usage k8s.pod.memory.working_set",
		ctr2: "container.memory.rss container.memory.usage container.memory.working_set",
	}, got, "defaults: the four release-candidate names on pods and containers, utilization off")

	cfg := createDefaultConfig().(*Config)
	cfg.Metrics.ContainerMemoryWorkingSet.Enabled = false
	cfg.Metrics.K8sPodMemoryUsage.Enabled = false
	cfg.Metrics.K8sPodMemoryRss.Enabled = false
	cfg.Metrics.K8sPodMemoryWorkingSet.Enabled = false
	cfg.Metrics.K8sPodMemoryAvailable.Enabled = false
	got = names(cfg)
	assert.Empty(t, got[pod1], "k8s.pod.memory.* switched off")
	assert.Empty(t, got[pod2], "k8s.pod.memory.* switched off")
	assert.Equal(t, "container.memory.available container.memory.rss container.memory.usage", got[ctr1], "container.memory.working_set switched off")
}

// mirrorOf tells whether name is a semantic-convention metric and which
// cgroup.memory.* metric has its value ("" when it is derived).
func mirrorOf(name string) (base string, ok bool) {
	for _, prefix := range []string{"container.memory.", "k8s.pod.memory."} {
		if rest, found := strings.CutPrefix(name, prefix); found {
			switch rest {
			case "usage", "working_set":
				return "cgroup.memory." + rest, true
			case "rss":
				return "cgroup.memory.anon", true
			}
			return "", true
		}
	}
	return "", false
}

// BenchmarkSemconvScrape is the cost of the semantic-convention names: a
// full scrape of the captured v1 tree's two pods and two containers with
// the defaults (on) and with every container.memory.* and k8s.pod.memory.*
// switched off, run interleaved by -count (docs/semconv.md), with the
// size of the OTLP message each scrape makes.
func BenchmarkSemconvScrape(b *testing.B) {
	for _, on := range []bool{true, false} {
		b.Run(map[bool]string{true: "semconv=on", false: "semconv=off"}[on], func(b *testing.B) {
			cfg := createDefaultConfig().(*Config)
			cfg.Include = []string{"/kubepods/burstable/*", "/kubepods/burstable/*/*", "/kubepods.slice/*/*.slice", "/kubepods.slice/*/*.slice/*.scope"}
			if !on {
				m := &cfg.Metrics
				for _, mc := range []*bool{
					&m.ContainerMemoryUsage.Enabled, &m.ContainerMemoryWorkingSet.Enabled, &m.ContainerMemoryRss.Enabled, &m.ContainerMemoryAvailable.Enabled,
					&m.K8sPodMemoryUsage.Enabled, &m.K8sPodMemoryWorkingSet.Enabled, &m.K8sPodMemoryRss.Enabled, &m.K8sPodMemoryAvailable.Enabled,
				} {
					*mc = false
				}
			}
			s, _ := fixtureScraper(b, "../../testdata/v1/root", cfg)
			ctx := b.Context()
			points, size := 0, 0
			var sizer pmetric.ProtoMarshaler
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				md, err := s.scrape(ctx)
				if err != nil {
					b.Fatal(err)
				}
				points, size = md.DataPointCount(), sizer.MetricsSize(md)
			}
			b.ReportMetric(float64(points), "points/scrape")
			b.ReportMetric(float64(size), "otlp-bytes/scrape")
		})
	}
}
