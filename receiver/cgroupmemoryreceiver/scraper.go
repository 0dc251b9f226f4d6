//go:build linux

package cgroupmemoryreceiver

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/scraper/scrapererror"
	"go.uber.org/zap"

	"github.com/oomsight/oomsight/internal/cgroupfs"
	"github.com/oomsight/oomsight/internal/events"
	"github.com/oomsight/oomsight/internal/identity"
	"github.com/oomsight/oomsight/internal/registry"
	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/metadata"
)

// metricsScraper turns one pass over the registry into metrics. The scraper
// controller calls scrape from one goroutine at a time.
type metricsScraper struct {
	logger *zap.Logger
	mb     *metadata.MetricsBuilder
	rb     *metadata.ResourceBuilder // reused: Emit hands its resource over
	reader *cgroupfs.Reader
	now    func() time.Time

	// Bound at Start.
	reg *registry.Registry
	tb  *metadata.TelemetryBuilder

	plain   []plainMetric     // fields recorded as they are read
	entries []*registry.Entry // reused between scrapes
	events  []registry.Event  // reused between cgroups
	sample  cgroupfs.Sample
	// watch, when set, keeps the cgroup's event sources in step with its
	// limit (events.Watcher.Watch); readOnly is set once v1 registration
	// was refused, so the fallback is logged once.
	watch    func(path string, limit uint64, hasLimit bool) error
	watchErr bool
	// peakReset is the peak_reset setting (v1); peakResetWarned is set once
	// a cgroup whose watermark cannot be reset was reported.
	peakReset, peakResetWarned bool
	news                       []error // files that newly failed in this scrape
	// resume is where in the registry's order the next scrape starts
	// (after a scrape cut by its deadline, with the cgroups it left out).
	resume int
	// kills books the oom_kill counters read by each collection; counts
	// are the OOM records per victim cgroup, exported with each collection.
	kills    *killWatch
	counts   *oomCounts
	readings map[string]uint64
}

// plainMetric is a metric whose value is one Sample field as it is.
type plainMetric struct {
	field   cgroupfs.Field
	record  func(pcommon.Timestamp, int64)
	enabled bool
}

func newMetricsScraper(cfg *Config, set receiver.Settings) *metricsScraper {
	mb := metadata.NewMetricsBuilder(cfg.MetricsBuilderConfig, set)
	m := cfg.Metrics
	s := &metricsScraper{
		logger:    set.Logger,
		mb:        mb,
		rb:        mb.NewResourceBuilder(),
		reader:    cgroupfs.NewReader(),
		peakReset: cfg.PeakReset,
		readings:  make(map[string]uint64),
		now:       time.Now,
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
		},
	}
	// Only the enabled ones are visited per sample.
	s.plain = slices.DeleteFunc(s.plain, func(p plainMetric) bool { return !p.enabled })
	return s
}

func (s *metricsScraper) bind(reg *registry.Registry, tb *metadata.TelemetryBuilder) {
	s.reg, s.tb = reg, tb
}

// scrape rediscovers the cgroups and reads each one. A cgroup that vanished
// since discovery is dropped quietly (and counted); a file that fails is
// logged the first time and its metrics are left out; neither fails the
// scrape. Only losing the whole hierarchy does.
func (s *metricsScraper) scrape(ctx context.Context) (pmetric.Metrics, error) {
	if s.reg == nil {
		return pmetric.NewMetrics(), errors.New("cgroupmemory: scrape before start")
	}
	ch, err := s.reg.Refresh()
	logSkipped(s.logger, ch.Skipped)
	if err != nil {
		if s.reg.Len() == 0 {
			return pmetric.NewMetrics(), err
		}
		s.logger.Warn("cgroup discovery incomplete; sampling the cgroups known so far", zap.Error(err))
	}

	s.entries = s.reg.Entries(s.entries[:0])
	var vanished, readErrors int64
	sampled := int64(0)
	unread := 0
	for i := range s.entries {
		if ctx.Err() != nil {
			// The scrape's deadline (timeout) passed: export what was read,
			// and start the next scrape with the cgroups left out, so that
			// a deadline too short for the node never starves the same ones.
			unread = len(s.entries) - i
			break
		}
		e := s.entries[(s.resume+i)%len(s.entries)]
		err := s.reader.Read(e.Cgroup, s.now(), &s.sample)
		if errors.Is(err, cgroupfs.ErrVanished) {
			s.reg.Drop(e.Path)
			vanished++
			continue
		}
		if err != nil {
			readErrors += s.noteFailures(e, err)
		} else {
			e.Recovered()
		}
		// Event samples taken since the last collection go out first, at
		// their own times; each data point's peak covers the time since
		// the one before.
		s.events = e.TakeEvents(s.events[:0])
		for i := range s.events {
			s.record(&s.events[i].Sample, s.events[i].Peak, true)
		}
		s.checkPeakReset(e)
		if k, ok := s.sample.Get(cgroupfs.OOMKills); ok && s.readings != nil {
			s.readings[e.Path] = k
		}
		p, ok := e.Full(&s.sample)
		s.record(&s.sample, p, ok)
		s.emit(e, e.SeriesStart(&s.sample))
		s.watchLimit(e)
		sampled++
	}
	clear(s.events)
	if len(s.entries) > 0 {
		s.resume = (s.resume + len(s.entries) - unread) % len(s.entries)
	}
	clear(s.entries) // do not pin closed cgroups until the next scrape
	if s.kills != nil {
		// Each counter is its cgroup's own (package killcount), so a cut
		// scrape books the cgroups it read; the unread ones keep counting
		// and are booked when next read.
		s.kills.book(s.readings, s.now())
		clear(s.readings)
	}
	var cut error
	if unread > 0 {
		cut = fmt.Errorf("scrape deadline passed with %d of %d cgroups not read (raise timeout, or collection_interval); they are read first next time: %w", unread, len(s.entries), ctx.Err())
	}
	if s.counts != nil {
		s.counts.emit(s.mb, pcommon.NewTimestampFromTime(s.now()))
	}

	if s.tb != nil {
		s.tb.CgroupmemoryCgroups.Record(ctx, sampled)
		if vanished > 0 {
			s.tb.CgroupmemoryCgroupsVanished.Add(ctx, vanished)
		}
		if readErrors > 0 {
			s.tb.CgroupmemoryReadErrors.Add(ctx, readErrors)
		}
	}
	return s.mb.Emit(), s.partial(cut, unread)
}

// noteFailures logs each failing file of e once, until it reads again, and
// returns how many files failed this time; the ones that newly failed are
// added to s.news for the scrape's partial error.
func (s *metricsScraper) noteFailures(e *registry.Entry, err error) int64 {
	var n int64
	for _, one := range unjoin(err) {
		n++
		var fe *cgroupfs.FileError
		file := ""
		if errors.As(one, &fe) {
			file = fe.File
		}
		if e.FirstFailure(file) {
			s.logger.Warn("cgroup memory file unreadable; its metrics are left out until it reads again",
				zap.String("cgroup.path", e.Path), zap.String("file", file), zap.Error(one))
			s.news = append(s.news, one)
		}
	}
	return n
}

// partial is the scrape's error: a scrapererror.PartialScrapeError for the
// files that newly failed and the unread cgroups a passed deadline left
// out (cut says so; the collector's scraper telemetry counts them and logs
// it), nil otherwise. A file that stays unreadable is reported on the
// scrape where it started failing, not on every scrape.
func (s *metricsScraper) partial(cut error, unread int) error {
	if len(s.news) == 0 && cut == nil {
		return nil
	}
	err := scrapererror.NewPartialScrapeError(errors.Join(append(s.news, cut)...), len(s.news)+unread)
	clear(s.news)
	s.news = s.news[:0]
	return err
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// checkPeakReset warns once when peak_reset is on but a v1 cgroup's
// watermark cannot be reset (a read-only mount).
func (s *metricsScraper) checkPeakReset(e *registry.Entry) {
	if !s.peakReset || s.peakResetWarned || e.Cgroup.PeakResets() || s.reg.Hierarchy().Version != cgroupfs.V1 {
		return
	}
	s.peakResetWarned = true
	s.logger.Warn("peak_reset: memory.max_usage_in_bytes cannot be written (read-only cgroup mount?); cgroup.memory.peak falls back to the fast samples, event samples and the lifetime peak",
		zap.String("cgroup.path", e.Path))
}

// watchLimit keeps the cgroup's event sources in step with its limit.
func (s *metricsScraper) watchLimit(e *registry.Entry) {
	if s.watch == nil {
		return
	}
	limit, limited := s.sample.Get(cgroupfs.Limit)
	err := s.watch(e.Path, limit, limited)
	switch {
	case err == nil:
	case errors.Is(err, events.ErrReadOnly):
		if !s.watchErr {
			s.logger.Warn("capture at the limit is off for cgroup v1: registering memory events needs write access to cgroup.event_control; the fast pass (sampling_interval) still samples usage", zap.Error(err))
		}
		s.watchErr = true
	default:
		s.logger.Debug("cgroup memory events not watched", zap.String("cgroup.path", e.Path), zap.Error(err))
	}
}

// record adds the data points of one sample, with the peak of the interval
// it closes (hasPeak false: none).
func (s *metricsScraper) record(smp *cgroupfs.Sample, peak uint64, hasPeak bool) {
	ts := pcommon.NewTimestampFromTime(smp.Time)
	for _, m := range s.plain {
		if v, ok := smp.Get(m.field); ok {
			m.record(ts, clampInt64(v))
		}
	}
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
}

// emit emits the data points recorded so far under the cgroup's resource,
// with the start time of its series.
func (s *metricsScraper) emit(e *registry.Entry, start time.Time) {
	setResource(s.rb, e.Path, e.Identity)
	s.mb.EmitForResource(metadata.WithResource(s.rb.Emit()), metadata.WithStartTimeOverride(pcommon.NewTimestampFromTime(start)))
}

// setResource sets the resource attributes of a cgroup: its path and what
// the path tells about the pod and container.
func setResource(rb *metadata.ResourceBuilder, path string, id identity.Identity) {
	rb.SetCgroupPath(path)
	if id.PodUID != "" {
		rb.SetK8sPodUID(id.PodUID)
	}
	switch id.QOSClass {
	case identity.QOSGuaranteed:
		rb.SetK8sPodQosClassGuaranteed()
	case identity.QOSBurstable:
		rb.SetK8sPodQosClassBurstable()
	case identity.QOSBestEffort:
		rb.SetK8sPodQosClassBestEffort()
	}
	if id.ContainerID != "" {
		rb.SetContainerID(id.ContainerID)
	}
	switch id.Runtime {
	case "containerd":
		rb.SetContainerRuntimeNameContainerd()
	case "cri-o":
		rb.SetContainerRuntimeNameCriO()
	case "docker":
		rb.SetContainerRuntimeNameDocker()
	case "podman":
		rb.SetContainerRuntimeNamePodman()
	}
}

func clampInt64(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}
