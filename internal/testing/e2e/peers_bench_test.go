// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/oomsight/oomsight/internal/cgroupfs"
	"github.com/oomsight/oomsight/internal/peerbench"
	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
	"github.com/oomsight/oomsight/internal/testing/otlptest"
)

// peerSetup is one program in one configuration, as BenchmarkPeers runs it.
type peerSetup struct {
	program string // "cadvisor", "oomsight" or "floor"
	name    string
	// start starts the process; scrape is true when the driver scrapes
	// its /metrics at p.Listen (cAdvisor, and oomsight's prometheus
	// exporter), false when it exports OTLP to the driver (or, the floor,
	// has no output).
	start  func(b *testing.B, p peerbench.Params) *exec.Cmd
	scrape bool
}

// BenchmarkPeers is `make bench-peers`: cAdvisor (OOMSIGHT_PEERS_CADVISOR,
// built by make from its library) and otelcol-oomsight run one after the
// other, each alone, on the same real cgroups (OOMSIGHT_PEERS_CGROUPS,
// default "1000,100"; each holds a sleeping process charged with 1 MiB),
// OOMSIGHT_PEERS_ALTERNATIONS rounds (default 3). Each run: the process
// starts, warms up for OOMSIGHT_PEERS_WARMUP (default 15s), then its CPU
// time (user + system, /proc/<pid>/stat) is measured over
// OOMSIGHT_PEERS_WINDOW (default 60s); its peak RSS is VmHWM at the end.
// All the while the driver scrapes /metrics every OOMSIGHT_PEERS_SCRAPE
// seconds (default 10; cAdvisor, and
// oomsight's prometheus exporter in the equal-work setup) or receives the
// OTLP the shipped setups export. OOMSIGHT_PEERS_FEATURES ("all", or
// feature names separated by commas) adds the shipped setup with each of
// those features off, in the same rounds. It prints BENCHPEER_RAW lines
// (each run), BENCHPEER lines (ratios) and BENCHFEATURE lines.
// OOMSIGHT_PEERS_AGENT (a path relative to this package's directory, or
// absolute) replaces deploy/kubernetes/agent.yaml as the shipped agent;
// OOMSIGHT_PEERS_BASELINE adds another agent's shipped setups beside it.
func BenchmarkPeers(b *testing.B) {
	env := cgrouptest.Require(b)
	bin := distro(b)
	cadvisor := os.Getenv("OOMSIGHT_PEERS_CADVISOR")
	if cadvisor == "" {
		cgrouptest.Unavailable(b, "OOMSIGHT_PEERS_CADVISOR is not set: run make bench-peers, which builds cAdvisor")
	}
	counts, err := peerbench.ParseCounts(envOr("OOMSIGHT_PEERS_CGROUPS", "1000,100"))
	if err != nil {
		b.Fatalf("OOMSIGHT_PEERS_CGROUPS: %v", err)
	}
	warm := time.Duration(benchEnv(b, "OOMSIGHT_PEERS_WARMUP", 15)) * time.Second
	window := time.Duration(benchEnv(b, "OOMSIGHT_PEERS_WINDOW", 60)) * time.Second
	alternations := benchEnv(b, "OOMSIGHT_PEERS_ALTERNATIONS", 3)
	// How often the driver reads each program's output: Prometheus's
	// default scrape interval, and the DaemonSet's export rate.
	every := time.Duration(benchEnv(b, "OOMSIGHT_PEERS_SCRAPE", 10)) * time.Second
	// OOMSIGHT_PEERS_AGENT measures another agent manifest (a changed
	// config or Go runtime setting) in the shipped setups.
	agent, err := os.ReadFile(envOr("OOMSIGHT_PEERS_AGENT", "../../../deploy/kubernetes/agent.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	features := peerFeatures(b, os.Getenv("OOMSIGHT_PEERS_FEATURES"))
	// Every oomsight run gets the DaemonSet's Go runtime settings
	// (GOMEMLIMIT, GOGC): the distribution as shipped.
	ours, err := peerbench.ShippedEnv(agent)
	if err != nil {
		b.Fatal(err)
	}

	srv := otlptest.Start(b)
	shippedFrom := func(agent []byte, env []string, collection time.Duration, off string) func(*testing.B, peerbench.Params) *exec.Cmd {
		return func(b *testing.B, p peerbench.Params) *exec.Cmd {
			cfg, err := peerbench.ShippedConfig(agent, p, collection, off)
			if err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(p.Dir, "kubeconfig"), []byte(peerbench.Kubeconfig), 0o600); err != nil {
				b.Fatal(err)
			}
			return peerCommand(b, p, env, bin, "--config", writeConfig(b, p, cfg))
		}
	}
	shipped := func(collection time.Duration, off string) func(*testing.B, peerbench.Params) *exec.Cmd {
		return shippedFrom(agent, ours, collection, off)
	}
	setups := []peerSetup{
		{"cadvisor", "cadvisor_1s", func(b *testing.B, p peerbench.Params) *exec.Cmd {
			return peerCommand(b, p, nil, cadvisor, peerbench.CadvisorArgs(p, time.Second)...)
		}, true},
		{"oomsight", "equal_1s", func(b *testing.B, p peerbench.Params) *exec.Cmd {
			return peerCommand(b, p, ours, bin, "--config", writeConfig(b, p, []byte(peerbench.EqualConfig(p, false))))
		}, true},
		{"oomsight", "equal_1s_otlp", func(b *testing.B, p peerbench.Params) *exec.Cmd {
			return peerCommand(b, p, ours, bin, "--config", writeConfig(b, p, []byte(peerbench.EqualConfig(p, true))))
		}, false},
		{"oomsight", "default_1s", shipped(time.Second, ""), false},
		{"oomsight", "daemonset_10s", shipped(0, ""), false},
	}
	for _, f := range features {
		setups = append(setups, peerSetup{"oomsight", "default_1s_without_" + f, shipped(time.Second, f), false})
	}
	// The floor: the equal-work setup's reads alone, by a process that
	// does nothing else (internal/bench/floor); cAdvisor over it is the
	// highest equal-work ratio any program could reach in this run.
	floor := buildFloor(b)
	setups = append(setups, peerSetup{"floor", "floor_1s", func(b *testing.B, p peerbench.Params) *exec.Cmd {
		return peerCommand(b, p, nil, floor, "-dir", env.Hierarchy.Abs(p.Parent), "-files", strings.Join(floorFiles(b, env.Hierarchy, p.Parent), ","), "-interval", "1s")
	}, false})
	comparisons := []struct{ name, program, ours string }{
		{"equal_1s", "oomsight", "equal_1s"},
		{"equal_1s_otlp", "oomsight", "equal_1s_otlp"},
		{"default_vs_1s", "oomsight", "default_1s"},
		{"daemonset_vs_1s", "oomsight", "daemonset_10s"},
		{"floor_1s", "floor", "floor_1s"},
	}
	// OOMSIGHT_PEERS_BASELINE, another agent manifest (the one before a
	// change: git show <rev>:deploy/kubernetes/agent.yaml), adds its two
	// shipped setups to every alternation: old and new side by side.
	if path := os.Getenv("OOMSIGHT_PEERS_BASELINE"); path != "" {
		base, rerr := os.ReadFile(path) //nolint:gosec // G703: the manifest the person running the benchmark names
		if rerr != nil {
			b.Fatal(rerr)
		}
		baseEnv, eerr := peerbench.ShippedEnv(base)
		if eerr != nil {
			b.Fatalf("OOMSIGHT_PEERS_BASELINE: %v", eerr)
		}
		setups = append(setups,
			peerSetup{"oomsight", "default_1s_baseline", shippedFrom(base, baseEnv, time.Second, ""), false},
			peerSetup{"oomsight", "daemonset_10s_baseline", shippedFrom(base, baseEnv, 0, ""), false})
		comparisons = append(comparisons,
			struct{ name, program, ours string }{"default_vs_1s_baseline", "oomsight", "default_1s_baseline"},
			struct{ name, program, ours string }{"daemonset_vs_1s_baseline", "oomsight", "daemonset_10s_baseline"})
	}

	for _, n := range counts {
		b.Run(fmt.Sprintf("cgroups=%d", n), func(b *testing.B) {
			for b.Loop() {
				parent := env.ManyLive(b, fmt.Sprintf("oomsight-peers-%d-%d", os.Getpid(), n), n, 1024)
				var runs []peerbench.Run
				for alt := 1; alt <= alternations; alt++ {
					for _, s := range setups {
						r := measurePeer(b, s, srv, parent.Path, n, alt, warm, window, every)
						fmt.Println(r.Line())
						runs = append(runs, r)
					}
				}
				for _, c := range comparisons {
					fmt.Println(peerbench.Comparison{
						Name: c.name, Cgroups: n,
						Peer: peerbench.Select(runs, "cadvisor", "cadvisor_1s", n),
						Ours: peerbench.Select(runs, c.program, c.ours, n),
					}.Line())
				}
				for _, f := range features {
					fmt.Println(peerbench.FeatureLine(f, n, peerbench.Select(runs, "oomsight", "default_1s", n),
						peerbench.Select(runs, "oomsight", "default_1s_without_"+f, n)))
				}
			}
		})
	}
}

// measurePeer runs one setup once and returns its figures.
func measurePeer(b *testing.B, s peerSetup, srv *otlptest.Server, parent string, n, alt int, warm, window, every time.Duration) peerbench.Run {
	b.Helper()
	dir := b.TempDir()
	p := peerbench.Params{
		Parent:    parent,
		Listen:    fmt.Sprintf("127.0.0.1:%d", freePort(b)),
		OTLP:      srv.Endpoint,
		Health:    fmt.Sprintf("127.0.0.1:%d", freePort(b)),
		Telemetry: fmt.Sprintf("127.0.0.1:%d", freePort(b)),
		Dir:       dir,
	}
	// What the previous run sent while it stopped is not this run's.
	srv.Metrics.Reset()
	srv.Logs.Reset()
	cmd := s.start(b, p)
	logs := cmd.Stdout.(*syncBuffer)
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	defer stop()

	// The consumer: the same reader, at the same rate, for every setup.
	ctx, cancel := context.WithCancel(b.Context())
	var scrapes, failures, points atomic.Int64
	var last atomic.Pointer[[]byte] // the last page scraped
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if s.scrape {
				// Prometheus's default scrape timeout is 10 s.
				page, err := scrapeOnce(ctx, "http://"+p.Listen+"/metrics", max(every, 10*time.Second))
				if err != nil {
					failures.Add(1)
					continue
				}
				last.Store(&page)
				scrapes.Add(1)
				continue
			}
			// OTLP arrives as oomsight exports it; the driver drops it
			// after counting, so that its own memory stays flat.
			points.Add(int64(srv.Metrics.DataPointCount()))
			srv.Metrics.Reset()
			srv.Logs.Reset()
			scrapes.Add(1)
		}
	}()

	time.Sleep(warm)
	u0 := mustUsage(b, cmd, logs)
	t0 := time.Now()
	time.Sleep(window)
	u1 := mustUsage(b, cmd, logs)
	elapsed := time.Since(t0)
	load, _ := os.ReadFile("/proc/loadavg")
	load1, _ := peerbench.ParseLoadavg(load)
	cancel()
	<-consumed
	points.Add(int64(srv.Metrics.DataPointCount()))
	srv.Metrics.Reset()
	srv.Logs.Reset()

	if s.scrape && scrapes.Load() == 0 {
		b.Fatalf("%s: no successful scrape of /metrics in %s (%d failed)\n%s", s.name, warm+window, failures.Load(), logs.String())
	}
	if s.scrape {
		// Equal work only if both programs report every cgroup.
		if missing := missingCgroups(*last.Load(), parent, n); missing != "" {
			b.Fatalf("%s: its /metrics has no series of %s (and maybe others)\n%s", s.name, missing, logs.String())
		}
	}
	if !s.scrape && s.program != "floor" && points.Load() == 0 {
		b.Fatalf("%s: no metrics received over OTLP in %s\n%s", s.name, warm+window, logs.String())
	}
	b.Logf("%s cgroups=%d alternation=%d: %d reads of its output, %d failed, %d OTLP data points", s.name, n, alt, scrapes.Load(), failures.Load(), points.Load())
	return peerbench.Run{
		Program: s.program, Setup: s.name, Cgroups: n, Alternation: alt,
		CPU: u1.CPU - u0.CPU, Window: elapsed, Memory: u1.Memory, Load1: load1,
	}
}

// buildFloor builds internal/bench/floor into the benchmark's temporary
// directory.
func buildFloor(b *testing.B) string {
	b.Helper()
	out := filepath.Join(b.TempDir(), "floor")
	cmd := exec.Command("go", "build", "-o", out, "github.com/oomsight/oomsight/internal/bench/floor")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("building the floor: %v\n%s", err, msg)
	}
	return out
}

// floorFiles are the files a collection of the equal-work setup reads in
// each cgroup below parent (ManyLive's first, c0000).
func floorFiles(b *testing.B, h cgroupfs.Hierarchy, parent string) []string {
	b.Helper()
	c, err := cgroupfs.Open(h, parent+"/c0000", peerbench.EqualOptional)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	return c.ReadFiles(false)
}

// scrapeOnce reads a /metrics page whole, as Prometheus does.
func scrapeOnce(ctx context.Context, url string, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, http.NoBody)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	page, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return page, nil
}

// missingCgroups returns the first of the n cgroups (ManyLive's c0000…)
// that the page does not name in a label, "" when it names them all.
func missingCgroups(page []byte, parent string, n int) string {
	for i := range n {
		c := fmt.Sprintf("%s/c%04d", parent, i)
		if !bytes.Contains(page, []byte(c+`"`)) {
			return c
		}
	}
	return ""
}

func mustUsage(b *testing.B, cmd *exec.Cmd, logs *syncBuffer) peerbench.Usage {
	b.Helper()
	u, err := peerbench.ReadUsage(cmd.Process.Pid)
	if err != nil {
		b.Fatalf("%v (did %s exit?)\n%s", err, cmd.Path, logs.String())
	}
	return u
}

// peerCommand starts a program, with env added to this process's
// environment, and keeps its output for failure messages.
func peerCommand(b *testing.B, p peerbench.Params, env []string, bin string, args ...string) *exec.Cmd {
	b.Helper()
	var logs syncBuffer
	cmd := exec.Command(bin, args...) //nolint:gosec // G702: the benchmark's own builds (cAdvisor, otelcol-oomsight) with flags it made
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.Dir = p.Dir
	if err := cmd.Start(); err != nil {
		b.Fatalf("starting %s: %v", bin, err)
	}
	return cmd
}

func writeConfig(b *testing.B, p peerbench.Params, cfg []byte) string {
	b.Helper()
	f := filepath.Join(p.Dir, "config.yaml")
	if err := os.WriteFile(f, cfg, 0o600); err != nil { //nolint:gosec // G703: the run's own temporary directory
		b.Fatal(err)
	}
	return f
}

// peerFeatures reads OOMSIGHT_PEERS_FEATURES: "" none, "all" every
// feature peerbench can turn off, or names separated by commas.
func peerFeatures(b *testing.B, v string) []string {
	switch v {
	case "":
		return nil
	case "all":
		return peerbench.FeatureNames()
	}
	names := strings.Split(v, ",")
	for _, n := range names {
		if !slices.Contains(peerbench.FeatureNames(), n) {
			b.Fatalf("OOMSIGHT_PEERS_FEATURES: %q: want all or some of %s", n, strings.Join(peerbench.FeatureNames(), ","))
		}
	}
	return names
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
