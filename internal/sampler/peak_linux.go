// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package sampler // import "github.com/oomsight/oomsight/internal/sampler"

import "github.com/oomsight/oomsight/internal/registry"

// SinceCollection is the peak of a collection's data point (or a removed
// cgroup's closing one): p, the highest usage since the data point before
// it, with the peaks of the event samples exported in the same collection
// folded in, so that it covers the whole time since the previous
// collection. Each event sample's own point keeps the peak of the interval
// it closed. A pull backend (the collector's Prometheus exporter) keeps
// only the newest point of a series between two scrapes: without the fold
// a limit hit's event point, at the limit, was replaced by the
// collection's, and the dashboard showed the lower usage after it.
func SinceCollection(p uint64, events []registry.Event) uint64 {
	for i := range events {
		p = max(p, events[i].Peak)
	}
	return p
}
