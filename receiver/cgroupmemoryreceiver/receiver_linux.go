package cgroupmemoryreceiver

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/scraper"
	"go.opentelemetry.io/collector/scraper/scraperhelper"
	"go.uber.org/zap"

	"github.com/oomsight/oomsight/internal/cgroupfs"
	"github.com/oomsight/oomsight/internal/discovery"
	"github.com/oomsight/oomsight/internal/sampler"
	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/metadata"
)

// cgroupReceiver is the one instance behind every pipeline of a
// configuration. Start builds what the pipelines attached need, each part
// once and with its collaborators: the sampler (with a metrics pipeline),
// the metrics scraper over it, and the OOM pipeline (with a logs
// pipeline, or a metrics pipeline that counts OOM records), which uses the
// sampler when there is one.
type cgroupReceiver struct {
	cfg     *Config
	set     receiver.Settings
	release func() // forgets this instance in its factory

	nextMetrics consumer.Metrics // the metrics pipeline; nil without one
	nextLogs    consumer.Logs    // the logs pipeline; nil without one

	startOnce    sync.Once
	startErr     error
	shutdownOnce sync.Once

	// Built by Start.
	tb      *metadata.TelemetryBuilder
	smp     *sampler.Sampler // nil without a metrics pipeline
	metrics receiver.Metrics // the scraper controller; nil without a metrics pipeline
	oom     *oomPipeline     // nil unless OOM records are emitted or counted
}

func newCgroupReceiver(cfg *Config, set receiver.Settings, release func()) *cgroupReceiver {
	return &cgroupReceiver{cfg: cfg, set: set, release: release}
}

// attachMetrics adds the metrics pipeline.
func (r *cgroupReceiver) attachMetrics(next consumer.Metrics) error {
	if r.nextMetrics != nil {
		return errors.New("cgroupmemory: metrics pipeline attached twice")
	}
	r.nextMetrics = next
	return nil
}

// attachLogs adds the logs pipeline: kernel OOM reports as log records.
func (r *cgroupReceiver) attachLogs(next consumer.Logs) error {
	if r.nextLogs != nil {
		return errors.New("cgroupmemory: logs pipeline attached twice")
	}
	r.nextLogs = next
	return nil
}

// Start detects the memory hierarchy, discovers the cgroups and starts the
// pipelines. It runs once however many pipelines share the instance.
func (r *cgroupReceiver) Start(ctx context.Context, host component.Host) error {
	r.startOnce.Do(func() { r.startErr = r.start(ctx, host) })
	return r.startErr
}

func (r *cgroupReceiver) start(ctx context.Context, host component.Host) error {
	var err error
	r.tb, err = metadata.NewTelemetryBuilder(r.set.TelemetrySettings)
	if err != nil {
		return fmt.Errorf("cgroupmemory: telemetry: %w", err)
	}
	// Only a metrics pipeline starts the sampler: a logs-only receiver
	// holds no cgroup open, and its records have no climb (see
	// docs/architecture.md).
	if r.nextMetrics != nil {
		if err := r.startMetrics(ctx, host); err != nil {
			return err
		}
	}
	// The kernel log is read when records are emitted (a logs pipeline)
	// or counted (a metrics pipeline with cgroup.memory.oom_kill.records):
	// reading it is the receiver's business, so a metrics-only receiver
	// counts every kill too, also of a cgroup removed before the next
	// collection.
	emit := r.nextLogs != nil && r.cfg.Events.LinuxOomKill.Enabled
	count := r.smp != nil && r.cfg.Metrics.CgroupMemoryOomKillRecords.Enabled
	if r.nextLogs != nil && (!r.cfg.OOM.Enabled || !r.cfg.Events.LinuxOomKill.Enabled) {
		r.set.Logger.Warn("cgroupmemory is in a logs pipeline but oom.enabled or events.linux.oom_kill.enabled is false: no OOM records will be emitted")
	}
	if !r.cfg.OOM.Enabled || (!emit && !count) {
		return nil
	}
	var src killSource = noSampler{}
	if r.smp != nil {
		src = r.smp
	}
	oom := r.cfg.OOM
	var next consumer.Logs
	if emit {
		next = r.nextLogs
	} else {
		// Counting only: nothing is delivered, so there is no checkpoint
		// to keep; reading starts at the end of the kernel log, as the
		// counts start at zero with the receiver.
		oom.CheckpointFile = ""
	}
	r.oom = newOOMPipeline(oom, r.set, next, r.tb, r.cfg.ResourceAttributes, src)
	if err := r.oom.start(host); err != nil {
		r.oom = nil
		return err
	}
	return nil
}

// startMetrics detects the hierarchy, starts the sampler and the scraper
// controller over it.
func (r *cgroupReceiver) startMetrics(ctx context.Context, host component.Host) error {
	h, err := cgroupfs.Detect(r.cfg.RootPath)
	if err != nil {
		return fmt.Errorf("cgroupmemory: root_path %q: %w; set root_path to where the host's cgroup filesystem is mounted (/sys/fs/cgroup, or /host/sys/fs/cgroup in a DaemonSet)", r.cfg.RootPath, err)
	}
	filter, err := discovery.NewFilter(r.cfg.Include, r.cfg.Exclude)
	if err != nil {
		return fmt.Errorf("cgroupmemory: %w", err)
	}
	smp := sampler.New(samplerOptions(r.cfg, h, filter, r.set.Logger, r.tb))
	ch, err := smp.Start()
	if err != nil {
		return fmt.Errorf("cgroupmemory: %w", err)
	}
	r.set.Logger.Info("cgroup memory hierarchy found",
		zap.String("root_path", r.cfg.RootPath),
		zap.String("version", h.Version.String()),
		zap.String("dir", h.Dir),
		zap.Int("cgroups", ch.Added),
		zap.Stringer("collection_interval", r.cfg.CollectionInterval),
		zap.Stringer("sampling_interval", r.cfg.SamplingInterval),
		zap.Bool("events", smp.Events()))
	sampler.LogSkipped(r.set.Logger, ch.Skipped)
	if !smp.FastPass() && r.cfg.SamplingInterval > 0 {
		r.set.Logger.Info("fast pass off: sampling_interval is not shorter than collection_interval, and every collection reads usage",
			zap.Stringer("sampling_interval", r.cfg.SamplingInterval), zap.Stringer("collection_interval", r.cfg.CollectionInterval))
	}
	ms := newMetricsScraper(r.cfg, r.set, smp, r.tb)
	sc, err := scraper.NewMetrics(ms.scrape)
	if err == nil {
		r.metrics, err = scraperhelper.NewMetricsController(&r.cfg.ControllerConfig, r.set, r.nextMetrics,
			scraperhelper.AddMetricsScraper(metadata.Type, sc))
	}
	if err == nil {
		err = r.metrics.Start(ctx, host)
	}
	if err != nil {
		r.metrics = nil
		smp.Close()
		return err
	}
	r.smp = smp
	return nil
}

// samplerOptions are the sampler's options for a configuration.
func samplerOptions(cfg *Config, h cgroupfs.Hierarchy, filter *discovery.Filter, logger *zap.Logger, tb *metadata.TelemetryBuilder) sampler.Options {
	o := sampler.Options{
		Hierarchy:        h,
		Filter:           filter,
		Optional:         optionalFiles(cfg),
		SamplingInterval: cfg.SamplingInterval,
		FastPass:         fastPassOn(cfg),
		PeakReset:        cfg.PeakReset,
		Events:           true,
		ETA:              cfg.Metrics.CgroupMemoryOomEta.Enabled,
		Logger:           logger,
		EventSampled:     func() { tb.CgroupmemoryEventSamples.Add(context.Background(), 1) },
	}
	return o
}

// fastPassOn reports whether the fast pass runs: it is asked for and
// faster than the collection. Where it is not, each collection already
// reads usage as often, and a second read of the same file would only cost
// (one pread per cgroup per tick: at 1000 cgroups and 100 ms, about 4 % of
// a core on the CI machine).
func fastPassOn(cfg *Config) bool {
	return cfg.SamplingInterval > 0 && cfg.SamplingInterval < cfg.CollectionInterval
}

// Shutdown stops the pipelines and closes every cgroup. It is safe to call
// without Start and more than once.
func (r *cgroupReceiver) Shutdown(ctx context.Context) error {
	var err error
	r.shutdownOnce.Do(func() {
		if r.oom != nil {
			err = r.oom.shutdown(ctx)
		}
		if r.metrics != nil {
			err = errors.Join(err, r.metrics.Shutdown(ctx))
		}
		if r.smp != nil {
			r.smp.Close()
		}
		if r.tb != nil {
			r.tb.Shutdown()
		}
		r.release()
	})
	return err
}

// optionalFiles opens the files that only some metrics need only when one
// of those metrics is enabled (a file whose metrics are all disabled is
// never read), and asks for the v1 peak reset when configured.
func optionalFiles(cfg *Config) cgroupfs.Optional {
	m := cfg.Metrics
	var opt cgroupfs.Optional
	if cfg.PeakReset {
		opt |= cgroupfs.WithPeakReset
	}
	if m.CgroupMemoryPeakLifetime.Enabled {
		opt |= cgroupfs.WithLifetimePeak
	}
	if m.CgroupMemoryKernel.Enabled {
		opt |= cgroupfs.WithKernel
	}
	if m.CgroupMemorySwap.Enabled {
		opt |= cgroupfs.WithSwap
	}
	if m.CgroupMemoryPressureStallTime.Enabled || m.CgroupMemoryPressureAvg10.Enabled {
		opt |= cgroupfs.WithPressure
	}
	if m.CgroupMemoryHigh.Enabled || m.CgroupMemoryLow.Enabled || m.CgroupMemoryMin.Enabled {
		opt |= cgroupfs.WithQoS
	}
	if m.CgroupMemorySwapLimit.Enabled || m.CgroupMemoryMemswLimit.Enabled {
		opt |= cgroupfs.WithSwapLimit
	}
	if m.CgroupMemorySwapEvents.Enabled {
		opt |= cgroupfs.WithSwapEvents
	}
	if m.CgroupMemoryMemswUsage.Enabled {
		opt |= cgroupfs.WithMemswUsage
	}
	if m.CgroupMemoryEventsSubtree.Enabled {
		opt |= cgroupfs.WithTreeEvents
	}
	return opt
}
