// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

//go:build !linux

package cgroupmemoryreceiver // import "github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver"

import (
	"context"
	"fmt"
	"runtime"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
)

// cgroupReceiver outside Linux: cgroups and the kernel's OOM reports are
// Linux's, so the receiver builds (a collector distribution that includes
// it builds everywhere the collector builds) but does not start.
type cgroupReceiver struct {
	release func() // forgets this instance in its factory
}

func newCgroupReceiver(_ *Config, _ receiver.Settings, release func()) *cgroupReceiver {
	return &cgroupReceiver{release: release}
}

func (*cgroupReceiver) attachMetrics(consumer.Metrics) error { return nil }

func (*cgroupReceiver) attachLogs(consumer.Logs) error { return nil }

// Start fails with an error that says why.
func (*cgroupReceiver) Start(context.Context, component.Host) error {
	return fmt.Errorf("cgroupmemory: cgroups and kernel OOM reports exist on Linux only; this collector runs on %s", runtime.GOOS)
}

// Shutdown forgets the instance.
func (r *cgroupReceiver) Shutdown(context.Context) error {
	r.release()
	return nil
}
