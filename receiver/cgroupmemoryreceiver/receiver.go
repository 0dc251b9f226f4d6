//go:build linux

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
	"github.com/oomsight/oomsight/internal/events"
	"github.com/oomsight/oomsight/internal/registry"
	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/metadata"
)

// cgroupReceiver is the one instance behind every pipeline of a
// configuration. It owns the registry of live cgroups; the metrics scraper
// (and, with the OOM work, the kmsg reader) use it.
type cgroupReceiver struct {
	cfg     *Config
	set     receiver.Settings
	release func() // forgets this instance in its factory

	metrics receiver.Metrics // the scraper controller; nil without a metrics pipeline
	scraper *metricsScraper
	logs    consumer.Logs // the logs pipeline; nil without one
	oom     *oomPipeline  // running while the logs pipeline reads OOM reports

	startOnce    sync.Once
	startErr     error
	shutdownOnce sync.Once

	// Set by Start.
	hier    cgroupfs.Hierarchy // the memory hierarchy, with a metrics pipeline
	reg     *registry.Registry
	tb      *metadata.TelemetryBuilder
	fast    *fastPass       // nil when sampling_interval is 0
	watcher *events.Watcher // nil when events could not be set up
	sampler *eventSampler
	kills   *killWatch
	// counts are the OOM records per victim cgroup, shared by the OOM
	// pipeline (adds) and the scraper (exports).
	counts *oomCounts
}

func newCgroupReceiver(cfg *Config, set receiver.Settings, release func()) *cgroupReceiver {
	return &cgroupReceiver{cfg: cfg, set: set, release: release, counts: newOOMCounts()}
}

// attachMetrics wires the metrics pipeline: a scraper controller calling the
// scraper at collection_interval.
func (r *cgroupReceiver) attachMetrics(next consumer.Metrics) error {
	if r.metrics != nil {
		return errors.New("cgroupmemory: metrics pipeline attached twice")
	}
	r.scraper = newMetricsScraper(r.cfg, r.set)
	sc, err := scraper.NewMetrics(r.scraper.scrape)
	if err != nil {
		return err
	}
	ctrl, err := scraperhelper.NewMetricsController(&r.cfg.ControllerConfig, r.set, next,
		scraperhelper.AddMetricsScraper(metadata.Type, sc))
	if err != nil {
		return err
	}
	r.metrics = ctrl
	return nil
}

// attachLogs wires the logs pipeline: kernel OOM reports as log records.
func (r *cgroupReceiver) attachLogs(next consumer.Logs) error {
	if r.logs != nil {
		return errors.New("cgroupmemory: logs pipeline attached twice")
	}
	r.logs = next
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
	// Only the metrics pipeline samples cgroups; a logs-only receiver holds
	// none of them open.
	if r.metrics != nil {
		if err := r.startMetrics(ctx, host); err != nil {
			return err
		}
	}
	switch {
	case r.logs != nil && r.cfg.OOM.Enabled && r.cfg.Events.LinuxOomKill.Enabled:
		r.oom = newOOMPipeline(r.cfg.OOM, r.set, r.logs, r.tb, r.cfg.ResourceAttributes)
		if r.reg != nil {
			r.oom.history = r.reg.History
			r.oom.kills = r.kills
			r.oom.counts = r.counts
			if r.hier.Version == cgroupfs.V2 { // memory.oom.group is v2's
				dir := r.hier.Dir
				r.oom.oomGroup = func(taskMemcg, memcg string) bool { return oomGroupSet(dir, taskMemcg, memcg) }
			}
		}
		if err := r.oom.start(host); err != nil {
			r.oom = nil
			return err
		}
	case r.logs != nil:
		r.set.Logger.Warn("cgroupmemory is in a logs pipeline but oom.enabled or events.linux.oom_kill.enabled is false: no OOM records will be emitted")
	}
	return nil
}

// startMetrics detects the hierarchy, opens the cgroups and starts the
// scraper controller.
func (r *cgroupReceiver) startMetrics(ctx context.Context, host component.Host) error {
	h, err := cgroupfs.Detect(r.cfg.RootPath)
	if err != nil {
		return fmt.Errorf("cgroupmemory: root_path %q: %w; set root_path to where the host's cgroup filesystem is mounted (/sys/fs/cgroup, or /host/sys/fs/cgroup in a DaemonSet)", r.cfg.RootPath, err)
	}
	filter, err := discovery.NewFilter(r.cfg.Include, r.cfg.Exclude)
	if err != nil {
		return fmt.Errorf("cgroupmemory: %w", err)
	}
	r.hier = h
	r.reg = registry.New(h, filter, optionalFiles(r.cfg), r.cfg.SamplingInterval)
	r.kills = newKillWatch(r.reg)
	r.reg.OnRemove = r.kills.forget
	r.startEvents(h)
	ch, err := r.reg.Refresh()
	if err != nil {
		r.stopSamplers()
		r.reg.Close()
		r.reg = nil
		return fmt.Errorf("cgroupmemory: %w", err)
	}
	r.set.Logger.Info("cgroup memory hierarchy found",
		zap.String("root_path", r.cfg.RootPath),
		zap.String("version", h.Version.String()),
		zap.String("dir", h.Dir),
		zap.Int("cgroups", ch.Added),
		zap.Stringer("collection_interval", r.cfg.CollectionInterval),
		zap.Stringer("sampling_interval", r.cfg.SamplingInterval),
		zap.Bool("events", r.watcher != nil))
	logSkipped(r.set.Logger, ch.Skipped)
	r.scraper.bind(r.reg, r.tb)
	r.scraper.kills = r.kills
	r.scraper.counts = r.counts
	if r.watcher != nil {
		r.scraper.watch = r.watcher.Watch
	}
	if fastPassOn(r.cfg) {
		r.fast = newFastPass(r.reg, r.cfg.SamplingInterval)
		r.fast.start()
	} else if r.cfg.SamplingInterval > 0 {
		r.set.Logger.Info("fast pass off: sampling_interval is not shorter than collection_interval, and every collection reads usage",
			zap.Stringer("sampling_interval", r.cfg.SamplingInterval), zap.Stringer("collection_interval", r.cfg.CollectionInterval))
	}
	if err := r.metrics.Start(ctx, host); err != nil {
		r.stopSamplers()
		return err
	}
	return nil
}

// fastPassOn reports whether the fast pass runs: it is asked for and
// faster than the collection. Where it is not, each collection already
// reads usage as often, and a second read of the same file would only cost
// (one pread per cgroup per tick: at 1000 cgroups and 100 ms, about 4 % of
// a core on the CI machine).
func fastPassOn(cfg *Config) bool {
	return cfg.SamplingInterval > 0 && cfg.SamplingInterval < cfg.CollectionInterval
}

// startEvents sets up capture at the limit: one goroutine waiting for the
// hierarchy's limit and OOM events. Without it the receiver still works,
// on the fast pass and the collection alone.
func (r *cgroupReceiver) startEvents(h cgroupfs.Hierarchy) {
	r.sampler = newEventSampler(r.reg, r.tb, r.set.Logger, r.kills)
	w, err := events.New(h, r.sampler.on)
	if err != nil {
		r.set.Logger.Warn("capture at the limit is off: cannot wait for cgroup memory events; the fast pass still samples", zap.Error(err))
		return
	}
	r.watcher = w
	r.reg.OnRemove = func(path string) {
		w.Unwatch(path)
		r.kills.forget(path)
	}
	go w.Run()
}

// stopSamplers stops the fast pass and the event watcher.
func (r *cgroupReceiver) stopSamplers() {
	if r.fast != nil {
		r.fast.shutdown()
		r.fast = nil
	}
	if r.watcher != nil {
		r.watcher.Close(true)
		r.watcher = nil
	}
	if r.sampler != nil {
		r.sampler.stop()
	}
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
		r.stopSamplers()
		if r.reg != nil {
			r.reg.Close()
		}
		if r.tb != nil {
			r.tb.Shutdown()
		}
		r.release()
	})
	return err
}

// optionalFiles opens the files that only disabled-by-default metrics need
// only when those metrics are enabled, and asks for the v1 peak reset when
// configured.
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
	if m.CgroupMemoryPressureStallTime.Enabled {
		opt |= cgroupfs.WithPressure
	}
	return opt
}

func logSkipped(logger *zap.Logger, skipped []error) {
	for _, err := range skipped {
		logger.Warn("cgroup left out: its memory files cannot be opened", zap.Error(err))
	}
}
