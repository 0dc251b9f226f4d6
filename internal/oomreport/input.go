package oomreport

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"iter"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/oomsight/oomsight/internal/kmsg"
)

// The text forms of the kernel log that the line adapter accepts.
var (
	// raw /dev/kmsg: "6,391,17191113,-;memory: usage …"
	reRawKmsg = regexp.MustCompile(`^\d+,\d+,\d+,[^;]*;`)
	// syslog priority as busybox "dmesg -r" and /proc/kmsg print it: "<6>"
	rePrio = regexp.MustCompile(`^<(\d{1,3})>`)
	// dmesg: "[   17.191113] memory: usage …" (the kernel's own text may
	// begin with a space, so only one space after "]" is the separator)
	reDmesg = regexp.MustCompile(`^\[\s*(\d+)\.(\d{1,9})\] ?`)
	// dmesg -T: "[Thu May 14 23:17:24 2020] …"
	reDmesgT = regexp.MustCompile(`^\[((?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4})\] ?`)
	// dmesg --time-format=iso: "2026-12-01T14:32:01,330990+00:00 …"
	reDmesgISO = regexp.MustCompile(`^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d,\d+[+-]\d\d:\d\d) ?`)
	// journalctl -k -o short-monotonic: "[ 3169.330990] host kernel: …"
	reJournalMono = regexp.MustCompile(`^\[\s*(\d+)\.(\d{1,9})\] \S+ kernel: ?`)
	// syslog without a hostname (busybox syslogd -S, some embedded
	// syslogs): "Dec  1 14:32:01 kernel: …"
	reSyslogNoHost = regexp.MustCompile(`^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)? kernel: ?`)
	// syslog / journalctl -k short and short-precise: "Jan  5 02:12:02 host
	// kernel: …", and busybox syslogd's "host kern.err kernel: …"
	reSyslog = regexp.MustCompile(`^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)? \S+ (?:[a-z0-9]+\.[a-z]+ )?(\S+?)(?:\[\d+\])?: ?`)
	// journalctl -o short-iso(-precise): "2024-01-05T02:12:02+0000 host kernel: …"
	reISO = regexp.MustCompile(`^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)) \S+ (\S+?)(?:\[\d+\])?: ?`)
	// the kernel's own "[123.456789] " that syslog daemons keep after "kernel:"
	reInnerStamp = regexp.MustCompile(`^\[\s*(\d+)\.(\d{1,9})\] ?`)
)

type format int

const (
	formatBare format = iota
	formatKmsg
	formatDmesg // dmesg and dmesg -T: util-linux indents continuation lines
	formatSyslog
)

// ParseLine turns one line of kernel log text into a record. It accepts
// raw /dev/kmsg records, dmesg ("[ 1234.567890] msg"), dmesg -T, dmesg
// --time-format=iso, syslog (with or without a hostname, with busybox's
// facility.level), journalctl -k lines (short, short-precise, short-iso,
// short-monotonic) and bare kernel lines. It returns false for an empty line, a malformed kmsg
// record, and a syslog line from a program other than the kernel.
//
// Syslog's "Jan  5 02:12:02" carries no year, so such lines get no wall
// clock time (a guessed year would be silently wrong around New Year); the
// kernel timestamp some daemons keep after "kernel:" is used instead.
func ParseLine(line string) (kmsg.Record, bool) {
	r, _, ok := parseLine(line)
	return r, ok
}

func parseLine(line string) (kmsg.Record, format, bool) {
	line = strings.TrimRight(line, "\r\n")
	if strings.TrimSpace(line) == "" {
		return kmsg.Record{}, formatBare, false
	}
	if reRawKmsg.MatchString(line) {
		r, err := kmsg.ParseRecord([]byte(line))
		return r, formatKmsg, err == nil
	}
	r := kmsg.Record{Priority: -1}
	if m := rePrio.FindStringSubmatch(line); m != nil {
		r.Priority, _ = strconv.Atoi(m[1])
		line = line[len(m[0]):]
	}
	if m := reJournalMono.FindStringSubmatch(line); m != nil {
		r.Monotonic, r.HasMonotonic = stamp(m[1], m[2])
		r.Message = line[len(m[0]):]
		return r, formatSyslog, true
	}
	if m := reDmesg.FindStringSubmatch(line); m != nil {
		r.Monotonic, r.HasMonotonic = stamp(m[1], m[2])
		r.Message = line[len(m[0]):]
		return r, formatDmesg, true
	}
	if m := reDmesgT.FindStringSubmatch(line); m != nil {
		r.Time, _ = time.ParseInLocation("Mon Jan _2 15:04:05 2006", m[1], time.Local)
		r.Message = line[len(m[0]):]
		return r, formatDmesg, true
	}
	if m := reDmesgISO.FindStringSubmatch(line); m != nil {
		r.Time = parseISO(m[1])
		r.Message = line[len(m[0]):]
		return r, formatDmesg, true
	}
	if m := reISO.FindStringSubmatch(line); m != nil {
		if m[2] != "kernel" {
			return kmsg.Record{}, formatSyslog, false
		}
		r.Time = parseISO(m[1])
		return inner(r, line[len(m[0]):]), formatSyslog, true
	}
	if m := reSyslogNoHost.FindStringSubmatch(line); m != nil {
		return inner(r, line[len(m[0]):]), formatSyslog, true
	}
	if m := reSyslog.FindStringSubmatch(line); m != nil {
		if m[1] != "kernel" {
			return kmsg.Record{}, formatSyslog, false
		}
		return inner(r, line[len(m[0]):]), formatSyslog, true
	}
	r.Message = kmsg.Unescape(line)
	return r, formatBare, true
}

// inner takes the kernel timestamp some syslog daemons keep after "kernel:".
// rsyslog writes a newline inside a record (the 5.3–6.3 stat dump is one
// record of many lines) as "#012"; it becomes a newline again.
func inner(r kmsg.Record, msg string) kmsg.Record {
	msg = strings.ReplaceAll(msg, "#012", "\n")
	if m := reInnerStamp.FindStringSubmatch(msg); m != nil {
		r.Monotonic, r.HasMonotonic = stamp(m[1], m[2])
		msg = msg[len(m[0]):]
	}
	r.Message = msg
	return r
}

func stamp(sec, frac string) (time.Duration, bool) {
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || s > int64(time.Duration(1<<63-1)/time.Second) {
		return 0, false
	}
	ns, _ := strconv.ParseInt((frac + "000000000")[:9], 10, 64)
	return time.Duration(s)*time.Second + time.Duration(ns), true
}

func parseISO(s string) time.Time {
	s = strings.Replace(s, ",", ".", 1)
	for _, layout := range []string{"2006-01-02T15:04:05.999999999Z0700", time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}

// maxLine bounds one input line; the longest kernel records (a 5.3–6.3 stat
// dump) are a few KiB.
const maxLine = 1 << 20

// Records reads kernel log text and yields one record per log record. It
// folds the lines util-linux dmesg prints for one multi-line record (the
// extra lines indented, without a timestamp) back into that record, and
// drops the KEY=value dictionary lines of /dev/kmsg dumps. busybox dmesg
// repeats the timestamp on every line instead; those lines stay separate
// records, which the Assembler accepts as well (6.4+ logs the same way).
func Records(rd io.Reader) iter.Seq2[kmsg.Record, error] {
	return func(yield func(kmsg.Record, error) bool) {
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
					if _, f, _ := parseLine(line); f == formatBare {
						more.WriteString("\n")
						more.WriteString(strings.TrimLeft(line, " \t"))
						continue
					}
				}
			}
			r, f, ok := parseLine(line)
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

// ReadAll reads a whole kernel log (any form ParseLine accepts) and returns
// one report per killed process. On a read error it returns the reports
// assembled so far with the error.
func ReadAll(rd io.Reader, opts ...Option) ([]*Report, error) {
	a := NewAssembler(opts...)
	var out []*Report
	for r, err := range Records(rd) {
		if err != nil {
			return append(out, a.Flush()...), err
		}
		out = append(out, a.Add(r)...)
	}
	return append(out, a.Flush()...), nil
}
