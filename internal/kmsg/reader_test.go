// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

//go:build linux

package kmsg

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
)

// TestReaderRealDevice writes a unique line into the real /dev/kmsg while
// the reader waits, and reads it back with its sequence number and a wall
// time between the write and the read: dated by the kernel's own clock,
// corrected for that clock's drift from CLOCK_MONOTONIC (realtime −
// monotonic + timestamp alone dates it before it was written when the
// kernel's clock runs behind, as on the CI machine).
func TestReaderRealDevice(t *testing.T) {
	if os.Geteuid() != 0 {
		cgrouptest.Unavailable(t, "writing /dev/kmsg needs root")
	}
	r, err := Open("/dev/kmsg")
	if err != nil {
		cgrouptest.Unavailable(t, "opening /dev/kmsg: %v", err)
	}
	defer r.Close()
	require.NoError(t, r.SeekEnd())

	marker := fmt.Sprintf("oomsight-kmsg-test %d %d", os.Getpid(), time.Now().UnixNano())
	type read struct {
		rec Record
		at  time.Time
	}
	got := make(chan read, 1)
	go func() {
		for {
			rec, err := r.Next()
			at := time.Now()
			if err != nil {
				if errors.Is(err, os.ErrClosed) {
					return
				}
				continue
			}
			if strings.Contains(rec.Message, marker) {
				got <- read{rec, at}
				return
			}
		}
	}()
	time.Sleep(100 * time.Millisecond) // the reader waits at the end of the ring
	before := time.Now()
	require.NoError(t, os.WriteFile("/dev/kmsg", []byte(marker+"\n"), 0))
	select {
	case g := <-got:
		assert.True(t, g.rec.HasSeq)
		assert.False(t, g.rec.Time.Before(before), "dated %v before it was written at %v", g.rec.Time, before)
		assert.False(t, g.rec.Time.After(g.at), "dated %v after it was read at %v", g.rec.Time, g.at)
		_, have := r.clock.Offset()
		assert.True(t, have, "a record read after a wait measures the clock")
	case <-time.After(5 * time.Second):
		t.Fatal("marker not read back from /dev/kmsg")
	}
}

// TestReaderCloseUnblocks: a Next waiting at the end of the ring returns
// once the reader is closed (the receiver's shutdown relies on it).
func TestReaderCloseUnblocks(t *testing.T) {
	if os.Geteuid() != 0 {
		cgrouptest.Unavailable(t, "reading /dev/kmsg needs root here")
	}
	r, err := Open("/dev/kmsg")
	if err != nil {
		cgrouptest.Unavailable(t, "opening /dev/kmsg: %v", err)
	}
	require.NoError(t, r.SeekEnd())
	done := make(chan error, 1)
	go func() {
		for {
			if _, err := r.Next(); errors.Is(err, os.ErrClosed) {
				done <- err
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	require.NoError(t, r.Close())
	select {
	case err := <-done:
		assert.ErrorIs(t, err, os.ErrClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("Next did not return after Close")
	}
}
