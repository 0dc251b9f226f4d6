// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package e2e holds the end-to-end tests of the built distribution
// (_build/otelcol-oomsight, made by `make build`): the real binary on a
// real cgroup, exporting over OTLP to a real OTLP server.
package e2e // import "github.com/oomsight/oomsight/internal/testing/e2e"
