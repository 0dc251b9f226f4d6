// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgroupmemoryreceiver

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/metadata"
)

func loadConfig(t *testing.T, name string) (*Config, error) {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	cfg := createDefaultConfig().(*Config)
	sub, err := cm.Sub(component.MustNewIDWithName("cgroupmemory", name).String())
	require.NoError(t, err)
	if err := sub.Unmarshal(cfg); err != nil {
		return nil, err
	}
	return cfg, confmap.Validate(cfg)
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := loadConfig(t, "")
	require.NoError(t, err)
	assert.Equal(t, time.Second, cfg.CollectionInterval)
	assert.Equal(t, time.Duration(0), cfg.InitialDelay)
	assert.Equal(t, "/sys/fs/cgroup", cfg.RootPath)
	assert.Empty(t, cfg.Include)
	assert.Empty(t, cfg.Exclude)
	assert.Equal(t, metadata.NewDefaultMetricsBuilderConfig(), cfg.MetricsBuilderConfig)
	assert.True(t, cfg.OOM.Enabled)
	assert.Equal(t, "/dev/kmsg", cfg.OOM.KmsgPath)
	assert.Empty(t, cfg.OOM.CheckpointFile)
	// The eleven headline metrics, the events, under_oom and PSI on, the
	// rest opt-in (metadata.yaml).
	m := cfg.Metrics
	for name, on := range map[string]bool{
		"usage": m.CgroupMemoryUsage.Enabled, "working_set": m.CgroupMemoryWorkingSet.Enabled,
		"limit": m.CgroupMemoryLimit.Enabled, "peak": m.CgroupMemoryPeak.Enabled,
		"anon": m.CgroupMemoryAnon.Enabled, "file": m.CgroupMemoryFile.Enabled,
		"active_file": m.CgroupMemoryActiveFile.Enabled, "inactive_file": m.CgroupMemoryInactiveFile.Enabled,
		"shmem": m.CgroupMemoryShmem.Enabled, "failcnt": m.CgroupMemoryFailcnt.Enabled,
		"oom_kills": m.CgroupMemoryOomKills.Enabled, "events": m.CgroupMemoryEvents.Enabled,
		"under_oom": m.CgroupMemoryUnderOom.Enabled, "pressure": m.CgroupMemoryPressureStallTime.Enabled,
		"pressure.avg10": m.CgroupMemoryPressureAvg10.Enabled,
	} {
		assert.True(t, on, name)
	}
	for name, on := range map[string]bool{
		"mapped_file": m.CgroupMemoryMappedFile.Enabled, "kernel": m.CgroupMemoryKernel.Enabled,
		"sock": m.CgroupMemorySock.Enabled, "slab": m.CgroupMemorySlab.Enabled,
		"swap": m.CgroupMemorySwap.Enabled, "page_faults": m.CgroupMemoryPageFaults.Enabled,
		"workingset.refaults":    m.CgroupMemoryWorkingsetRefaults.Enabled,
		"workingset.activations": m.CgroupMemoryWorkingsetActivations.Enabled,
		"reclaim.scanned":        m.CgroupMemoryReclaimScanned.Enabled,
		"reclaim.stolen":         m.CgroupMemoryReclaimStolen.Enabled,
		"high":                   m.CgroupMemoryHigh.Enabled,
		"low":                    m.CgroupMemoryLow.Enabled,
		"min":                    m.CgroupMemoryMin.Enabled,
		"swap.limit":             m.CgroupMemorySwapLimit.Enabled,
		"memsw.limit":            m.CgroupMemoryMemswLimit.Enabled,
		"memsw.usage":            m.CgroupMemoryMemswUsage.Enabled,
		"swap.events":            m.CgroupMemorySwapEvents.Enabled,
		"events.subtree":         m.CgroupMemoryEventsSubtree.Enabled,
	} {
		assert.False(t, on, name)
	}
}

func TestConfigCustom(t *testing.T) {
	cfg, err := loadConfig(t, "custom")
	require.NoError(t, err)
	assert.Equal(t, 100*time.Millisecond, cfg.CollectionInterval)
	assert.Equal(t, "/host/sys/fs/cgroup", cfg.RootPath)
	assert.Equal(t, []string{"/kubepods*/**", "**/kubepods*/**"}, cfg.Include)
	assert.Equal(t, []string{"**/*conmon*"}, cfg.Exclude)
	assert.True(t, cfg.Metrics.CgroupMemorySwap.Enabled)
	assert.False(t, cfg.Metrics.CgroupMemoryActiveFile.Enabled)
	assert.False(t, cfg.ResourceAttributes.ContainerRuntimeName.Enabled)
	assert.Equal(t, "/host/dev/kmsg", cfg.OOM.KmsgPath)
	assert.Equal(t, "/var/lib/oomsight/oom.checkpoint", cfg.OOM.CheckpointFile)

	_, err = loadConfig(t, "oom_off_no_kmsg")
	assert.NoError(t, err, "kmsg_path only matters while oom.enabled")
	cfg, err = loadConfig(t, "events_off")
	require.NoError(t, err)
	assert.False(t, cfg.Events.LinuxOomKill.Enabled, "mdatagen's event switch")
	assert.True(t, createDefaultConfig().(*Config).Events.LinuxOomKill.Enabled)
	cfg, err = loadConfig(t, "no_kmsg")
	require.NoError(t, err, "an empty kmsg_path is the counters-only mode")
	assert.Empty(t, cfg.OOM.KmsgPath)

	def := createDefaultConfig().(*Config)
	assert.True(t, def.Processes.Enabled)
	assert.Equal(t, "redacted", def.Processes.CommandLine, "the default keeps command lines, credentials redacted")
	assert.False(t, def.Events.LinuxMemoryNearLimit.Enabled, "near-limit records are opt-in")
	cfg, err = loadConfig(t, "processes_name")
	require.NoError(t, err)
	assert.Equal(t, "name", cfg.Processes.CommandLine)
	assert.True(t, cfg.Events.LinuxMemoryNearLimit.Enabled)
}

// TestConfigErrors: each bad configuration fails with a message that names
// the key and says what to write instead.
func TestConfigErrors(t *testing.T) {
	for name, want := range map[string][]string{
		"too_fast":                     {"collection_interval", "minimum of 10ms"},
		"zero_interval":                {"collection_interval", "requires positive value"},
		"relative_root":                {"root_path", "not an absolute path", "/sys/fs/cgroup"},
		"empty_root":                   {"root_path", "must not be empty", "/host/sys/fs/cgroup"},
		"bad_glob":                     {"include[0]", "bad glob", "**"},
		"unknown_key":                  {"root_pth"},
		"unknown_metric":               {"cgroup.memory.nope"},
		"no_kmsg_checkpoint":           {"oom.checkpoint_file", "oom.kmsg_path is empty", "/dev/kmsg"},
		"unknown_oom_key":              {"checkpoint"},
		"zero_tasks":                   {"oom.max_tasks", "-1 for all"},
		"fast_sampling":                {"sampling_interval", "minimum of 10ms", "0 to turn the fast pass off"},
		"bad_command_line":             {"processes.command_line", `"full" is not one of redacted (default), name, off`},
		"near_limit_without_processes": {"events.linux.memory.near_limit.enabled", "processes.enabled: true"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := loadConfig(t, name)
			require.Error(t, err)
			for _, w := range want {
				assert.ErrorContains(t, err, w)
			}
		})
	}
}

// TestEventSwitchOff: `events: linux.oom_kill: enabled: false` in a logs
// pipeline starts no OOM reading and says why.
func TestEventSwitchOff(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Events.LinuxOomKill.Enabled = false
	cfg.OOM.KmsgPath = "/nonexistent/kmsg" // would warn if it were opened
	set := receivertest.NewNopSettings(metadata.Type)
	core, logObs := observer.New(zap.InfoLevel)
	set.Logger = zap.New(core)
	lr, err := NewFactory().CreateLogs(t.Context(), set, cfg, new(consumertest.LogsSink))
	require.NoError(t, err)
	require.NoError(t, lr.Start(t.Context(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, lr.Shutdown(context.WithoutCancel(t.Context()))) })
	assert.Nil(t, lr.(*cgroupReceiver).oom, "no OOM pipeline")
	assert.Equal(t, 1, logObs.FilterMessageSnippet("events.linux.oom_kill.enabled is false").Len())
	assert.Zero(t, logObs.FilterMessageSnippet("the kernel log cannot be read").Len())
}
