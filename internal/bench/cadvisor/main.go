// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Command cadvisor is cAdvisor for `make bench-peers`: its library
// (github.com/google/cadvisor/lib, pinned in this module's go.mod) wired to
// a Prometheus /metrics endpoint, the way the kubelet and cAdvisor's own
// command wire it. cAdvisor's command is a module of its own that the Go
// module proxy does not serve, so the benchmark builds this instead: the
// same manager (raw cgroup factory, per-cgroup housekeeping, in-memory stats
// cache), the same Prometheus collector, and cAdvisor's flags for what is
// measured (--housekeeping_interval, --allow_dynamic_housekeeping from the
// library; --enable_metrics, --disable_metrics, --storage_duration and
// --raw_cgroup_prefix_whitelist as the command has them).
// Left out, because the benchmark does not exercise them: the web UI, the
// REST API, the OOM event watcher and the storage drivers.
package main

import (
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/google/cadvisor/lib/cache/memory"
	"github.com/google/cadvisor/lib/container"
	"github.com/google/cadvisor/lib/manager"
	"github.com/google/cadvisor/lib/metrics"
	info "github.com/google/cadvisor/lib/model"
	"github.com/google/cadvisor/lib/utils/sysfs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/utils/clock"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "cadvisor:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:8080", "address of the /metrics endpoint")
	storageDuration := flag.Duration("storage_duration", 2*time.Minute, "how long stats are kept in memory (cAdvisor's default)")
	// cAdvisor's command starts from every metric kind but the expensive
	// ones; --enable_metrics replaces the set, --disable_metrics removes
	// from it, as there.
	enable := container.MetricSet{}
	disable := container.MetricSet{}
	flag.Var(&enable, "enable_metrics", "comma-separated metric kinds to collect (replaces the default set)")
	flag.Var(&disable, "disable_metrics", "comma-separated metric kinds not to collect")
	whitelist := flag.String("raw_cgroup_prefix_whitelist", "/", "comma-separated cgroup path prefixes to collect (cAdvisor's flag of that name; the root is always collected)")
	flag.Parse()

	included := container.AllMetrics.Difference(disable)
	if len(enable) > 0 {
		included = enable.Difference(disable)
	}

	m, err := manager.New(memory.New(*storageDuration, nil), sysfs.NewRealSysFs(), manager.HousekeepingConfigFlags,
		included, strings.Split(*whitelist, ","), nil, "", 0)
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	if err := m.Start(); err != nil {
		return fmt.Errorf("starting the manager: %w", err)
	}
	defer func() { _ = m.Stop() }()

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		metrics.NewPrometheusCollector(m, metrics.DefaultContainerLabels, included, clock.RealClock{},
			info.RequestOptions{IdType: info.TypeName, Count: 1, Recursive: true}),
		metrics.NewPrometheusMachineCollector(m, included),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.ListenAndServe() }()
	fmt.Fprintf(os.Stderr, "cadvisor: serving /metrics on %s, metrics %s\n", *listen, included)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case <-sig:
		return srv.Close()
	case err := <-done:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}
