// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgroupmemoryreceiver // import "github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver"

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/metadata"
)

// NewFactory returns the factory of the cgroupmemory receiver.
//
// A configuration used by several pipelines (metrics now, the OOM logs
// pipeline next) gets one receiver instance, as the core otlpreceiver does:
// the OOM records need the sampler's registry and history. The instances
// live in the factory, not in a package variable, so that two factories
// (two collectors in one test binary) never share state.
func NewFactory() receiver.Factory {
	f := &factory{instances: make(map[*Config]*cgroupReceiver)}
	return receiver.NewFactory(
		metadata.Type,
		createDefaultConfig,
		receiver.WithMetrics(f.createMetrics, metadata.MetricsStability),
		receiver.WithLogs(f.createLogs, metadata.LogsStability),
	)
}

type factory struct {
	mu        sync.Mutex
	instances map[*Config]*cgroupReceiver
}

// instance returns the receiver for cfg, creating it on first use.
func (f *factory) instance(cfg *Config, set receiver.Settings) *cgroupReceiver {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r, ok := f.instances[cfg]; ok {
		return r
	}
	r := newCgroupReceiver(cfg, set, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.instances, cfg)
	})
	f.instances[cfg] = r
	return r
}

func (f *factory) createMetrics(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
	r := f.instance(cfg.(*Config), set)
	if err := r.attachMetrics(next); err != nil {
		return nil, err
	}
	return r, nil
}

func (f *factory) createLogs(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	r := f.instance(cfg.(*Config), set)
	if err := r.attachLogs(next); err != nil {
		return nil, err
	}
	return r, nil
}
