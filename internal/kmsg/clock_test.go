// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package kmsg

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestClock(t *testing.T) {
	const ms = time.Millisecond
	type sample struct{ ts, readMono time.Duration }
	for _, tc := range []struct {
		name    string
		samples []sample
		want    time.Duration // offset afterwards
	}{
		{"no sample: dmesg's assumption", nil, 0},
		// The log's clock 4 ms behind CLOCK_MONOTONIC, read 1 ms after.
		{"one sample", []sample{{1000 * time.Second, 1000*time.Second + 5*ms}}, 5 * ms},
		{"a quicker wake-up lowers the estimate", []sample{
			{1000 * time.Second, 1000*time.Second + 5*ms},
			{1001 * time.Second, 1001*time.Second + 4200*time.Microsecond},
		}, 4200 * time.Microsecond},
		{"a slower wake-up soon after barely raises it (500 ppm of 1.004 s)", []sample{
			{1000 * time.Second, 1000*time.Second + 5*ms},
			{1001 * time.Second, 1001*time.Second + 9*ms},
		}, 5*ms + 502*time.Microsecond},
		{"after a long silence the new sample wins", []sample{
			{1000 * time.Second, 1000*time.Second + 5*ms},
			{2000 * time.Second, 2000*time.Second + 9*ms},
		}, 9 * ms},
		{"a clock that falls behind is followed", []sample{
			{1000 * time.Second, 1000*time.Second + 5*ms},
			{1100 * time.Second, 1100*time.Second + 5*ms + 3*ms}, // 30 ppm later
			{1200 * time.Second, 1200*time.Second + 5*ms + 6*ms}, // 30 ppm
			{1300 * time.Second, 1300*time.Second + 5*ms + 9*ms}, // 30 ppm
		}, 14 * ms},
		{"a log clock ahead of CLOCK_MONOTONIC", []sample{{1000 * time.Second, 1000*time.Second - 2*ms}}, -2 * ms},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Clock
			for _, s := range tc.samples {
				c.Observe(s.ts, s.readMono)
			}
			got, have := c.Offset()
			assert.Equal(t, tc.want, got)
			assert.Equal(t, len(tc.samples) > 0, have)
		})
	}
}

func TestClockWall(t *testing.T) {
	var c Clock
	nowWall := time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC)
	nowMono := 7200 * time.Second
	// Without a sample a record stamped 2 s before now is dated 2 s ago.
	assert.Equal(t, nowWall.Add(-2*time.Second), c.Wall(nowMono-2*time.Second, nowWall, nowMono))
	// The log's clock runs 40 ms behind: a record read right away (1 ms
	// after it was printed) stamped 7199.960 was printed at 7200 − 1 ms.
	c.Observe(7199960*time.Millisecond, 7200*time.Second+time.Millisecond)
	assert.Equal(t, nowWall.Add(time.Millisecond), c.Wall(7199960*time.Millisecond, nowWall.Add(time.Millisecond), 7200*time.Second+time.Millisecond))
	// An older record is dated with the same estimate (which includes the
	// 1 ms wake-up): 1 s earlier than that one.
	assert.Equal(t, nowWall.Add(-999*time.Millisecond), c.Wall(7198960*time.Millisecond, nowWall, nowMono))
}
