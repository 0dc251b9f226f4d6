// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package sampler

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/oomsight/oomsight/internal/registry"
)

func TestSinceCollection(t *testing.T) {
	const mib = 1 << 20
	ev := func(peaks ...uint64) []registry.Event {
		out := make([]registry.Event, len(peaks))
		for i, p := range peaks {
			out[i].Peak = p
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		p      uint64
		events []registry.Event
		want   uint64
	}{
		{"no event sample", 30 * mib, nil, 30 * mib},
		// A limit hit at 64 MiB, then usage fell (a worker was killed).
		{"event at the limit, lower since", 20 * mib, ev(64 * mib), 64 * mib},
		{"several events, the highest", 10 * mib, ev(40*mib, 63*mib, 50*mib), 63 * mib},
		{"rose past the events since", 70 * mib, ev(64 * mib), 70 * mib},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, SinceCollection(tc.p, tc.events))
		})
	}
}
