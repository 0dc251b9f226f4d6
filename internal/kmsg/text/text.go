// Package text reads the kernel log as people save and paste it — dmesg in
// its forms, syslog, journalctl, raw /dev/kmsg dumps, with line numbers or
// table columns in front — and turns each record into the kmsg.Record the
// /dev/kmsg reader gives, so that one assembler reads both. It knows the
// log's prefixes; what a kernel line looks like it learns from the caller
// (Lines), which lets it find the kernel's text behind a prefix it does not
// know.
package text

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
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

// The prefixes that log tools put before the kernel's text. A line may
// carry several (a grep -n line number, then a syslog header, then the
// kernel's own [uptime]); each is taken off at most once, in any order.
var (
	// raw /dev/kmsg: "6,391,17191113,-;memory: usage …"
	reRawKmsg = regexp.MustCompile(`^\d+,\d+,\d+,[^;]*;`)
	// grep -n ("166233:"), grep -n context ("166233-"), cat -n ("  12\t"),
	// an editor's line numbers ("166233 "). Taken off only when what
	// follows is another prefix or a kernel line (see lineNumberFits).
	reLineNumber = regexp.MustCompile(`^\s*\d+(?:[:-]\s*|\t\s*|\s+)`)
	// syslog priority as busybox "dmesg -r" and /proc/kmsg print it: "<6>"
	rePrio = regexp.MustCompile(`^<(\d{1,3})>`)
	// dmesg -x: "kern  :warn  : "
	reFacLevel = regexp.MustCompile(`^(?:kern|user|mail|daemon|auth|syslog|lpr|news|uucp|cron|authpriv|ftp|local[0-7])\s*:\s*(?:emerg|alert|crit|err|warn|notice|info|debug)\s*: ?`)
	// dmesg and the kernel's own stamp after a syslog header:
	// "[   17.191113] " (the kernel's own text may begin with a space, so
	// only one space after "]" is the separator)
	// dmesg -d and journalctl -o short-delta add the time since the
	// previous line: "[ 3169.330990 <    0.000123>] ".
	reStamp = regexp.MustCompile(`^\[\s*(\d+)\.(\d{1,9})(?: <\s*\d+\.\d+>)?\] ?`)
	// dmesg -T: "[Thu May 14 23:17:24 2020] " (local time, no zone)
	reDmesgT = regexp.MustCompile(`^\[((?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4})\] ?`)
	// dmesg -H / --reltime: "[Aug17 17:29] ", "[  +0.000123] " (no date
	// or no absolute time: nothing to keep)
	reDmesgRel = regexp.MustCompile(`^\[(?:[A-Z][a-z]{2}\d{1,2} \d\d:\d\d|\s*\+\s*\d+\.\d+)\] ?`)
	// dmesg --time-format=iso: "2026-12-01T14:32:01,330990+00:00 "
	reDmesgISO = regexp.MustCompile(`^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d,\d+[+-]\d\d:\d\d) ?`)
	// syslog and journalctl -k short/short-precise, with or without a host,
	// with busybox's facility.level: "Jan  5 02:12:02 host kernel: ",
	// "Apr 18 00:37:34   kernel: ", "Dec  1 14:32:07 vm kern.warn kernel: "
	reSyslog = regexp.MustCompile(`^[A-Z][a-z]{2} [ \d]?\d \d\d:\d\d:\d\d(?:\.\d+)?\s+(?:\S+\s+)??(?:[a-z0-9]+\.[a-z]+\s+)?([^\s:\[]+)(?:\[\d+\])?: ?`)
	// journalctl -o short-iso(-precise), rsyslog's RFC 3339 stamps:
	// "2024-01-05T02:12:02+0000 host kernel: "; also without a zone
	// ("2024-01-05 02:12:02 host kernel: ", local time).
	reISO = regexp.MustCompile(`^(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?)(Z|[+-]\d\d:?\d\d)?\s+(?:\S+\s+)??([^\s:\[]+)(?:\[\d+\])?: ?`)
	// journalctl -o short-unix: "1692293367.402000 host kernel: " (UTC)
	reShortUnix = regexp.MustCompile(`^(\d{9,11}\.\d{1,9})\s+(?:\S+\s+)??([^\s:\[]+)(?:\[\d+\])?: ?`)
	// journalctl -o short-full: "Thu 2023-08-17 17:29:27 UTC host kernel: "
	reShortFull = regexp.MustCompile(`^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) ([A-Z]{2,5}|[+-]\d{4})\s+(?:\S+\s+)??([^\s:\[]+)(?:\[\d+\])?: ?`)
	// journalctl -k -o short-monotonic puts the host and "kernel:" after
	// the stamp: "[ 3169.330990] host kernel: "; only with the kernel's
	// tag (an OOM report's own lines never read "word kernel: ").
	reHostKernel = regexp.MustCompile(`^\S+ kernel: ?`)
	// any header the forms above do not know, ended by the kernel's tag:
	// "Aug 17, 2023 @ 17:29:27.402 ip-10-0-1-2 kernel: "
	reKernelTag = regexp.MustCompile(`(?:^|\s)kernel(?:\[\d+\])?: ?`)
)

// headers are the syslog-style headers: a stamp, maybe a host, and the
// program's tag; tag and date are their submatch numbers (the zone follows
// the date; date 0: the stamp has no year, so no time is kept).
var headers = []struct {
	re        *regexp.Regexp
	tag, date int
}{
	{reShortFull, 3, 1},
	{reISO, 3, 1},
	{reShortUnix, 2, -1},
	{reSyslog, 1, 0},
}

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
	r, f, ok := t.peel(line)
	if !ok || t.lines.Known(r.Message) {
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

// journalJSON reads a line of journalctl -o json (or a log shipper's JSON
// with a message field): the message, and the wall clock and kernel time
// journald recorded. It returns false for anything else, and for another
// program's entry (a SYSLOG_IDENTIFIER other than kernel). isJSON tells
// whether the line was such an entry at all; ok whether it is the kernel's.
func (t *textReader) journalJSON(line string) (r kmsg.Record, isJSON, ok bool) {
	trimmed := strings.TrimSpace(line)
	if !strings.HasPrefix(trimmed, "{") || !strings.HasSuffix(trimmed, "}") {
		return kmsg.Record{}, false, false
	}
	var entry map[string]any
	if json.Unmarshal([]byte(trimmed), &entry) != nil {
		return kmsg.Record{}, false, false
	}
	str := func(keys ...string) string {
		for _, k := range keys {
			if v, ok := entry[k].(string); ok {
				return v
			}
		}
		return ""
	}
	msg := str("MESSAGE", "message", "msg", "log")
	if msg == "" {
		return kmsg.Record{}, false, false
	}
	if id := str("SYSLOG_IDENTIFIER"); id != "" && id != "kernel" {
		return kmsg.Record{}, true, false
	}
	r, _, ok = t.peel(strings.TrimRight(msg, "\n"))
	if !ok {
		return kmsg.Record{}, true, false
	}
	if us, err := strconv.ParseInt(str("__REALTIME_TIMESTAMP"), 10, 64); err == nil && us > 0 {
		r.Time, r.TimeZoneUnknown = time.UnixMicro(us).UTC(), false
	}
	if us, err := strconv.ParseInt(str("_SOURCE_MONOTONIC_TIMESTAMP"), 10, 64); err == nil && us >= 0 && !r.HasMonotonic {
		r.Monotonic, r.HasMonotonic = time.Duration(us)*time.Microsecond, true
	}
	if !t.lines.Known(r.Message) {
		r.Message = t.unknownPrefix(r.Message)
	}
	return r, true, true
}

// epoch reads "1692293367.402000", seconds since the epoch.
func epoch(s string) time.Time {
	sec, frac, _ := strings.Cut(s, ".")
	v, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}
	}
	ns, _ := strconv.ParseInt((frac + "000000000")[:9], 10, 64)
	return time.Unix(v, ns).UTC()
}

// unknownPrefix finds the kernel's text behind a prefix no form above
// knows, by what the kernel prints: the first place in msg where a line of
// an OOM report begins. The prefix's shape is learned for the lines that
// tell nothing by themselves (stat lines, task rows).
func (t *textReader) unknownPrefix(msg string) string {
	if i := t.lines.Start(msg); i > 0 {
		t.learned = shapeOf(msg[:i])
		return msg[i:]
	}
	if t.learned != nil && !t.lines.Context(msg) {
		// Only where what remains is a report's line: the shape of a
		// prefix like "host " would otherwise eat the "anon " of a bare
		// "anon 123".
		if loc := t.learned.FindStringIndex(msg); loc != nil && loc[1] < len(msg) {
			if rest := msg[loc[1]:]; t.lines.Context(rest) || t.lines.Known(rest) {
				return rest
			}
		}
	}
	return msg
}

// shapeOf turns a prefix into a pattern that matches prefixes like it:
// digits stand for any digits, letters for any letters, runs of blanks for
// any blanks; other characters stand for themselves.
func shapeOf(prefix string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(prefix); {
		c := prefix[i]
		j := i + 1
		var class string
		switch {
		case c >= '0' && c <= '9':
			class = `\d+`
			for j < len(prefix) && prefix[j] >= '0' && prefix[j] <= '9' {
				j++
			}
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			class = `[A-Za-z]+`
			for j < len(prefix) && (prefix[j] >= 'a' && prefix[j] <= 'z' || prefix[j] >= 'A' && prefix[j] <= 'Z') {
				j++
			}
		case c == ' ' || c == '\t':
			class = `\s+`
			for j < len(prefix) && (prefix[j] == ' ' || prefix[j] == '\t') {
				j++
			}
		default:
			class = regexp.QuoteMeta(prefix[i:j])
		}
		b.WriteString(class)
		i = j
	}
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil // cannot happen: every piece is quoted or a class
	}
	return re
}

// columns splits a line exported from a table: tab-separated, or CSV when
// it starts with a quoted field. Nil when the line has no columns.
func columns(line string) []string {
	if strings.HasPrefix(line, `"`) && strings.Contains(line, `",`) {
		cr := csv.NewReader(strings.NewReader(line))
		cr.LazyQuotes, cr.FieldsPerRecord = true, -1
		if rec, err := cr.Read(); err == nil && len(rec) > 1 {
			return rec
		}
	}
	if strings.Contains(line, "\t") {
		return strings.Split(line, "\t")
	}
	return nil
}

// peel takes the known prefixes off a line and fills the record from them.
func (t *textReader) peel(line string) (kmsg.Record, format, bool) {
	r := kmsg.Record{Priority: -1}
	f := formatBare
	rest := line
	used := map[*regexp.Regexp]bool{}
	for range 8 {
		if !used[reRawKmsg] && reRawKmsg.MatchString(rest) {
			kr, err := kmsg.ParseRecord([]byte(rest))
			return kr, formatKmsg, err == nil
		}
		n, ok, drop := t.peelOne(&r, &f, rest, used)
		if drop {
			return kmsg.Record{}, formatSyslog, false
		}
		if !ok {
			break
		}
		rest = rest[n:]
	}
	if f == formatSyslog {
		// rsyslog writes a newline inside a record (the 5.3–6.3 stat
		// dump is one record of many lines) as "#012".
		rest = strings.ReplaceAll(rest, "#012", "\n")
	}
	r.Message = kmsg.Unescape(rest)
	return r, f, true
}

// peelOne takes one prefix off rest: it returns its length, whether it
// found one, and whether the line is another program's (to be dropped).
func (t *textReader) peelOne(r *kmsg.Record, f *format, rest string, used map[*regexp.Regexp]bool) (n int, ok, drop bool) {
	try := func(re *regexp.Regexp) []string {
		if used[re] {
			return nil
		}
		m := re.FindStringSubmatch(rest)
		if m != nil {
			used[re] = true
		}
		return m
	}
	if m := try(reStamp); m != nil {
		if !r.HasMonotonic {
			r.Monotonic, r.HasMonotonic = stamp(m[1], m[2])
		}
		if *f == formatBare {
			*f = formatDmesg
		}
		return len(m[0]), true, false
	}
	if m := try(reDmesgT); m != nil {
		r.Time, r.TimeZoneUnknown = t.local("Mon Jan _2 15:04:05 2006", m[1])
		if *f == formatBare {
			*f = formatDmesg
		}
		return len(m[0]), true, false
	}
	if m := try(reDmesgRel); m != nil {
		*f = formatDmesg
		return len(m[0]), true, false
	}
	if m := try(reDmesgISO); m != nil {
		r.Time = parseISO(m[1])
		*f = formatDmesg
		return len(m[0]), true, false
	}
	if m := try(rePrio); m != nil {
		r.Priority, _ = strconv.Atoi(m[1])
		return len(m[0]), true, false
	}
	if m := try(reFacLevel); m != nil {
		return len(m[0]), true, false
	}
	for _, h := range headers {
		if used[h.re] {
			continue
		}
		m := h.re.FindStringSubmatchIndex(rest)
		if m == nil {
			continue
		}
		used[h.re] = true
		n := m[1]
		if tag := rest[m[2*h.tag]:m[2*h.tag+1]]; tag != "kernel" {
			// Another program's line, unless the "tag" is the kernel's
			// own text ("memory: usage …", "CPU: 1 PID: …") behind a
			// header that carries no tag.
			if !t.lines.Known(rest[m[2*h.tag]:]) {
				return 0, false, true
			}
			n = m[2*h.tag]
		}
		switch {
		case h.date > 0:
			sub := func(i int) string {
				if m[2*i] < 0 {
					return ""
				}
				return rest[m[2*i]:m[2*i+1]]
			}
			r.Time, r.TimeZoneUnknown = t.zoned(sub(h.date), sub(h.date+1))
		case h.date < 0: // seconds since the epoch
			r.Time = epoch(rest[m[2]:m[3]])
		}
		*f = formatSyslog
		return n, true, false
	}
	if *f != formatBare {
		if m := try(reHostKernel); m != nil {
			*f = formatSyslog
			return len(m[0]), true, false
		}
	}
	if m := try(reLineNumber); m != nil && t.lineNumberFits(rest[len(m[0]):]) {
		return len(m[0]), true, false
	}
	if loc := reKernelTag.FindStringIndex(rest); loc != nil && !used[reKernelTag] && !t.lines.Known(rest) && t.lines.Start(rest[:loc[0]]) < 0 {
		used[reKernelTag] = true
		*f = formatSyslog
		return loc[1], true, false
	}
	return 0, false, false
}

// lineNumberFits tells whether what follows a leading number is a log line
// of its own: another prefix, or a kernel line ("4194304 pages RAM" is a
// kernel line whose number is no line number).
func (t *textReader) lineNumberFits(rest string) bool {
	if reRawKmsg.MatchString(rest) {
		return true
	}
	for _, re := range []*regexp.Regexp{rePrio, reFacLevel, reStamp, reDmesgT, reDmesgRel, reDmesgISO, reShortFull, reISO, reShortUnix, reSyslog, reKernelTag} {
		if re.MatchString(rest) {
			return true
		}
	}
	return t.lines.AfterNumber(rest)
}

// local reads a zone-less stamp: in the zone WithUTCOffset gave, else as
// the logging machine's local time with an unknown offset (kept in UTC so
// that the digits stay as printed).
func (t *textReader) local(layout, s string) (time.Time, bool) {
	loc, unknown := t.zone, false
	if loc == nil {
		loc, unknown = time.UTC, true
	}
	v, err := time.ParseInLocation(layout, s, loc)
	if err != nil {
		return time.Time{}, false
	}
	return v, unknown
}

// zoned reads a stamp with an optional zone. Numeric offsets, Z, UTC and
// GMT are known; no zone is local time (see local); a zone name like CEST
// is local time with an offset this program does not know, whatever
// WithUTCOffset says about zone-less stamps.
func (t *textReader) zoned(s, zone string) (time.Time, bool) {
	s = strings.Replace(strings.Replace(s, ",", ".", 1), " ", "T", 1)
	const layout = "2006-01-02T15:04:05.999999999"
	switch {
	case zone == "":
		return t.local(layout, s)
	case zone == "Z" || zone == "UTC" || zone == "GMT":
		v, err := time.ParseInLocation(layout, s, time.UTC)
		if err != nil {
			return time.Time{}, false
		}
		return v, false
	case zone[0] == '+' || zone[0] == '-':
		if v := parseISO(s + zone); !v.IsZero() {
			return v, false
		}
	}
	v, err := time.ParseInLocation(layout, s, time.UTC)
	if err != nil {
		return time.Time{}, false
	}
	return v, true
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
