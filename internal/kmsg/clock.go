// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package kmsg // import "github.com/oomsight/oomsight/internal/kmsg"

import "time"

// maxDrift bounds how fast the kernel log's clock can move away from
// CLOCK_MONOTONIC: NTP slews CLOCK_MONOTONIC by at most 500 ppm.
const maxDrift = 500e-6

// Clock dates kernel log records in wall-clock time.
//
// The kernel stamps records with local_clock(). Where the scheduler clock
// is anchored to the timekeeper (most VMs) it stays within milliseconds of
// CLOCK_MONOTONIC; on bare metal with a stable TSC it is the raw TSC, which
// NTP does not correct, and drifts from CLOCK_MONOTONIC by the crystal's
// error: tens of ppm, seconds a day, minutes on a node up for a month
// (the reason `dmesg -T` is known to be off). So realtime − monotonic + the
// record's timestamp is wrong by that drift.
//
// Clock measures the drift from the records themselves: a record read right
// after the reader had to wait for it was printed moments before, so
// readMonotonic − timestamp is the drift plus a small wake-up latency (up to
// a scheduler tick). The estimate is the lowest such sample, allowed to rise
// at maxDrift in between so that it follows a clock that falls behind; a
// record is dated timestamp + estimate on CLOCK_MONOTONIC. Until the first
// sample the estimate is 0, which is what dmesg assumes.
//
// Clock is pure (no clock reads of its own), so it is table-tested.
type Clock struct {
	offset time.Duration // estimated CLOCK_MONOTONIC − local_clock()
	at     time.Duration // CLOCK_MONOTONIC of the last sample
	have   bool
}

// Observe takes a sample from a record with kernel timestamp ts that was
// read at CLOCK_MONOTONIC readMono right after the reader waited for it.
func (c *Clock) Observe(ts, readMono time.Duration) {
	sample := readMono - ts
	if c.have {
		risen := c.offset + time.Duration(float64(readMono-c.at)*maxDrift)
		if risen < sample {
			sample = risen
		}
	}
	c.offset, c.at, c.have = sample, readMono, true
}

// Offset is the current estimate of CLOCK_MONOTONIC − local_clock() and
// whether any sample went into it.
func (c *Clock) Offset() (time.Duration, bool) { return c.offset, c.have }

// Wall converts kernel timestamp ts to wall-clock time, given the wall
// clock and CLOCK_MONOTONIC read together now.
func (c *Clock) Wall(ts time.Duration, nowWall time.Time, nowMono time.Duration) time.Time {
	return nowWall.Add(ts + c.offset - nowMono)
}
