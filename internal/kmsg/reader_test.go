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

	"github.com/oomsight/oomsight/internal/cgrouptest"
)

// TestReaderRealDevice writes a unique line into the real /dev/kmsg and
// reads it back with its sequence number and a wall-clock time close to
// now.
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
	before := time.Now()
	require.NoError(t, os.WriteFile("/dev/kmsg", []byte(marker+"\n"), 0))

	got := make(chan Record, 1)
	go func() {
		for {
			rec, err := r.Next()
			if err != nil {
				if errors.Is(err, os.ErrClosed) {
					return
				}
				continue
			}
			if strings.Contains(rec.Message, marker) {
				got <- rec
				return
			}
		}
	}()
	select {
	case rec := <-got:
		assert.True(t, rec.HasSeq)
		assert.WithinDuration(t, before, rec.Time, time.Second, "kernel time converted to wall clock")
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
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Next did not return after Close")
	}
}
