// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgroupmemoryreceiver

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/collector/scraper/scrapererror"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/oomsight/oomsight/internal/cgroupfs"
	"github.com/oomsight/oomsight/internal/discovery"
	"github.com/oomsight/oomsight/internal/sampler"
	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/metadata"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// fixtureScraper builds the sampler (without events or fast pass) and the
// scraper over a fixture tree, as Start would; tweak adjusts the sampler's
// options (its clock is fixed unless a tweak sets another).
func fixtureScraper(tb testing.TB, root string, cfg *Config, tweak ...func(*sampler.Options)) (*metricsScraper, *sampler.Sampler) {
	tb.Helper()
	h, err := cgroupfs.Detect(root)
	require.NoError(tb, err)
	f, err := discovery.NewFilter(cfg.Include, cfg.Exclude)
	require.NoError(tb, err)
	set := receivertest.NewNopSettings(metadata.Type)
	tel, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	require.NoError(tb, err)
	o := samplerOptions(cfg, h, f, zap.NewNop(), tel)
	o.Events, o.FastPass = false, false
	o.Now = func() time.Time { return time.Unix(1763800000, 0) }
	for _, fn := range tweak {
		fn(&o)
	}
	smp := sampler.New(o)
	_, err = smp.Start()
	require.NoError(tb, err)
	tb.Cleanup(smp.Close)
	s := newMetricsScraper(cfg, set, smp, tel)
	s.now = o.Now
	return s, smp
}

func allMetricsConfig() *Config {
	cfg := createDefaultConfig().(*Config)
	m := &cfg.Metrics
	m.CgroupMemoryMappedFile.Enabled = true
	m.CgroupMemoryKernel.Enabled = true
	m.CgroupMemorySock.Enabled = true
	m.CgroupMemorySlab.Enabled = true
	m.CgroupMemorySwap.Enabled = true
	m.CgroupMemoryPageFaults.Enabled = true
	m.CgroupMemoryPressureStallTime.Enabled = true
	m.CgroupMemoryPeakLifetime.Enabled = true
	m.CgroupMemoryWorkingsetRefaults.Enabled = true
	m.CgroupMemoryWorkingsetActivations.Enabled = true
	m.CgroupMemoryReclaimScanned.Enabled = true
	m.CgroupMemoryReclaimStolen.Enabled = true
	m.CgroupMemoryHigh.Enabled = true
	m.CgroupMemoryLow.Enabled = true
	m.CgroupMemoryMin.Enabled = true
	m.CgroupMemorySwapLimit.Enabled = true
	m.CgroupMemoryMemswLimit.Enabled = true
	m.CgroupMemoryMemswUsage.Enabled = true
	m.CgroupMemorySwapEvents.Enabled = true
	m.CgroupMemoryEventsSubtree.Enabled = true
	m.K8sContainerMemoryLimitUtilization.Enabled = true
	m.K8sPodMemoryLimitUtilization.Enabled = true
	return cfg
}

// TestScrapeGolden scrapes the captured v1 tree with every metric enabled
// and compares with the reviewed golden rendering.
func TestScrapeGolden(t *testing.T) {
	for _, tc := range []struct{ name, root string }{
		{"v1", "../../testdata/v1/root"},
		{"v2", "../../testdata/v2/cgroupfs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := fixtureScraper(t, tc.root, allMetricsConfig())
			md, err := s.scrape(t.Context())
			require.NoError(t, err)
			got := render(md)
			golden := filepath.Join("testdata", "golden", tc.name+".txt")
			if *update {
				require.NoError(t, os.MkdirAll(filepath.Dir(golden), 0o755))
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o600))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test -run TestScrapeGolden -update to create it")
			assert.Equal(t, string(want), got)
		})
	}
}

// TestScrapeV1Values checks the container of the v1 fixture against its
// raw files, independently of the golden rendering.
func TestScrapeV1Values(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Include = []string{"/kubepods/burstable/*/*"}
	s, _ := fixtureScraper(t, "../../testdata/v1/root", cfg)
	md, err := s.scrape(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, md.ResourceMetrics().Len())
	rm := md.ResourceMetrics().At(0)

	dir := "../../testdata/v1/root/memory/kubepods/burstable/pod0f5eb28f-6722-4cf5-ab0f-b62748c018d4/0dc1822caf9e150de25daa1cf572418426ce6b72757b5efdff52acef348368a3"
	raw := func(file string) int64 {
		b, readErr := os.ReadFile(filepath.Join(dir, file))
		require.NoError(t, readErr)
		v, readErr := cgroupfs.ParseUint(b)
		require.NoError(t, readErr)
		return int64(v)
	}
	b, err := os.ReadFile(filepath.Join(dir, "memory.stat"))
	require.NoError(t, err)
	stat, err := cgroupfs.ParseKeyValues(b)
	require.NoError(t, err)
	b, err = os.ReadFile(filepath.Join(dir, "memory.oom_control"))
	require.NoError(t, err)
	oomControl, err := cgroupfs.ParseKeyValues(b)
	require.NoError(t, err)

	attrs := rm.Resource().Attributes().AsRaw()
	assert.Equal(t, map[string]any{
		"cgroup.path":       "/kubepods/burstable/pod0f5eb28f-6722-4cf5-ab0f-b62748c018d4/0dc1822caf9e150de25daa1cf572418426ce6b72757b5efdff52acef348368a3",
		"k8s.pod.uid":       "0f5eb28f-6722-4cf5-ab0f-b62748c018d4",
		"k8s.pod.qos_class": "Burstable",
		"container.id":      "0dc1822caf9e150de25daa1cf572418426ce6b72757b5efdff52acef348368a3",
	}, attrs, "a plain cgroupfs path does not tell the runtime")

	vals := values(rm)
	assert.Equal(t, map[string]int64{
		"cgroup.memory.usage":       raw("memory.usage_in_bytes"),
		"cgroup.memory.working_set": raw("memory.usage_in_bytes") - int64(stat["total_inactive_file"]),
		"cgroup.memory.limit":       64 << 20,
		// The first data point's peak covers only the time since the
		// receiver started: no fast sample yet, so the usage itself.
		"cgroup.memory.peak":          raw("memory.usage_in_bytes"),
		"cgroup.memory.anon":          int64(stat["total_rss"]),
		"cgroup.memory.file":          int64(stat["total_cache"]),
		"cgroup.memory.active_file":   int64(stat["total_active_file"]),
		"cgroup.memory.inactive_file": int64(stat["total_inactive_file"]),
		"cgroup.memory.shmem":         8 << 20,
		"cgroup.memory.failcnt":       raw("memory.failcnt"),
		"cgroup.memory.oom_kills":     1,
		"cgroup.memory.under_oom":     int64(oomControl["under_oom"]),
		// v1: anonymous memory and shmem, no kernel part.
		"cgroup.memory.unreclaimable": int64(stat["total_rss"] + stat["total_shmem"]),
		// The semantic conventions' names of a container (docs/semconv.md).
		"container.memory.usage":       raw("memory.usage_in_bytes"),
		"container.memory.working_set": raw("memory.usage_in_bytes") - int64(stat["total_inactive_file"]),
		"container.memory.rss":         int64(stat["total_rss"]),
		"container.memory.available":   64<<20 - (raw("memory.usage_in_bytes") - int64(stat["total_inactive_file"])),
	}, vals)
	// One full sample under a 64 MiB limit: nothing rising towards it.
	assert.Equal(t, map[string]float64{"cgroup.memory.oom.eta": math.Inf(1)}, doubleValues(rm))
	assert.Equal(t, map[string]float64{
		"cgroup.memory.events{type=max}":      float64(raw("memory.failcnt")),
		"cgroup.memory.events{type=oom_kill}": float64(oomControl["oom_kill"]),
	}, typedValues(rm), "v1 has no low, high, oom or oom_group_kill")
}

// TestScrapeV2Values checks the systemd-shaped container of the v2 fixture
// (captured in the VM) against its raw files.
func TestScrapeV2Values(t *testing.T) {
	cfg := allMetricsConfig()
	cfg.Include = []string{"/kubepods.slice/**/*.scope"}
	s, _ := fixtureScraper(t, "../../testdata/v2/cgroupfs", cfg)
	md, err := s.scrape(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, md.ResourceMetrics().Len())
	rm := md.ResourceMetrics().At(0)

	const path = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-poddfc377c9_c533_4d51_af9e_6e0e0b3db83b.slice/cri-containerd-2260b35b008a15bd118e629c0c5d74e7f3a1fe18c724fbac61a54862fea196dc.scope"
	dir := "../../testdata/v2/cgroupfs" + path
	raw := func(file string) int64 {
		b, err := os.ReadFile(filepath.Join(dir, file))
		require.NoError(t, err)
		v, err := cgroupfs.ParseUint(b)
		require.NoError(t, err)
		return int64(v)
	}
	kv := func(file string) map[string]uint64 {
		b, err := os.ReadFile(filepath.Join(dir, file))
		require.NoError(t, err)
		m, err := cgroupfs.ParseKeyValues(b)
		require.NoError(t, err)
		return m
	}
	stat, events := kv("memory.stat"), kv("memory.events.local")
	treeEvents, swapEvents := kv("memory.events"), kv("memory.swap.events")

	assert.Equal(t, map[string]any{
		"cgroup.path":            path,
		"k8s.pod.uid":            "dfc377c9-c533-4d51-af9e-6e0e0b3db83b",
		"k8s.pod.qos_class":      "Burstable",
		"container.id":           "2260b35b008a15bd118e629c0c5d74e7f3a1fe18c724fbac61a54862fea196dc",
		"container.runtime.name": "containerd",
	}, rm.Resource().Attributes().AsRaw())

	vals := values(rm)
	want := map[string]int64{
		"cgroup.memory.usage":           raw("memory.current"),
		"cgroup.memory.working_set":     raw("memory.current") - int64(stat["inactive_file"]),
		"cgroup.memory.peak":            raw("memory.current"), // first data point: since start
		"cgroup.memory.peak.lifetime":   raw("memory.peak"),
		"cgroup.memory.anon":            int64(stat["anon"]),
		"cgroup.memory.file":            int64(stat["file"]),
		"cgroup.memory.active_file":     int64(stat["active_file"]),
		"cgroup.memory.inactive_file":   int64(stat["inactive_file"]),
		"cgroup.memory.shmem":           int64(stat["shmem"]),
		"cgroup.memory.mapped_file":     int64(stat["file_mapped"]),
		"cgroup.memory.kernel":          int64(stat["kernel"]),
		"cgroup.memory.sock":            int64(stat["sock"]),
		"cgroup.memory.slab":            int64(stat["slab"]),
		"cgroup.memory.swap":            raw("memory.swap.current"),
		"cgroup.memory.failcnt":         int64(events["max"]),
		"cgroup.memory.oom_kills":       int64(events["oom_kill"]),
		"cgroup.memory.reclaim.scanned": int64(stat["pgscan"]),
		"cgroup.memory.reclaim.stolen":  int64(stat["pgsteal"]),
		// memory.high and memory.swap.max read "max": no data point.
		"cgroup.memory.low": raw("memory.low"),
		"cgroup.memory.min": raw("memory.min"),
		"cgroup.memory.unreclaimable": int64(stat["anon"] + stat["shmem"] + stat["slab_unreclaimable"] +
			stat["kernel_stack"] + stat["pagetables"] + stat["percpu"] + stat["sock"]),
		// The semantic conventions' names of a container; no limit, so
		// no container.memory.available.
		"container.memory.usage":       raw("memory.current"),
		"container.memory.working_set": raw("memory.current") - int64(stat["inactive_file"]),
		"container.memory.rss":         int64(stat["anon"]),
	}
	assert.Equal(t, want, vals, "the container's memory.max is \"max\": no limit metric")
	assert.Empty(t, doubleValues(rm), "no oom.eta: no limit applies among the watched cgroups (its pod is not included)")
	assert.NotZero(t, stat["pgscan"], "the capture made reclaim scan")

	typed := typedValues(rm)
	wantTyped := map[string]float64{}
	for _, k := range []string{"low", "high", "max", "oom", "oom_kill", "oom_group_kill"} {
		v, ok := events[k]
		require.True(t, ok, "memory.events.local has %s", k)
		wantTyped["cgroup.memory.events{type="+k+"}"] = float64(v)
		v, ok = treeEvents[k]
		require.True(t, ok, "memory.events has %s", k)
		wantTyped["cgroup.memory.events.subtree{type="+k+"}"] = float64(v)
	}
	for _, k := range []string{"high", "max", "fail"} {
		v, ok := swapEvents[k]
		require.True(t, ok, "memory.swap.events has %s", k)
		wantTyped["cgroup.memory.swap.events{type="+k+"}"] = float64(v)
	}
	for _, k := range []string{"anon", "file"} {
		wantTyped["cgroup.memory.workingset.refaults{type="+k+"}"] = float64(stat["workingset_refault_"+k])
		wantTyped["cgroup.memory.workingset.activations{type="+k+"}"] = float64(stat["workingset_activate_"+k])
	}
	for kind, p := range pressureByStrconv(t, filepath.Join(dir, "memory.pressure")) {
		wantTyped["cgroup.memory.pressure.avg10{type="+kind+"}"] = p[0] / 100
		wantTyped["cgroup.memory.pressure.stall_time{type="+kind+"}"] = p[1] / 1e6
	}
	wantTyped["cgroup.memory.page_faults{type=major}"] = float64(stat["pgmajfault"])
	wantTyped["cgroup.memory.page_faults{type=minor}"] = float64(stat["pgfault"] - stat["pgmajfault"])
	assert.InDeltaMapValues(t, wantTyped, typed, 1e-9)
	for _, k := range []string{"anon", "file", "active_file", "inactive_file", "shmem"} {
		assert.NotZero(t, stat[k], "the capture made %s non-zero", k)
	}
}

// TestScrapeChurnAndBadFiles: a cgroup removed between discovery and
// reading is dropped quietly; a file that stays bad is logged once and its
// metrics are left out, while the rest of the cgroup is still reported.
func TestScrapeChurnAndBadFiles(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.CopyFS(root, os.DirFS("../../testdata/v1/root")))
	core, logs := observer.New(zap.WarnLevel)
	s, reg := fixtureScraper(t, root, createDefaultConfig().(*Config), func(o *sampler.Options) { o.Logger = zap.New(core) })

	md, err := s.scrape(t.Context())
	require.NoError(t, err)
	before := md.ResourceMetrics().Len()
	require.Equal(t, 9, before)

	ctr := "/kubepods/burstable/pod0f5eb28f-6722-4cf5-ab0f-b62748c018d4/0dc1822caf9e150de25daa1cf572418426ce6b72757b5efdff52acef348368a3"
	bad := filepath.Join(reg.Hierarchy().Abs(ctr), "memory.limit_in_bytes")
	require.NoError(t, os.WriteFile(bad, []byte("garbage\n"), 0o600))
	for i := range 3 {
		md, err = s.scrape(t.Context())
		if i == 0 {
			// The scrape where the file starts failing reports it to the
			// collector's scraper telemetry as a partial error.
			require.True(t, scrapererror.IsPartialScrapeError(err), "%v", err)
			var pe scrapererror.PartialScrapeError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, 1, pe.Failed)
			assert.ErrorContains(t, err, "memory.limit_in_bytes")
			continue
		}
		require.NoError(t, err, "not again while it stays bad")
	}
	assert.Equal(t, 1, logs.FilterMessageSnippet("unreadable").Len(), "logged once, not every scrape")
	rm := find(md, ctr)
	require.NotNil(t, rm)
	vals := values(*rm)
	assert.NotContains(t, vals, "cgroup.memory.limit")
	assert.Contains(t, vals, "cgroup.memory.usage")
}

func find(md pmetric.Metrics, path string) *pmetric.ResourceMetrics {
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		rm := md.ResourceMetrics().At(i)
		if p, ok := rm.Resource().Attributes().Get("cgroup.path"); ok && p.Str() == path {
			return &rm
		}
	}
	return nil
}

// values maps metric name to value for the attribute-less metrics of rm:
// the newest data point's, which is the collection sample's (event
// samples, older, come first).
func values(rm pmetric.ResourceMetrics) map[string]int64 {
	out := map[string]int64{}
	sms := rm.ScopeMetrics()
	for i := 0; i < sms.Len(); i++ {
		ms := sms.At(i).Metrics()
		for j := 0; j < ms.Len(); j++ {
			m := ms.At(j)
			var dps pmetric.NumberDataPointSlice
			switch m.Type() {
			case pmetric.MetricTypeSum:
				dps = m.Sum().DataPoints()
			case pmetric.MetricTypeGauge:
				dps = m.Gauge().DataPoints()
			default:
				continue
			}
			if n := dps.Len(); n > 0 && dps.At(n-1).Attributes().Len() == 0 && dps.At(n-1).ValueType() == pmetric.NumberDataPointValueTypeInt {
				out[m.Name()] = dps.At(n - 1).IntValue()
			}
		}
	}
	return out
}

// doubleValues returns the last value of every double data point without
// attributes of rm (cgroup.memory.oom.eta), by metric name.
func doubleValues(rm pmetric.ResourceMetrics) map[string]float64 {
	out := map[string]float64{}
	sms := rm.ScopeMetrics()
	for i := 0; i < sms.Len(); i++ {
		ms := sms.At(i).Metrics()
		for j := 0; j < ms.Len(); j++ {
			m := ms.At(j)
			if m.Type() != pmetric.MetricTypeGauge {
				continue
			}
			dps := m.Gauge().DataPoints()
			if n := dps.Len(); n > 0 && dps.At(n-1).Attributes().Len() == 0 && dps.At(n-1).ValueType() == pmetric.NumberDataPointValueTypeDouble {
				out[m.Name()] = dps.At(n - 1).DoubleValue()
			}
		}
	}
	return out
}

// typedValues returns the last value of every data point with attributes
// of rm, keyed name{key=value} (one attribute: every attributed metric of
// the receiver has one).
func typedValues(rm pmetric.ResourceMetrics) map[string]float64 {
	out := map[string]float64{}
	sms := rm.ScopeMetrics()
	for i := 0; i < sms.Len(); i++ {
		ms := sms.At(i).Metrics()
		for j := 0; j < ms.Len(); j++ {
			m := ms.At(j)
			var dps pmetric.NumberDataPointSlice
			switch m.Type() {
			case pmetric.MetricTypeSum:
				dps = m.Sum().DataPoints()
			case pmetric.MetricTypeGauge:
				dps = m.Gauge().DataPoints()
			default:
				continue
			}
			for k := 0; k < dps.Len(); k++ {
				dp := dps.At(k)
				if dp.Attributes().Len() != 1 {
					continue
				}
				key := m.Name()
				dp.Attributes().Range(func(k string, v pcommon.Value) bool {
					key += "{" + k + "=" + v.AsString() + "}"
					return true
				})
				if dp.ValueType() == pmetric.NumberDataPointValueTypeDouble {
					out[key] = dp.DoubleValue()
				} else {
					out[key] = float64(dp.IntValue())
				}
			}
		}
	}
	return out
}

// pressureByStrconv reads a PSI file with strings and strconv, apart from
// the receiver's parser: kind (some, full) to {avg10 in percent, total in
// microseconds}.
func pressureByStrconv(t *testing.T, path string) map[string][2]float64 {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	out := map[string][2]float64{}
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		require.Len(t, f, 5, line)
		avg, err := strconv.ParseFloat(strings.TrimPrefix(f[1], "avg10="), 64)
		require.NoError(t, err)
		total, err := strconv.ParseFloat(strings.TrimPrefix(f[4], "total="), 64)
		require.NoError(t, err)
		out[f[0]] = [2]float64{avg, total}
	}
	return out
}

// render prints metrics in a stable, reviewable text form: one block per
// resource, one line per data point, timestamps left out (checked apart).
func render(md pmetric.Metrics) string {
	var b strings.Builder
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		fmt.Fprintf(&b, "resource %s\n", attrString(rm.Resource().Attributes()))
		var lines []string
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				var dps pmetric.NumberDataPointSlice
				kind := ""
				switch m.Type() {
				case pmetric.MetricTypeSum:
					dps = m.Sum().DataPoints()
					kind = fmt.Sprintf("sum(%s,monotonic=%t)", m.Sum().AggregationTemporality(), m.Sum().IsMonotonic())
				case pmetric.MetricTypeGauge:
					dps = m.Gauge().DataPoints()
					kind = "gauge"
				}
				for d := 0; d < dps.Len(); d++ {
					dp := dps.At(d)
					var v string
					if dp.ValueType() == pmetric.NumberDataPointValueTypeDouble {
						v = fmt.Sprintf("%g", dp.DoubleValue())
					} else {
						v = fmt.Sprintf("%d", dp.IntValue())
					}
					attrs := ""
					if dp.Attributes().Len() > 0 {
						attrs = " {" + attrString(dp.Attributes()) + "}"
					}
					lines = append(lines, fmt.Sprintf("  %s %s %s%s = %s", m.Name(), kind, m.Unit(), attrs, v))
				}
			}
		}
		sort.Strings(lines)
		b.WriteString(strings.Join(lines, "\n"))
		b.WriteString("\n")
	}
	return b.String()
}

func attrString(m pcommon.Map) string {
	var kv []string
	for k, v := range m.All() {
		kv = append(kv, k+"="+v.AsString())
	}
	sort.Strings(kv)
	return strings.Join(kv, " ")
}

// seriesCgroup is the container whose failcnt series TestSeriesStart follows.
const seriesCgroup = "/kubepods/burstable/pod0f5eb28f-6722-4cf5-ab0f-b62748c018d4/0dc1822caf9e150de25daa1cf572418426ce6b72757b5efdff52acef348368a3"

// startOf returns the start timestamp of seriesCgroup's failcnt data point.
func startOf(t *testing.T, md pmetric.Metrics) time.Time {
	t.Helper()
	rm := find(md, seriesCgroup)
	require.NotNil(t, rm, "no %s", seriesCgroup)
	ms := rm.ScopeMetrics().At(0).Metrics()
	for i := 0; i < ms.Len(); i++ {
		if ms.At(i).Name() == "cgroup.memory.failcnt" {
			return ms.At(i).Sum().DataPoints().At(0).StartTimestamp().AsTime()
		}
	}
	t.Fatal("no failcnt")
	return time.Time{}
}

// TestSeriesStart: cumulative series start when the cgroup instance was
// first seen; a counter that went down, or the cgroup removed and created
// again under the same path, starts a new series (no bogus drop for
// backends and cumulativetodelta).
func TestSeriesStart(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.CopyFS(root, os.DirFS("../../testdata/v1/root")))
	cfg := createDefaultConfig().(*Config)
	const ctr = seriesCgroup
	now := time.Unix(1763800000, 0)
	before := time.Now()
	s, reg := fixtureScraper(t, root, cfg, func(o *sampler.Options) { o.Now = func() time.Time { return now } })
	md, err := s.scrape(t.Context())
	require.NoError(t, err)
	first := startOf(t, md)
	assert.False(t, first.Before(before.Add(-time.Second)), "first seen just now")

	now = now.Add(time.Second)
	md, err = s.scrape(t.Context())
	require.NoError(t, err)
	assert.Equal(t, first, startOf(t, md), "same series")

	dir := reg.Hierarchy().Abs(ctr)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "memory.failcnt"), []byte("1\n"), 0o600))
	prev := now
	now = now.Add(time.Second)
	md, err = s.scrape(t.Context())
	require.NoError(t, err)
	assert.True(t, prev.Equal(startOf(t, md)), "failcnt went down: a new series from the previous sample")

	// cgroupfs makes a cgroup's files with its directory; a copy made in
	// place would show the directory first, and the sampler, which
	// registers a cgroup at its creation event, would find no memory files
	// in it. So the copy is made aside and put in place by one rename.
	staged := filepath.Join(t.TempDir(), "cgroup")
	require.NoError(t, os.CopyFS(staged, os.DirFS(dir)))
	require.NoError(t, os.RemoveAll(dir))
	require.NoError(t, os.Rename(staged, dir))
	recreated := time.Now()
	now = now.Add(time.Second)
	md, err = s.scrape(t.Context())
	require.NoError(t, err)
	assert.False(t, startOf(t, md).Before(recreated.Add(-10*time.Millisecond)), "recreated: a new instance, a new series")
}

// expiring is a context whose deadline passes after its Err has been asked
// a given number of times: a scrape cut at an exact cgroup, without timing.
type expiring struct {
	context.Context
	left int
}

func (c *expiring) Err() error {
	if c.left <= 0 {
		return context.DeadlineExceeded
	}
	c.left--
	return nil
}

// TestScrapeHonoursDeadline: a scrape whose deadline passes exports the
// cgroups read so far with a partial error that says how many were left
// out, and the next scrape starts with those, so that a deadline too short
// for the node never starves the same cgroups.
func TestScrapeHonoursDeadline(t *testing.T) {
	s, reg := fixtureScraper(t, "../../testdata/v1/root", createDefaultConfig().(*Config))
	all := reg.Paths(nil)
	n := len(all)
	require.Equal(t, 9, n)
	paths := func(md pmetric.Metrics) []string {
		var out []string
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			p, _ := md.ResourceMetrics().At(i).Resource().Attributes().Get("cgroup.path")
			out = append(out, p.Str())
		}
		return out
	}

	first, err := s.scrape(&expiring{Context: t.Context(), left: 4})
	var pe scrapererror.PartialScrapeError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, n-4, pe.Failed)
	assert.ErrorContains(t, err, "scrape deadline passed with 5 of 9 cgroups not read")
	assert.ErrorContains(t, err, context.DeadlineExceeded.Error())
	require.Len(t, paths(first), 4)

	second, err := s.scrape(&expiring{Context: t.Context(), left: 5})
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 4, pe.Failed)
	got := append(paths(first), paths(second)...)
	sort.Strings(got)
	assert.Equal(t, all, got, "the second scrape read the five the first left out")

	third, err := s.scrape(t.Context())
	require.NoError(t, err, "a whole scrape reports nothing")
	assert.Len(t, paths(third), n)
}
