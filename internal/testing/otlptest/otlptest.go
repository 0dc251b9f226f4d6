// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package otlptest runs a real OTLP server in a test: the collector's own
// otlpreceiver on a loopback port, delivering into in-memory sinks, so that
// end-to-end tests check what actually went over the wire.
package otlptest // import "github.com/oomsight/oomsight/internal/testing/otlptest"

import (
	"context"
	"net"
	"testing"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
)

// Server is a running OTLP/gRPC server.
type Server struct {
	Endpoint string // host:port (127.0.0.1 unless StartAt was given a host)
	Metrics  *consumertest.MetricsSink
	Logs     *consumertest.LogsSink
}

// Start starts the server on loopback; it stops at test cleanup.
func Start(tb testing.TB) *Server {
	tb.Helper()
	return StartAt(tb, "127.0.0.1")
}

// StartAt starts the server on a free port of the local address host (for
// clients in other network namespaces, such as pods on a bridge whose
// host side has that address); it stops at test cleanup.
func StartAt(tb testing.TB, host string) *Server {
	tb.Helper()
	s := &Server{
		Endpoint: freeAddr(tb, host),
		Metrics:  new(consumertest.MetricsSink),
		Logs:     new(consumertest.LogsSink),
	}
	f := otlpreceiver.NewFactory()
	cfg := f.CreateDefaultConfig()
	conf := confmap.NewFromStringMap(map[string]any{
		"protocols": map[string]any{"grpc": map[string]any{"endpoint": s.Endpoint}},
	})
	if err := conf.Unmarshal(cfg); err != nil {
		tb.Fatalf("otlp server config: %v", err)
	}
	set := receivertest.NewNopSettings(f.Type())
	ctx := tb.Context()
	mr, err := f.CreateMetrics(ctx, set, cfg, s.Metrics)
	if err != nil {
		tb.Fatalf("otlp server: %v", err)
	}
	lr, err := f.CreateLogs(ctx, set, cfg, s.Logs)
	if err != nil {
		tb.Fatalf("otlp server: %v", err)
	}
	// Both signals share one otlpreceiver instance; starting one starts it.
	if err := mr.Start(ctx, componenttest.NewNopHost()); err != nil {
		tb.Fatalf("otlp server start: %v", err)
	}
	if err := lr.Start(ctx, componenttest.NewNopHost()); err != nil {
		tb.Fatalf("otlp server start: %v", err)
	}
	tb.Cleanup(func() {
		_ = mr.Shutdown(context.WithoutCancel(ctx))
		_ = lr.Shutdown(context.WithoutCancel(ctx))
	})
	return s
}

func freeAddr(tb testing.TB, host string) string {
	tb.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		tb.Fatalf("no free port on %s: %v", host, err)
	}
	defer l.Close()
	return l.Addr().String()
}
