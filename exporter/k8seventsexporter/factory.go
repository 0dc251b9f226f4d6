// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package k8seventsexporter // import "github.com/oomsight/oomsight/exporter/k8seventsexporter"

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/oomsight/oomsight/exporter/k8seventsexporter/internal/metadata"
)

// Defaults: client-go's own request rate, and a series cache far larger
// than the containers one node runs.
const (
	defaultQPS        = 5
	defaultBurst      = 10
	defaultCacheSize  = 4096
	defaultController = "oomsight"
)

// NewFactory returns the k8s_events exporter's factory (logs only).
func NewFactory() exporter.Factory {
	return exporter.NewFactory(metadata.Type, createDefaultConfig,
		exporter.WithLogs(createLogs, metadata.LogsStability))
}

func createDefaultConfig() component.Config {
	return &Config{
		TimeoutConfig:       exporterhelper.NewDefaultTimeoutConfig(),
		QueueConfig:         configoptional.Some(exporterhelper.NewDefaultQueueConfig()),
		RetryConfig:         configretry.NewDefaultBackOffConfig(),
		AuthType:            AuthServiceAccount,
		QPS:                 defaultQPS,
		Burst:               defaultBurst,
		ReportingController: defaultController,
		CacheSize:           defaultCacheSize,
	}
}

// createLogs wraps the exporter in the exporter helper: a queue, so that
// a slow or absent API server never holds up the pipeline's other
// exporters, and retry with backoff for transient failures.
func createLogs(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Logs, error) {
	c := cfg.(*Config)
	e, err := newExporter(c, set)
	if err != nil {
		return nil, err
	}
	return exporterhelper.NewLogs(ctx, set, cfg, e.pushLogs,
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		exporterhelper.WithTimeout(c.TimeoutConfig),
		exporterhelper.WithRetry(c.RetryConfig),
		exporterhelper.WithQueue(c.QueueConfig),
		exporterhelper.WithStart(e.start),
		exporterhelper.WithShutdown(e.shutdown),
	)
}
