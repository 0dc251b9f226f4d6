// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgroupmemoryreceiver // import "github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver"

import (
	"context"
	"errors"
	"math"
	"slices"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/scraper/scrapererror"

	"github.com/oomsight/oomsight/internal/cgroupfs"
	"github.com/oomsight/oomsight/internal/identity"
	"github.com/oomsight/oomsight/internal/sampler"
	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/metadata"
	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/resource"
)

// collector is what the metrics scraper needs of the sampler: one
// collection at a time, and the OOM record counts to export with it.
type collector interface {
	Collect(ctx context.Context, visit func(*sampler.Collected)) (sampler.Pass, error)
	RecordCounts(fn func(path string, start time.Time, c sampler.Counts))
}

// metricsScraper turns each collection of the sampler into metrics: it
// records and emits, and reads no file itself. The scraper controller calls
// scrape from one goroutine at a time.
type metricsScraper struct {
	smp   collector
	tb    *metadata.TelemetryBuilder
	mb    *metadata.MetricsBuilder
	rb    *metadata.ResourceBuilder // reused: Emit hands its resource over
	now   func() time.Time
	plain []plainMetric // fields recorded as they are read
	// The semantic-convention names of container and pod cgroups, by kind.
	semconv [numKinds]semconvMetrics
	visit   func(*sampler.Collected)
}

// plainMetric is a metric whose value is one Sample field as it is.
type plainMetric struct {
	field   cgroupfs.Field
	record  func(pcommon.Timestamp, int64)
	enabled bool
}

// bind binds an attributed metric's recorder to one value of its
// attribute, so that each value is a plain field.
func bind[A any](rec func(pcommon.Timestamp, int64, A), v A) func(pcommon.Timestamp, int64) {
	return func(ts pcommon.Timestamp, n int64) { rec(ts, n, v) }
}

func newMetricsScraper(cfg *Config, set receiver.Settings, smp collector, tb *metadata.TelemetryBuilder) *metricsScraper {
	mb := metadata.NewMetricsBuilder(cfg.MetricsBuilderConfig, set)
	m := cfg.Metrics
	s := &metricsScraper{
		smp: smp,
		tb:  tb,
		mb:  mb,
		rb:  mb.NewResourceBuilder(),
		now: time.Now,
		plain: []plainMetric{
			{cgroupfs.Usage, mb.RecordCgroupMemoryUsageDataPoint, m.CgroupMemoryUsage.Enabled},
			{cgroupfs.WorkingSet, mb.RecordCgroupMemoryWorkingSetDataPoint, m.CgroupMemoryWorkingSet.Enabled},
			{cgroupfs.Limit, mb.RecordCgroupMemoryLimitDataPoint, m.CgroupMemoryLimit.Enabled},
			{cgroupfs.PeakLifetime, mb.RecordCgroupMemoryPeakLifetimeDataPoint, m.CgroupMemoryPeakLifetime.Enabled},
			{cgroupfs.Anon, mb.RecordCgroupMemoryAnonDataPoint, m.CgroupMemoryAnon.Enabled},
			{cgroupfs.File, mb.RecordCgroupMemoryFileDataPoint, m.CgroupMemoryFile.Enabled},
			{cgroupfs.ActiveFile, mb.RecordCgroupMemoryActiveFileDataPoint, m.CgroupMemoryActiveFile.Enabled},
			{cgroupfs.InactiveFile, mb.RecordCgroupMemoryInactiveFileDataPoint, m.CgroupMemoryInactiveFile.Enabled},
			{cgroupfs.Shmem, mb.RecordCgroupMemoryShmemDataPoint, m.CgroupMemoryShmem.Enabled},
			{cgroupfs.Failcnt, mb.RecordCgroupMemoryFailcntDataPoint, m.CgroupMemoryFailcnt.Enabled},
			{cgroupfs.OOMKills, mb.RecordCgroupMemoryOomKillsDataPoint, m.CgroupMemoryOomKills.Enabled},
			{cgroupfs.MappedFile, mb.RecordCgroupMemoryMappedFileDataPoint, m.CgroupMemoryMappedFile.Enabled},
			{cgroupfs.Kernel, mb.RecordCgroupMemoryKernelDataPoint, m.CgroupMemoryKernel.Enabled},
			{cgroupfs.Sock, mb.RecordCgroupMemorySockDataPoint, m.CgroupMemorySock.Enabled},
			{cgroupfs.Slab, mb.RecordCgroupMemorySlabDataPoint, m.CgroupMemorySlab.Enabled},
			{cgroupfs.Swap, mb.RecordCgroupMemorySwapDataPoint, m.CgroupMemorySwap.Enabled},
			{cgroupfs.UnderOOM, mb.RecordCgroupMemoryUnderOomDataPoint, m.CgroupMemoryUnderOom.Enabled},
			{cgroupfs.PgScan, mb.RecordCgroupMemoryReclaimScannedDataPoint, m.CgroupMemoryReclaimScanned.Enabled},
			{cgroupfs.PgSteal, mb.RecordCgroupMemoryReclaimStolenDataPoint, m.CgroupMemoryReclaimStolen.Enabled},
			{cgroupfs.High, mb.RecordCgroupMemoryHighDataPoint, m.CgroupMemoryHigh.Enabled},
			{cgroupfs.Low, mb.RecordCgroupMemoryLowDataPoint, m.CgroupMemoryLow.Enabled},
			{cgroupfs.Min, mb.RecordCgroupMemoryMinDataPoint, m.CgroupMemoryMin.Enabled},
			{cgroupfs.SwapLimit, mb.RecordCgroupMemorySwapLimitDataPoint, m.CgroupMemorySwapLimit.Enabled},
			{cgroupfs.MemswLimit, mb.RecordCgroupMemoryMemswLimitDataPoint, m.CgroupMemoryMemswLimit.Enabled},
			{cgroupfs.MemswUsage, mb.RecordCgroupMemoryMemswUsageDataPoint, m.CgroupMemoryMemswUsage.Enabled},
			{cgroupfs.Unreclaimable, mb.RecordCgroupMemoryUnreclaimableDataPoint, m.CgroupMemoryUnreclaimable.Enabled},
			// Metrics with a type attribute: one field per value.
			{cgroupfs.EventsLow, bind(mb.RecordCgroupMemoryEventsDataPoint, metadata.AttributeMemoryEventTypeLow), m.CgroupMemoryEvents.Enabled},
			{cgroupfs.EventsHigh, bind(mb.RecordCgroupMemoryEventsDataPoint, metadata.AttributeMemoryEventTypeHigh), m.CgroupMemoryEvents.Enabled},
			{cgroupfs.Failcnt, bind(mb.RecordCgroupMemoryEventsDataPoint, metadata.AttributeMemoryEventTypeMax), m.CgroupMemoryEvents.Enabled},
			{cgroupfs.EventsOOM, bind(mb.RecordCgroupMemoryEventsDataPoint, metadata.AttributeMemoryEventTypeOom), m.CgroupMemoryEvents.Enabled},
			{cgroupfs.OOMKills, bind(mb.RecordCgroupMemoryEventsDataPoint, metadata.AttributeMemoryEventTypeOomKill), m.CgroupMemoryEvents.Enabled},
			{cgroupfs.EventsOOMGroupKill, bind(mb.RecordCgroupMemoryEventsDataPoint, metadata.AttributeMemoryEventTypeOomGroupKill), m.CgroupMemoryEvents.Enabled},
			{cgroupfs.TreeEventsLow, bind(mb.RecordCgroupMemoryEventsSubtreeDataPoint, metadata.AttributeMemoryEventTypeLow), m.CgroupMemoryEventsSubtree.Enabled},
			{cgroupfs.TreeEventsHigh, bind(mb.RecordCgroupMemoryEventsSubtreeDataPoint, metadata.AttributeMemoryEventTypeHigh), m.CgroupMemoryEventsSubtree.Enabled},
			{cgroupfs.TreeEventsMax, bind(mb.RecordCgroupMemoryEventsSubtreeDataPoint, metadata.AttributeMemoryEventTypeMax), m.CgroupMemoryEventsSubtree.Enabled},
			{cgroupfs.TreeEventsOOM, bind(mb.RecordCgroupMemoryEventsSubtreeDataPoint, metadata.AttributeMemoryEventTypeOom), m.CgroupMemoryEventsSubtree.Enabled},
			{cgroupfs.TreeEventsOOMKill, bind(mb.RecordCgroupMemoryEventsSubtreeDataPoint, metadata.AttributeMemoryEventTypeOomKill), m.CgroupMemoryEventsSubtree.Enabled},
			{cgroupfs.TreeEventsOOMGroupKill, bind(mb.RecordCgroupMemoryEventsSubtreeDataPoint, metadata.AttributeMemoryEventTypeOomGroupKill), m.CgroupMemoryEventsSubtree.Enabled},
			{cgroupfs.SwapEventsHigh, bind(mb.RecordCgroupMemorySwapEventsDataPoint, metadata.AttributeSwapEventTypeHigh), m.CgroupMemorySwapEvents.Enabled},
			{cgroupfs.SwapEventsMax, bind(mb.RecordCgroupMemorySwapEventsDataPoint, metadata.AttributeSwapEventTypeMax), m.CgroupMemorySwapEvents.Enabled},
			{cgroupfs.SwapEventsFail, bind(mb.RecordCgroupMemorySwapEventsDataPoint, metadata.AttributeSwapEventTypeFail), m.CgroupMemorySwapEvents.Enabled},
			{cgroupfs.RefaultAnon, bind(mb.RecordCgroupMemoryWorkingsetRefaultsDataPoint, metadata.AttributeLruTypeAnon), m.CgroupMemoryWorkingsetRefaults.Enabled},
			{cgroupfs.RefaultFile, bind(mb.RecordCgroupMemoryWorkingsetRefaultsDataPoint, metadata.AttributeLruTypeFile), m.CgroupMemoryWorkingsetRefaults.Enabled},
			{cgroupfs.ActivateAnon, bind(mb.RecordCgroupMemoryWorkingsetActivationsDataPoint, metadata.AttributeLruTypeAnon), m.CgroupMemoryWorkingsetActivations.Enabled},
			{cgroupfs.ActivateFile, bind(mb.RecordCgroupMemoryWorkingsetActivationsDataPoint, metadata.AttributeLruTypeFile), m.CgroupMemoryWorkingsetActivations.Enabled},
		},
	}
	// Only the enabled ones are visited per sample.
	s.plain = slices.DeleteFunc(s.plain, func(p plainMetric) bool { return !p.enabled })
	s.semconv = newSemconvMetrics(mb, &cfg.Metrics)
	s.visit = s.cgroup
	return s
}

// scrape runs one collection of the sampler and turns it into metrics.
// Vanished cgroups and failing files do not fail the scrape (the files
// that newly failed and the cgroups a passed deadline left out make it a
// partial one); only losing the whole hierarchy does.
func (s *metricsScraper) scrape(ctx context.Context) (pmetric.Metrics, error) {
	pass, err := s.smp.Collect(ctx, s.visit)
	if err != nil {
		return pmetric.NewMetrics(), err
	}
	s.emitRecordCounts(pcommon.NewTimestampFromTime(s.now()))
	s.tb.CgroupmemoryCgroups.Record(ctx, pass.Sampled)
	if pass.Vanished > 0 {
		s.tb.CgroupmemoryCgroupsVanished.Add(ctx, pass.Vanished)
	}
	if pass.ReadErrors > 0 {
		s.tb.CgroupmemoryReadErrors.Add(ctx, pass.ReadErrors)
	}
	return s.mb.Emit(), partial(pass)
}

// cgroup records and emits one cgroup of a collection: the event samples
// taken since the last collection first, at their own times (each event
// point's peak covers the time since the one before), then the
// collection's, whose peak covers the whole collection interval.
func (s *metricsScraper) cgroup(c *sampler.Collected) {
	sc := &s.semconv[kindOf(c.Identity)]
	for i := range c.Events {
		s.record(&c.Events[i].Sample, c.Events[i].Peak, true, sc)
	}
	s.record(c.Sample, c.Peak, c.HasPeak, sc)
	if c.HasETA {
		s.mb.RecordCgroupMemoryOomEtaDataPoint(pcommon.NewTimestampFromTime(c.Sample.Time), c.ETA)
	}
	resource.Set(s.rb, c.Path, c.Identity)
	s.mb.EmitForResource(metadata.WithResource(s.rb.Emit()), metadata.WithStartTimeOverride(pcommon.NewTimestampFromTime(c.Start)))
}

// partial is the scrape's error: a scrapererror.PartialScrapeError for the
// files that newly failed and the unread cgroups a passed deadline left
// out (the collector's scraper telemetry counts them and logs it), nil
// otherwise. A file that stays unreadable is reported on the scrape where
// it started failing, not on every scrape.
func partial(p sampler.Pass) error {
	if len(p.NewFailures) == 0 && p.Cut == nil {
		return nil
	}
	return scrapererror.NewPartialScrapeError(errors.Join(append(p.NewFailures, p.Cut)...), len(p.NewFailures)+p.Unread)
}

// record adds the data points of one sample, with the peak of the interval
// it closes (hasPeak false: none), and the semantic-convention ones of the
// cgroup's kind.
func (s *metricsScraper) record(smp *cgroupfs.Sample, peak uint64, hasPeak bool, sc *semconvMetrics) {
	ts := pcommon.NewTimestampFromTime(smp.Time)
	for _, m := range s.plain {
		if v, ok := smp.Get(m.field); ok {
			m.record(ts, clampInt64(v))
		}
	}
	sc.record(ts, smp)
	if hasPeak {
		s.mb.RecordCgroupMemoryPeakDataPoint(ts, clampInt64(peak))
	}
	if all, ok := smp.Get(cgroupfs.PgFault); ok {
		if major, ok := smp.Get(cgroupfs.PgMajFault); ok && major <= all {
			s.mb.RecordCgroupMemoryPageFaultsDataPoint(ts, clampInt64(major), metadata.AttributeFaultTypeMajor)
			s.mb.RecordCgroupMemoryPageFaultsDataPoint(ts, clampInt64(all-major), metadata.AttributeFaultTypeMinor)
		}
	}
	if v, ok := smp.Get(cgroupfs.PressureSome); ok {
		s.mb.RecordCgroupMemoryPressureStallTimeDataPoint(ts, float64(v)/1e6, metadata.AttributeStallTypeSome)
	}
	if v, ok := smp.Get(cgroupfs.PressureFull); ok {
		s.mb.RecordCgroupMemoryPressureStallTimeDataPoint(ts, float64(v)/1e6, metadata.AttributeStallTypeFull)
	}
	if v, ok := smp.Get(cgroupfs.PressureSomeAvg10); ok {
		s.mb.RecordCgroupMemoryPressureAvg10DataPoint(ts, float64(v)/1e4, metadata.AttributeStallTypeSome)
	}
	if v, ok := smp.Get(cgroupfs.PressureFullAvg10); ok {
		s.mb.RecordCgroupMemoryPressureAvg10DataPoint(ts, float64(v)/1e4, metadata.AttributeStallTypeFull)
	}
}

// emitRecordCounts records cgroup.memory.oom_kill.records and
// cgroup.memory.oom_kill.survived (where the container survived a kill) at
// ts, one resource per cgroup with OOM records, whether it still exists or
// not.
func (s *metricsScraper) emitRecordCounts(ts pcommon.Timestamp) {
	s.smp.RecordCounts(func(path string, start time.Time, c sampler.Counts) {
		for cause, n := range c.ByCause {
			s.mb.RecordCgroupMemoryOomKillRecordsDataPoint(ts, n, cause)
		}
		if c.Survived > 0 {
			s.mb.RecordCgroupMemoryOomKillSurvivedDataPoint(ts, c.Survived)
		}
		rb := s.mb.NewResourceBuilder()
		resource.Set(rb, path, identity.FromPath(path))
		s.mb.EmitForResource(metadata.WithResource(rb.Emit()), metadata.WithStartTimeOverride(pcommon.NewTimestampFromTime(start)))
	})
}

// clampInt64 converts a counter to an OTLP int, saturating at MaxInt64.
func clampInt64(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}
