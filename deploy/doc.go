// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package deploy holds the tests of the deployment manifests under
// deploy/kubernetes: they decode strictly into the Kubernetes API types,
// their collector configs pass `otelcol-oomsight validate`, and the
// DaemonSet's pod runs for real under `podman kube play`. It is a module of
// its own so that importers of the receiver do not inherit the Kubernetes
// dependencies.
package deploy // import "github.com/oomsight/oomsight/deploy"
