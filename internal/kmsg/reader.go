package kmsg

import (
	"errors"
	"fmt"
	"io"
	"os"
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
// The module pinned in DESIGN (euank/go-kmsg-parser) is not used: it opens
// /dev/kmsg unconditionally (no kmsg_path, no test device), stops for good
// at the first malformed record, and dates records from a boot time with
// one-second resolution. This reader has none of those limits.
type Reader struct {
	f   *os.File
	buf []byte
	// boot is the wall-clock time of boot (realtime - monotonic), used to
	// date records: the kernel stamps them with local_clock(), which runs
	// with CLOCK_MONOTONIC. Next renews it for every record, so a step of
	// the wall clock (NTP, settimeofday) while the reader runs for weeks
	// dates the records after it as dmesg would.
	boot time.Time
}

// Open opens a kmsg device for reading from the oldest record in the ring.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	boot, err := bootTime()
	if err != nil {
		f.Close()
		return nil, err
	}
	// Records are at most 1 KiB of text plus escapes and dictionary; 16 KiB
	// never truncates (a short buffer makes the kernel answer EINVAL).
	return &Reader{f: f, buf: make([]byte, 16<<10), boot: boot}, nil
}

func bootTime() (time.Time, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return time.Time{}, fmt.Errorf("reading CLOCK_MONOTONIC: %w", err)
	}
	return time.Now().Add(-time.Duration(ts.Nano())), nil
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
	n, err := r.f.Read(r.buf)
	if err != nil {
		if errors.Is(err, syscall.EPIPE) {
			return Record{}, ErrOverwritten
		}
		return Record{}, err
	}
	rec, err := ParseRecord(r.buf[:n])
	if err != nil {
		return Record{}, err
	}
	if boot, err := bootTime(); err == nil {
		r.boot = boot
	}
	rec.Time = r.boot.Add(rec.Monotonic)
	return rec, nil
}

// Close releases the device and unblocks a waiting Next.
func (r *Reader) Close() error {
	return r.f.Close()
}
