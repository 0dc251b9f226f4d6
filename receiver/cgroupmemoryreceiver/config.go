// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgroupmemoryreceiver // import "github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver"

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/scraper/scraperhelper"

	"github.com/oomsight/oomsight/internal/discovery"
	"github.com/oomsight/oomsight/internal/oomrecord"
	"github.com/oomsight/oomsight/internal/procsnap"
	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/metadata"
)

// minInterval is the shortest collection_interval accepted. Below it a
// scrape of a busy node would not finish before the next one is due.
const minInterval = 10 * time.Millisecond

// Config is the cgroupmemory receiver's configuration (the receiver's
// README is its reference: every key, default and error). Unknown keys
// are rejected by the collector.
type Config struct {
	scraperhelper.ControllerConfig `mapstructure:",squash"`
	metadata.MetricsBuilderConfig  `mapstructure:",squash"`

	// SamplingInterval drives the fast pass: usage alone, read for every
	// cgroup this often, feeding the per-interval peak and the flight
	// recorder; 0 turns it off. CollectionInterval stays the export rate
	// and the full read of every memory file.
	SamplingInterval time.Duration `mapstructure:"sampling_interval"`
	// PeakReset (cgroup v1) resets memory.max_usage_in_bytes after each
	// read, which makes cgroup.memory.peak exact for spikes shorter than the
	// sampling interval. Opt-in: the reset is global, so other readers of
	// that file (cAdvisor's container_memory_max_usage_bytes) see it too.
	PeakReset bool `mapstructure:"peak_reset"`

	// RootPath is where the cgroup filesystem is mounted; the memory
	// hierarchy (v2, v1 or hybrid) is detected below it.
	RootPath string `mapstructure:"root_path"`
	// Include and Exclude are globs on cgroup.path; empty Include = all.
	Include []string `mapstructure:"include"`
	Exclude []string `mapstructure:"exclude"`

	// OOM configures reading the kernel OOM reports: records for the logs
	// pipeline, counts (cgroup.memory.oom_kill.records) for the metrics one.
	OOM OOMConfig `mapstructure:"oom"`
	// Processes configures the process snapshots taken of a cgroup in its
	// limit zone, which OOM records (and near-limit records) carry.
	Processes ProcessesConfig `mapstructure:"processes"`
	// Events holds mdatagen's per-event switches (`events: linux.oom_kill:
	// enabled`), as every contrib logs receiver has them. Only the events
	// of the generated LogsBuilderConfig: its resource_attributes are the
	// metrics builder's, already squashed above, and one key cannot be
	// squashed twice.
	Events metadata.EventsConfig `mapstructure:"events"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// OOMConfig configures reading kernel OOM reports from the kernel log.
type OOMConfig struct {
	// Enabled turns reading on; it happens when the receiver is in a logs
	// pipeline (records), or in a metrics pipeline with
	// cgroup.memory.oom_kill.records enabled (counts only, no record).
	Enabled bool `mapstructure:"enabled"`
	// KmsgPath is the kernel log device. Empty means the kernel log is not
	// read at all: kills become records from the cgroups' oom_kill counters
	// only (a restricted deployment without /dev/kmsg), without the warning
	// and retries of a log that should be readable but is not.
	KmsgPath string `mapstructure:"kmsg_path"`
	// CheckpointFile, when set, records the boot and the last kill emitted,
	// so that a restart emits exactly the kills not emitted yet. Without it,
	// and without a logs pipeline (nothing is emitted), reading starts at
	// the end of the kernel log.
	CheckpointFile string `mapstructure:"checkpoint_file"`
	// MaxTasks bounds the task table on a record: the largest rows by rss,
	// the rest counted in linux.oom.tasks.omitted (a global OOM prints the
	// node's whole table); -1 keeps every row.
	MaxTasks int `mapstructure:"max_tasks"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// ProcessesConfig configures process snapshots (package procsnap): when a
// cgroup is in its limit zone, its processes' pids, command lines and
// resident memory, so that a record says which of several same-named
// workers was killed.
type ProcessesConfig struct {
	// Enabled turns snapshots on. They need a logs pipeline (they are
	// carried by records) and a metrics one (the sampler tells the limit
	// zone), and the host's pid namespace to see other containers'
	// processes (hostPID in a DaemonSet).
	Enabled bool `mapstructure:"enabled"`
	// CommandLine is how much of a command line is kept: redacted (the
	// first 256 bytes, credential-shaped arguments replaced by ***), name
	// (the process name only) or off (pids and memory only).
	CommandLine string `mapstructure:"command_line"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var _ component.Config = (*Config)(nil)

func createDefaultConfig() component.Config {
	cc := scraperhelper.NewDefaultControllerConfig()
	cc.CollectionInterval = time.Second
	cc.InitialDelay = 0
	return &Config{
		ControllerConfig:     cc,
		SamplingInterval:     100 * time.Millisecond,
		MetricsBuilderConfig: metadata.NewDefaultMetricsBuilderConfig(),
		Events:               metadata.DefaultEventsConfig(),
		RootPath:             "/sys/fs/cgroup",
		Include:              []string{},
		Exclude:              []string{},
		OOM: OOMConfig{
			Enabled:  true,
			KmsgPath: "/dev/kmsg",
			MaxTasks: oomrecord.DefaultMaxTasks,
		},
		Processes: ProcessesConfig{
			Enabled:     true,
			CommandLine: procsnap.SettingRedacted,
		},
	}
}

// Validate checks the configuration without touching the filesystem: the
// root is checked when the receiver starts, where it may differ (a DaemonSet
// validates its config image-side but runs with /host mounted).
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.CollectionInterval > 0 && cfg.CollectionInterval < minInterval {
		errs = append(errs, fmt.Errorf("collection_interval: %s is below the minimum of %s; use 100ms for high-frequency sampling", cfg.CollectionInterval, minInterval))
	}
	switch {
	case cfg.SamplingInterval < 0:
		errs = append(errs, fmt.Errorf("sampling_interval: %s is negative; use 100ms, or 0 to turn the fast pass off", cfg.SamplingInterval))
	case cfg.SamplingInterval > 0 && cfg.SamplingInterval < minInterval:
		errs = append(errs, fmt.Errorf("sampling_interval: %s is below the minimum of %s; use 100ms, or 0 to turn the fast pass off", cfg.SamplingInterval, minInterval))
	}
	switch {
	case cfg.RootPath == "":
		errs = append(errs, errors.New(`root_path: must not be empty; use "/sys/fs/cgroup" (or "/host/sys/fs/cgroup" in a DaemonSet)`))
	case !filepath.IsAbs(cfg.RootPath):
		errs = append(errs, fmt.Errorf("root_path: %q is not an absolute path; use e.g. \"/sys/fs/cgroup\"", cfg.RootPath))
	}
	if _, err := discovery.NewFilter(cfg.Include, cfg.Exclude); err != nil {
		errs = append(errs, fmt.Errorf("%w (globs on cgroup.path: * stays within a segment, ** crosses them, e.g. \"/kubepods*/**\")", err))
	}
	if cfg.OOM.MaxTasks == 0 || cfg.OOM.MaxTasks < -1 {
		errs = append(errs, fmt.Errorf("oom.max_tasks: %d: want a positive number of task table rows (default %d), or -1 for all", cfg.OOM.MaxTasks, oomrecord.DefaultMaxTasks))
	}
	if cfg.OOM.KmsgPath == "" && cfg.OOM.CheckpointFile != "" {
		errs = append(errs, errors.New(`oom.checkpoint_file: set while oom.kmsg_path is empty; the checkpoint records kernel log positions, so set oom.kmsg_path: /dev/kmsg or remove oom.checkpoint_file`))
	}
	if _, err := procsnap.ParseCapture(cfg.Processes.CommandLine); err != nil {
		errs = append(errs, fmt.Errorf("processes.command_line: %w; command lines can carry secrets: redacted hides credential-shaped arguments, name keeps the process name only, off keeps neither", err))
	}
	if cfg.Events.LinuxMemoryNearLimit.Enabled && !cfg.Processes.Enabled {
		errs = append(errs, errors.New("events.linux.memory.near_limit.enabled: true needs processes.enabled: true (a near-limit record is a process snapshot no kill followed)"))
	}
	return errors.Join(errs...)
}
