// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package text // import "github.com/oomsight/oomsight/internal/kmsg/text"

import (
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

// peel takes the known prefixes off a line and fills the record from them.
func (t *textReader) peel(line string) (kmsg.Record, format, bool) {
	r := kmsg.Record{Priority: -1}
	f := formatBare
	rest := line
	used := map[*regexp.Regexp]bool{}
	for range 8 {
		if !used[reRawKmsg] && reRawKmsg.MatchString(rest) {
			kr, err := kmsg.ParseRecord([]byte(rest))
			t.malformedErr = err
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
		rest = t.rsyslogLines(rest)
	}
	// Only /dev/kmsg escapes bytes (\xNN): dmesg decodes them (and shows
	// non-printable ones as \xNN again), journald stores the bytes, so in
	// any other form "\x1b" is the four characters it reads.
	r.Message = rest
	return r, f, true
}

// rsyslogLines restores the lines of a record that rsyslog wrote with its
// newlines as "#012" (the 5.3–6.3 stat dump is one record of many lines),
// when every line is one a report's context explains (a stat line): a
// name's "#012" may be its own four characters.
func (t *textReader) rsyslogLines(msg string) string {
	if !strings.Contains(msg, "#012") {
		return msg
	}
	for l := range strings.SplitSeq(msg, "#012") {
		if l != "" && !t.lines.Context(l) {
			return msg
		}
	}
	return strings.ReplaceAll(msg, "#012", "\n")
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
	if m := try(reLineNumber); len(m) > 0 && t.lineNumberFits(rest[len(m[0]):]) {
		return len(m[0]), true, false
	}
	if loc := reKernelTag.FindStringIndex(rest); loc != nil && !used[reKernelTag] && !t.lines.Known(rest) && !t.lines.Context(rest) && t.lines.Start(rest[:loc[0]]) < 0 {
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
	// Below the largest whole second, so that adding the fraction cannot
	// wrap either.
	if err != nil || s >= int64(time.Duration(1<<63-1)/time.Second) {
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
