// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package cgroupmemoryreceiver is the cgroupmemory receiver: it samples
// Linux cgroup memory accounting (v1 and v2) at high frequency and emits it
// as OTLP metrics, keyed by the cgroup path the kernel prints in its OOM
// reports so that metrics and OOM records join.
//
// One receiver instance serves every pipeline of the same configuration
// (see factory.go): the OOM log records need the sampler's state.
package cgroupmemoryreceiver // import "github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver"

//go:generate go tool mdatagen metadata.yaml
