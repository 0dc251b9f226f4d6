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
	"go.opentelemetry.io/collector/exporter/xexporter"

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

// deprecatedType is the exporter's type up to oomsight 0.1.0. It was
// renamed because contrib's k8s_events is a receiver that reads Events:
// the OpenTelemetry Operator generates RBAC for that receiver by its
// name, issue labels and docs could not tell the two apart. A config that
// still says k8s_events works for one more release (core's alias
// mechanism, as contrib keeps its renamed components), and the collector
// logs at warn: "k8s_events" alias is deprecated; use "k8s_oom_events"
// instead. Remove it in the release after the next.
const deprecatedType = "k8s_events"

// NewFactory returns the k8s_oom_events exporter's factory (logs only),
// which also answers to the deprecated type k8s_events.
func NewFactory() exporter.Factory {
	return xexporter.NewFactory(metadata.Type, createDefaultConfig,
		xexporter.WithLogs(createLogs, metadata.LogsStability),
		xexporter.WithDeprecatedTypeAlias(component.MustNewType(deprecatedType)))
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
