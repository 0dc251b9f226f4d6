// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package operator holds the test of agent.yaml's OpenTelemetryCollector
// against the OpenTelemetry Operator's CRD schema (make installers). A
// module of its own: the API server's validation code
// (k8s.io/apiextensions-apiserver) brings dependencies newer than the
// deploy module's, which they would move.
package operator // import "github.com/oomsight/oomsight/deploy/operator"
