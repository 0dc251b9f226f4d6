// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package text reads the kernel log as people save and paste it — dmesg in
// its forms, syslog, journalctl, raw /dev/kmsg dumps, with line numbers or
// table columns in front — and turns each record into the kmsg.Record the
// /dev/kmsg reader gives, so that one assembler reads both. It knows the
// log's prefixes; what a kernel line looks like it learns from the caller
// (Lines), which lets it find the kernel's text behind a prefix it does not
// know.
package text // import "github.com/oomsight/oomsight/internal/kmsg/text"

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"iter"
	"regexp"
	"strings"
	"time"

	"github.com/oomsight/oomsight/internal/kmsg"
)

type format int

const (
	formatBare format = iota
	formatKmsg
	formatDmesg // dmesg and dmesg -T: util-linux indents continuation lines
	formatSyslog
)

// Lines is what the reader knows of the kernel lines it looks for.
type Lines interface {
	// Known tells whether msg is a kernel line that says what it is by
	// itself.
	Known(msg string) bool
	// Context tells whether msg has the shape of a kernel line that only
	// the line before it explains (a stat line, a task row).
	Context(msg string) bool
	// Start returns where in msg, after a separator, a Known line with a
	// fixed beginning starts, or -1.
	Start(msg string) int
	// AfterNumber tells whether rest, what follows a leading number, is a
	// kernel line that leaves the number a line number (not one whose
	// free-form beginning, a task name, the number could be part of).
	AfterNumber(rest string) bool
}

// Option configures how kernel log text is read.
type Option func(*textReader)

// WithUTCOffset says what UTC offset the logging machine's clock had: the
// stamps of dmesg -T and syslog carry no zone. Without it their times are
// reported as local times with an unknown offset (Record.TimeZoneUnknown).
func WithUTCOffset(d time.Duration) Option {
	return func(t *textReader) { t.zone = time.FixedZone("", int(d/time.Second)) }
}

// textReader turns lines of kernel log text into records. It learns, from
// lines whose kernel text it found behind a prefix it does not know, the
// shape of that prefix, so that the report's other lines (stat dump, task
// table) lose it too.
type textReader struct {
	lines   Lines
	zone    *time.Location // nil: zone-less stamps are local, offset unknown
	learned *regexp.Regexp // shape of an unknown prefix, once seen
	// malformed is told of each raw kmsg record that cannot be parsed
	// (WithMalformed); malformedErr is the last such error of peel.
	malformed    func(error)
	malformedErr error
}

// WithMalformed has fn told of each line in the raw /dev/kmsg form that is
// not a valid record (a sequence number or timestamp out of range, …):
// Records skips it, and the caller counts it rather than losing it
// silently.
func WithMalformed(fn func(error)) Option {
	return func(t *textReader) { t.malformed = fn }
}

// ParseLine turns one line of kernel log text into a record; see Records
// for the forms it reads. It returns false for an empty line, a malformed
// kmsg record, and a syslog line from a program other than the kernel.
//
// Syslog's "Jan  5 02:12:02" carries no year, so such lines get no wall
// clock time (a guessed year would be silently wrong around New Year); the
// kernel timestamp some daemons keep after "kernel:" is used instead.
func ParseLine(line string, lines Lines, opts ...Option) (kmsg.Record, bool) {
	t := newTextReader(lines, opts)
	r, _, ok := t.parse(line)
	return r, ok
}

func newTextReader(lines Lines, opts []Option) *textReader {
	t := &textReader{lines: lines}
	for _, o := range opts {
		o(t)
	}
	return t
}

func (t *textReader) parse(line string) (kmsg.Record, format, bool) {
	line = strings.TrimRight(line, "\r\n")
	if strings.TrimSpace(line) == "" {
		return kmsg.Record{}, formatBare, false
	}
	if jr, isJSON, ok := t.journalJSON(line); isJSON {
		return jr, formatSyslog, ok
	}
	t.malformedErr = nil
	r, f, ok := t.peel(line)
	if !ok && f == formatKmsg && t.malformedErr != nil && t.malformed != nil {
		t.malformed(t.malformedErr)
	}
	if !ok || f == formatKmsg || t.lines.Known(r.Message) {
		// A /dev/kmsg record's header is read exactly: nothing of its
		// message is a prefix (a task row's name may look like one).
		return r, f, ok
	}
	// A table export (Kibana, Splunk, a spreadsheet): the message is a
	// column of its own, after the time and host columns.
	if cols := columns(line); len(cols) > 1 {
		var last kmsg.Record
		var lastF format
		lastOK := false
		for _, c := range cols[1:] {
			if strings.TrimSpace(c) == "" {
				continue
			}
			cr, cf, cok := t.peel(c)
			if cok && t.lines.Known(cr.Message) {
				return cr, cf, true
			}
			last, lastF, lastOK = cr, cf, cok
		}
		if lastOK {
			r, f = last, lastF
		}
	}
	r.Message = t.unknownPrefix(r.Message)
	return r, f, true
}

// maxLine bounds one input line; the longest kernel records (a 5.3–6.3 stat
// dump) are a few KiB.
const maxLine = 1 << 20

// Records reads kernel log text and yields one record per log record. It
// reads raw /dev/kmsg records, dmesg ("[ 1234.567890] msg"), dmesg -T,
// -x, -H, -d and --time-format=iso, syslog (with or without a hostname,
// with busybox's facility.level, with the kernel's [uptime] after
// "kernel:"), journalctl -k lines (short, short-precise, short-iso,
// short-full, short-monotonic, short-delta, short-unix, json), JSON lines
// with a message field, bare kernel lines, any of these behind grep -n, cat -n
// or an editor's line numbers, and table exports with columns before the
// message. Behind a prefix it does not know it finds the kernel's text by
// what an OOM report prints.
//
// It folds the lines util-linux dmesg prints for one multi-line record (the
// extra lines indented, without a timestamp) back into that record, and
// drops the KEY=value dictionary lines of /dev/kmsg dumps. busybox dmesg
// repeats the timestamp on every line instead; those lines stay separate
// records, which an assembler must accept as well (6.4+ logs the same way).
func Records(rd io.Reader, lines Lines, opts ...Option) iter.Seq2[kmsg.Record, error] {
	return func(yield func(kmsg.Record, error) bool) {
		t := newTextReader(lines, opts)
		sc := bufio.NewScanner(rd)
		sc.Buffer(make([]byte, 0, 64<<10), maxLine)
		var (
			pending kmsg.Record
			more    strings.Builder // continuation lines of pending
			have    bool
			last    format
		)
		flush := func() bool {
			if more.Len() > 0 {
				pending.Message += more.String()
				more.Reset()
			}
			return yield(pending, nil)
		}
		for sc.Scan() {
			line := sc.Text()
			if have && (line == "" || line[0] == ' ' || line[0] == '\t') {
				switch last {
				case formatKmsg:
					continue // dictionary line
				case formatDmesg:
					if _, f, _ := t.peel(line); f == formatBare && !t.lines.Known(strings.TrimSpace(line)) {
						if len(pending.Message)+more.Len()+len(line) > maxLine {
							// A record past maxLine goes on as a record
							// of its own: memory stays bounded.
							if !flush() {
								return
							}
							pending.Message = strings.TrimLeft(line, " \t")
							continue
						}
						more.WriteString("\n")
						more.WriteString(strings.TrimLeft(line, " \t"))
						continue
					}
				}
			}
			r, f, ok := t.parse(line)
			if !ok {
				continue
			}
			if have && !flush() {
				return
			}
			pending, have, last = r, true, f
		}
		if have && !flush() {
			return
		}
		if err := sc.Err(); err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				err = fmt.Errorf("a line is longer than %d bytes: %w", maxLine, err)
			}
			yield(kmsg.Record{}, fmt.Errorf("reading kernel log: %w", err))
		}
	}
}
