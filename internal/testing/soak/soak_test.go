// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package soak

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver"
)

// settings of the soak: OOMSIGHT_SOAK_SECONDS (default 30; make soak: 60).
const (
	alive      = 500                    // cgroups alive at a time
	perSecond  = 50                     // cgroups created per second
	procEvery  = 5                      // one cgroup in procEvery gets a process
	oomEvery   = 2 * time.Second        // one OOM kill per oomEvery
	scrapeTick = 100 * time.Millisecond // collection and sampling interval
	// warmUp ends when the memory the churn needs is all allocated: the
	// first removals come after alive/perSecond = 10 s, and the removed
	// cgroups' recorders (registry.MaxDeparted) fill 5 s later. RSS growth
	// is measured from there; a shorter soak does not measure it.
	warmUp = 20 * time.Second
)

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(ents)
}

// rssMB is the process's resident memory after a collection that returns
// freed memory to the kernel: what is still held, not the GC's slack.
func rssMB(t *testing.T) float64 {
	debug.FreeOSMemory()
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// counter counts metric exports and drops them (a sink that kept them
// would be the memory growth measured).
type counter struct{ n atomic.Int64 }

func (*counter) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (c *counter) ConsumeMetrics(context.Context, pmetric.Metrics) error {
	c.n.Add(1)
	return nil
}

// records counts the OOM records of cgroups below a prefix, by pid.
type records struct {
	prefix string
	mu     sync.Mutex
	pids   map[int64]int
}

func (*records) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (r *records) ConsumeLogs(_ context.Context, ld plog.Logs) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		rl := ld.ResourceLogs().At(i)
		p, ok := rl.Resource().Attributes().Get("cgroup.path")
		if !ok || !strings.HasPrefix(p.Str(), r.prefix) {
			continue
		}
		lrs := rl.ScopeLogs().At(0).LogRecords()
		for j := 0; j < lrs.Len(); j++ {
			pid, _ := lrs.At(j).Attributes().Get("process.pid")
			r.pids[pid.Int()]++
		}
	}
	return nil
}

// TestChurnSoak: ≥ 50 cgroups a second created and removed (500 alive),
// processes entering and leaving, OOM kills, scraped and sampled every
// 100 ms. No scrape fails as a whole, no descriptor or goroutine is left
// behind, memory stays bounded, and every kill is exactly one record.
func TestChurnSoak(t *testing.T) {
	env := cgrouptest.Require(t)
	secs := 30
	if v := os.Getenv("OOMSIGHT_SOAK_SECONDS"); v != "" {
		var err error
		secs, err = strconv.Atoi(v)
		require.NoError(t, err)
	}
	memhog := cgrouptest.BuildMemhog(t)
	base := env.NewCgroup(t, fmt.Sprintf("oomsight-soak-%d", os.Getpid()))
	oomCg := env.NewCgroup(t, fmt.Sprintf("oomsight-soak-%d/oom", os.Getpid()))
	oomCg.SetLimit(t, 32<<20)

	fds0, gor0 := openFDs(t), runtime.NumGoroutine()

	f := cgroupmemoryreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*cgroupmemoryreceiver.Config)
	cfg.CollectionInterval = scrapeTick
	cfg.SamplingInterval = scrapeTick
	cfg.Include = []string{base.Path + "/**"}
	set := receivertest.NewNopSettings(f.Type())
	core, logs := observer.New(zapcore.WarnLevel)
	set.Logger = zap.New(core)
	metrics := new(counter)
	recs := &records{prefix: oomCg.Path, pids: map[int64]int{}}
	mr, err := f.CreateMetrics(t.Context(), set, cfg, metrics)
	require.NoError(t, err)
	_, err = f.CreateLogs(t.Context(), set, cfg, recs)
	require.NoError(t, err)
	require.NoError(t, mr.Start(t.Context(), componenttest.NewNopHost()))

	var created atomic.Int64
	var kills []int
	stop := time.Now().Add(time.Duration(secs) * time.Second)
	var rss10 float64
	var wg sync.WaitGroup
	wg.Go(func() { // the OOM kills
		for time.Now().Before(stop.Add(-time.Second)) {
			p := oomCg.Start(t, memhog)
			cgrouptest.PaceOOM(t)
			if _, err := p.Do("anon 64", 30*time.Second); err != nil {
				if ws, err := p.Wait(10 * time.Second); err == nil && ws.Signaled() {
					kills = append(kills, p.Pid)
				}
			}
			time.Sleep(oomEvery)
		}
	})

	var live []string
	var procs []*exec.Cmd
	tick := time.NewTicker(time.Second / perSecond)
	start := time.Now()
	for now := range tick.C {
		if now.After(stop) {
			break
		}
		if rss10 == 0 && now.Sub(start) >= warmUp {
			rss10 = rssMB(t)
		}
		n := created.Add(1)
		dir := fmt.Sprintf("%s/c%06d", env.Hierarchy.Abs(base.Path), n)
		require.NoError(t, os.Mkdir(dir, 0o755))
		live = append(live, dir)
		if n%procEvery == 0 { // a process enters, and leaves in half a second
			cmd := exec.Command("sh", "-c", "echo $$ > "+dir+"/cgroup.procs && exec sleep 0.5") //nolint:gosec // dir is the cgroup this test made
			require.NoError(t, cmd.Start())
			procs = append(procs, cmd)
		}
		if len(procs) > 64 { // reap the oldest, so the harness holds little
			_ = procs[0].Wait()
			procs = procs[1:]
		}
		for len(live) > alive {
			require.NoError(t, cgrouptest.RemoveCgroup(live[0]))
			live = live[1:]
		}
	}
	tick.Stop()
	wg.Wait()
	time.Sleep(500 * time.Millisecond) // the last records
	rssEnd := rssMB(t)
	for _, c := range procs {
		_ = c.Wait()
	}
	for _, d := range live {
		require.NoError(t, cgrouptest.RemoveCgroup(d))
	}
	require.NoError(t, mr.Shutdown(t.Context()))

	scrapes := int(metrics.n.Load())
	failed := logs.FilterMessageSnippet("Error scraping metrics").Len()
	time.Sleep(200 * time.Millisecond)
	fdsLeaked := openFDs(t) - fds0
	goroutinesLeaked := runtime.NumGoroutine() - gor0
	recs.mu.Lock()
	records := 0
	for _, pid := range kills {
		records += recs.pids[int64(pid)]
	}
	exactlyOnce := true
	for _, pid := range kills {
		exactlyOnce = exactlyOnce && recs.pids[int64(pid)] == 1
	}
	recs.mu.Unlock()
	growth := rssEnd - rss10
	if rss10 == 0 {
		growth = 0 // shorter than the warm-up: not measured
	}
	fmt.Printf("SOAK cgroups_created=%d scrapes=%d scrapes_failed=%d fds_leaked=%d goroutines_leaked=%d rss_growth_mb=%.1f oom_kills=%d oom_records=%d\n",
		created.Load(), scrapes, failed, fdsLeaked, goroutinesLeaked, growth, len(kills), records)

	assert.GreaterOrEqual(t, created.Load(), int64(perSecond*secs*8/10), "the churn kept its pace")
	assert.Greater(t, scrapes, secs*5)
	assert.Zero(t, failed, "no scrape failed as a whole: %v", logs.All())
	assert.LessOrEqual(t, fdsLeaked, 0, "descriptors left behind")
	assert.LessOrEqual(t, goroutinesLeaked, 0, "goroutines left behind")
	if secs > 25 {
		assert.Positive(t, rss10, "RSS measured after the warm-up")
	}
	assert.LessOrEqual(t, growth, 10.0, "RSS growth after the warm-up (MB)")
	assert.NotEmpty(t, kills)
	assert.True(t, exactlyOnce, "every kill exactly one record: kills %v, records by pid %v", kills, recs.pids)
}
