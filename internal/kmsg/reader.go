// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

//go:build linux

package kmsg // import "github.com/oomsight/oomsight/internal/kmsg"

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrOverwritten is returned by Next when the kernel overwrote records
// this reader had not read yet (the ring buffer wrapped: EPIPE). Reading
// continues with the oldest record still there; the sequence numbers tell
// how many were lost.
var ErrOverwritten = errors.New("kmsg records overwritten before they were read")

// Reader reads records from /dev/kmsg (or a file in its format). Each
// read(2) of the device returns exactly one record. Close unblocks a Next
// waiting for the next record.
//
// github.com/euank/go-kmsg-parser is not used: it opens
// /dev/kmsg unconditionally (no kmsg_path, no test device), stops for good
// at the first malformed record, and dates records from a boot time with
// one-second resolution. This reader has none of those limits.
type Reader struct {
	f    *os.File
	conn syscall.RawConn
	buf  []byte
	// clock dates the records; see Clock for why realtime − monotonic is
	// not enough.
	clock  Clock
	closed atomic.Bool
	waited bool // the last Next waited for its record
}

// Open opens a kmsg device for reading from the oldest record in the ring.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	conn, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// Records are at most 1 KiB of text plus escapes and dictionary; 16 KiB
	// never truncates (a short buffer makes the kernel answer EINVAL).
	return &Reader{f: f, conn: conn, buf: make([]byte, 16<<10)}, nil
}

// now reads the wall clock and CLOCK_MONOTONIC together.
func now() (time.Time, time.Duration) {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) // cannot fail for a valid clock id
	return time.Now(), time.Duration(ts.Nano())
}

// SeekEnd skips every record already in the ring: only new ones are read.
func (r *Reader) SeekEnd() error {
	_, err := r.f.Seek(0, io.SeekEnd)
	return err
}

// Next returns the next record, waiting for one if there is none yet. It
// returns ErrOverwritten once after records were lost, a wrapped
// ErrMalformed for a record it cannot parse (reading can go on), and
// os.ErrClosed after Close.
func (r *Reader) Next() (Record, error) {
	n, waited, err := r.read()
	r.waited = waited
	if err != nil {
		if errors.Is(err, syscall.EPIPE) {
			return Record{}, ErrOverwritten
		}
		return Record{}, err
	}
	wall, mono := now()
	rec, err := ParseRecord(r.buf[:n])
	if err != nil {
		return Record{}, err
	}
	if waited {
		r.clock.Observe(rec.Monotonic, mono)
	}
	rec.Time = r.clock.Wall(rec.Monotonic, wall, mono)
	return rec, nil
}

// Waited tells whether the last Next had to wait for its record: the
// reader had reached the end of the ring, and what it reads from then on is
// new rather than backlog.
func (r *Reader) Waited() bool { return r.waited }

// read reads one record and tells whether it had to wait for it (the
// record is new, not backlog). The device is in the runtime's poller, so a
// wait is a poll that Close interrupts; a regular file never waits.
func (r *Reader) read() (n int, waited bool, err error) {
	var rerr error
	cerr := r.conn.Read(func(fd uintptr) bool {
		for n, rerr = unix.Read(int(fd), r.buf); rerr == unix.EINTR; {
			n, rerr = unix.Read(int(fd), r.buf)
		}
		if rerr == unix.EAGAIN {
			waited = true
			return false
		}
		return true
	})
	switch {
	case cerr != nil && r.closed.Load():
		return 0, false, os.ErrClosed // the poller's own "use of closed file"
	case cerr != nil:
		return 0, false, cerr
	case rerr != nil:
		return 0, false, rerr
	case n == 0:
		return 0, false, io.EOF
	}
	return n, waited, nil
}

// Close releases the device and unblocks a waiting Next.
func (r *Reader) Close() error {
	r.closed.Store(true)
	return r.f.Close()
}
