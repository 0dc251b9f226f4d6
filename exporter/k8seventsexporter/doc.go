// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package k8seventsexporter is the k8s_oom_events exporter: it writes each OOM
// kill record that carries a pod as a Kubernetes Event on that Pod, where
// `kubectl describe pod` and `kubectl get events` show it, aggregating
// repeated kills of one container into one Event's series.
//
// The mapping from record to Event is pure (event.go, table-tested on
// records built from captured kernel reports); the API calls, the series
// cache and the error classes are in exporter.go; queue and retry are the
// exporter helper's.
package k8seventsexporter // import "github.com/oomsight/oomsight/exporter/k8seventsexporter"

//go:generate go tool mdatagen metadata.yaml
