// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package kmsg reads the kernel log: records from /dev/kmsg (or any file
// in that format) with their sequence numbers and timestamps; the text
// forms the kernel log takes elsewhere are turned into the same Record by
// the subpackage text.
package kmsg // import "github.com/oomsight/oomsight/internal/kmsg"

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Record is one kernel log record.
type Record struct {
	// Priority is the syslog priority as /dev/kmsg gives it (facility<<3 |
	// level); -1 when the source does not tell.
	Priority int
	// Seq is the record's sequence number in the kernel ring buffer.
	Seq    uint64
	HasSeq bool
	// Monotonic is the kernel timestamp: time since boot.
	Monotonic    time.Duration
	HasMonotonic bool
	// Time is the wall-clock time of the record, when known.
	Time time.Time
	// TimeZoneUnknown marks a Time read from a stamp without a zone
	// (dmesg -T, syslog): its fields are the logging machine's local wall
	// clock, held in UTC, and its offset from UTC is unknown.
	TimeZoneUnknown bool
	// Message is the record's text: from /dev/kmsg with the kernel's \xNN
	// escapes decoded into the bytes they stand for; from the text other
	// log tools write, as the tool wrote it (see kmsg/text). One record
	// can hold several lines (the 5.3–6.3 memcg stat dump), and so can a
	// task name the record prints (prctl(PR_SET_NAME) takes any bytes):
	// the kernel writes both newlines alike, so a newline in Message is
	// no record boundary, and only a reader that knows the line's shape
	// may cut there.
	Message string
}

// maxUsec is the largest timestamp a time.Duration holds in microseconds
// (292 years of uptime).
const maxUsec = math.MaxInt64 / int64(time.Microsecond)

// ErrMalformed marks a record that is not in the /dev/kmsg format.
var ErrMalformed = errors.New("malformed kmsg record")

// ParseRecord parses one /dev/kmsg record:
//
//	prio,seq,usec,flags[,more];message\n
//	 KEY=value\n          (dictionary lines, dropped)
//
// as one read(2) of /dev/kmsg returns it, or as a line of a saved kmsg dump.
// Non-printable bytes in the message arrive escaped as \xNN and are decoded.
func ParseRecord(b []byte) (Record, error) {
	before, after, ok := bytes.Cut(b, []byte{';'})
	if !ok {
		return Record{}, fmt.Errorf("%w: no ';' in %q", ErrMalformed, truncate(b))
	}
	head, msg := before, after
	if nl := bytes.IndexByte(msg, '\n'); nl >= 0 {
		msg = msg[:nl] // what follows is the dictionary
	}
	fields := bytes.SplitN(head, []byte{','}, 5)
	if len(fields) < 4 {
		return Record{}, fmt.Errorf("%w: header %q needs prio,seq,usec,flags", ErrMalformed, head)
	}
	prio, err := strconv.Atoi(string(fields[0]))
	if err != nil || prio < 0 {
		return Record{}, fmt.Errorf("%w: priority %q", ErrMalformed, fields[0])
	}
	seq, err := strconv.ParseUint(string(fields[1]), 10, 64)
	if err != nil {
		return Record{}, fmt.Errorf("%w: sequence number %q", ErrMalformed, fields[1])
	}
	usec, err := strconv.ParseInt(string(fields[2]), 10, 64)
	if err != nil || usec < 0 || usec > maxUsec {
		// Past maxUsec the time.Duration would wrap to a negative time.
		return Record{}, fmt.Errorf("%w: timestamp %q", ErrMalformed, fields[2])
	}
	return Record{
		Priority:     prio,
		Seq:          seq,
		HasSeq:       true,
		Monotonic:    time.Duration(usec) * time.Microsecond,
		HasMonotonic: true,
		Message:      Unescape(string(msg)),
	}, nil
}

// Unescape decodes the \xNN escapes /dev/kmsg writes for bytes below 0x20,
// from 0x7f up, and for the backslash (\x5c; kernel/printk/printk.c,
// msg_add_ext_text), so that every \xNN in a kmsg record is an escape. It
// is for that form only: dmesg, journald and syslog write other text.
func Unescape(s string) string {
	if !strings.Contains(s, `\x`) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			if v, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func truncate(b []byte) []byte {
	if len(b) > 80 {
		return b[:80]
	}
	return b
}
