// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgroupmemoryreceiver // import "github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver"

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/scraper"
	"go.opentelemetry.io/collector/scraper/scraperhelper"
	"go.uber.org/zap"

	"github.com/oomsight/oomsight/internal/cgroupfs"
	"github.com/oomsight/oomsight/internal/discovery"
	"github.com/oomsight/oomsight/internal/procsnap"
	"github.com/oomsight/oomsight/internal/sampler"
	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/metadata"
	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/oompipeline"
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
	smp     *sampler.Sampler      // nil without a metrics pipeline
	metrics receiver.Metrics      // the scraper controller; nil without a metrics pipeline
	oom     *oompipeline.Pipeline // nil unless OOM records are emitted or counted
	// snaps takes the process snapshots (nil: off); nearMiss is the OOM
	// pipeline that emits near-limit records, set once it runs (nil: none).
	snaps    *procsnap.Snapper
	nearMiss atomic.Pointer[oompipeline.Pipeline]
	// proc is the procfs the snapshots read (procRoot; a field so that a
	// test can present another pid namespace's).
	proc string
}

func newCgroupReceiver(cfg *Config, set receiver.Settings, release func()) *cgroupReceiver {
	return &cgroupReceiver{cfg: cfg, set: set, release: release, proc: procRoot}
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
	// or counted (a metrics pipeline with cgroup.memory.oom_kill.records
	// or .survived):
	// reading it is the receiver's business, so a metrics-only receiver
	// counts every kill too, also of a cgroup removed before the next
	// collection.
	emit := r.nextLogs != nil && r.cfg.Events.LinuxOomKill.Enabled
	count := r.smp != nil && (r.cfg.Metrics.CgroupMemoryOomKillRecords.Enabled || r.cfg.Metrics.CgroupMemoryOomKillSurvived.Enabled)
	if r.nextLogs != nil && (!r.cfg.OOM.Enabled || !r.cfg.Events.LinuxOomKill.Enabled) {
		r.set.Logger.Warn("cgroupmemory is in a logs pipeline but oom.enabled or events.linux.oom_kill.enabled is false: no OOM records will be emitted")
	}
	if !r.cfg.OOM.Enabled || (!emit && !count) {
		return nil
	}
	o := oompipeline.Options{
		KmsgPath:       r.cfg.OOM.KmsgPath,
		CheckpointFile: r.cfg.OOM.CheckpointFile,
		MaxTasks:       r.cfg.OOM.MaxTasks,
		Telemetry:      r.tb,
		Resource:       r.cfg.ResourceAttributes,
	}
	if r.smp != nil {
		o.Sampler = r.smp
	}
	if emit {
		o.Next = r.nextLogs
		if r.snaps != nil {
			o.Snapshots = r.snaps
		}
	} else {
		// Counting only: nothing is delivered, so there is no checkpoint
		// to keep; reading starts at the end of the kernel log, as the
		// counts start at zero with the receiver.
		o.CheckpointFile = ""
	}
	r.oom = oompipeline.New(r.set, o)
	if err := r.oom.Start(host); err != nil {
		r.oom = nil
		return err
	}
	if r.snaps != nil && emit && r.cfg.Events.LinuxMemoryNearLimit.Enabled {
		r.nearMiss.Store(r.oom)
	}
	return nil
}

// snapshotsOn reports whether process snapshots are taken: asked for, and
// carried by records (a logs pipeline that emits OOM records: without the
// kills, every near-limit episode would look like a near miss).
func (r *cgroupReceiver) snapshotsOn() bool {
	c := r.cfg
	on := c.Processes.Enabled && r.nextLogs != nil && c.OOM.Enabled && c.Events.LinuxOomKill.Enabled
	if !on && c.Events.LinuxMemoryNearLimit.Enabled {
		r.set.Logger.Warn("events.linux.memory.near_limit is enabled but no near-limit record will be emitted: it needs processes.enabled, oom.enabled, events.linux.oom_kill.enabled and a logs pipeline")
	}
	return on
}

// newSnapper builds the process snapshots of the hierarchy h, counted in
// the receiver's telemetry; near misses go to the OOM pipeline once it
// runs with near-limit records on.
func (r *cgroupReceiver) newSnapper(h cgroupfs.Hierarchy) *procsnap.Snapper {
	capture, _ := procsnap.ParseCapture(r.cfg.Processes.CommandLine) // validated
	ctx := context.Background()
	var off string
	host, err := procsnap.HostPIDNamespace(r.proc)
	switch {
	case err != nil:
		off = err.Error()
	case !host:
		off = "the collector does not share the host's pid namespace"
	}
	if off != "" {
		r.set.Logger.Warn("process snapshots are off: "+off+"; other containers' processes are not visible, so OOM records carry no process list or command line (counted in otelcol_cgroupmemory_process_snapshots_skipped). Set hostPID: true in the DaemonSet (docker: --pid=host), or processes.enabled: false",
			zap.String("proc", r.proc))
	}
	return procsnap.New(procsnap.Options{
		Off:     off,
		Skipped: func() { r.tb.CgroupmemoryProcessSnapshotsSkipped.Add(ctx, 1) },
		Proc:    r.proc,
		Capture: capture,
		Dir:     h.Abs,
		Logger:  r.set.Logger,
		Taken:   func() { r.tb.CgroupmemoryProcessSnapshots.Add(ctx, 1) },
		Dropped: func() { r.tb.CgroupmemoryProcessSnapshotsDropped.Add(ctx, 1) },
		Hidden:  func(n int) { r.tb.CgroupmemoryProcessSnapshotHidden.Add(ctx, int64(n)) },
		NearMiss: func(sn procsnap.Snapshot) {
			if p := r.nearMiss.Load(); p != nil {
				p.EmitNearMiss(sn)
			}
		},
	})
}

// procRoot is the procfs the snapshots read: the collector's own, which
// shows the host's processes only in the host's pid namespace (hostPID in
// a DaemonSet; see docs/deploying.md).
const procRoot = "/proc"

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
	o := samplerOptions(r.cfg, h, filter, r.set.Logger, r.tb)
	if r.snapshotsOn() {
		r.snaps = r.newSnapper(h)
		o.Snapshot = r.snaps.Request
	}
	smp := sampler.New(o)
	ch, err := smp.Start()
	if err != nil {
		r.snaps = nil
		return fmt.Errorf("cgroupmemory: %w", err)
	}
	if r.snaps != nil {
		r.snaps.Start()
	}
	r.set.Logger.Info("cgroup memory hierarchy found",
		zap.String("root_path", r.cfg.RootPath),
		zap.String("version", h.Version.String()),
		zap.String("dir", h.Dir),
		zap.Int("cgroups", ch.Added),
		zap.Stringer("collection_interval", r.cfg.CollectionInterval),
		zap.Stringer("sampling_interval", r.cfg.SamplingInterval),
		zap.Bool("events", smp.Events()),
		zap.Bool("process_snapshots", r.snaps != nil))
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
		if r.snaps != nil {
			r.snaps.Stop()
			r.snaps = nil
		}
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
			err = r.oom.Shutdown(ctx)
		}
		if r.metrics != nil {
			err = errors.Join(err, r.metrics.Shutdown(ctx))
		}
		if r.smp != nil {
			r.smp.Close()
		}
		if r.snaps != nil {
			r.snaps.Stop()
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
