// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package text // import "github.com/oomsight/oomsight/internal/kmsg/text"

import (
	"encoding/csv"
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/oomsight/oomsight/internal/kmsg"
)

// Forms that no prefix describes: JSON entries, table columns, and any
// prefix at all, found by where the kernel's text begins.

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
			switch v := entry[k].(type) {
			case string:
				return v
			case []any:
				// journalctl -o json writes a field that is not
				// printable UTF-8 (a task name with an escape byte) as
				// an array of its bytes.
				if b, isBytes := byteArray(v); isBytes {
					return string(b)
				}
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
	if us, err := strconv.ParseInt(str("_SOURCE_MONOTONIC_TIMESTAMP"), 10, 64); err == nil && us >= 0 && us <= math.MaxInt64/1000 && !r.HasMonotonic {
		r.Monotonic, r.HasMonotonic = time.Duration(us)*time.Microsecond, true
	}
	if !t.lines.Known(r.Message) {
		r.Message = t.unknownPrefix(r.Message)
	}
	return r, true, true
}

// byteArray reads a JSON array of byte values ([109, 27, 91]).
func byteArray(v []any) ([]byte, bool) {
	b := make([]byte, len(v))
	for i, x := range v {
		f, ok := x.(float64)
		if !ok || f < 0 || f > 255 || f != float64(int(f)) {
			return nil, false
		}
		b[i] = byte(f)
	}
	return b, true
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
	if t.lines.Context(msg) {
		// A task row as it is: what looks like a line inside it is the
		// task's name ("[pid] a name", "1 pages RAM").
		return msg
	}
	if i := t.lines.Start(msg); i > 0 {
		t.learned = shapeOf(msg[:i])
		return msg[i:]
	}
	if t.learned != nil && !t.lines.Context(msg) {
		// Only where what remains is a report's line: the shape of a
		// prefix like "host " would otherwise eat the "anon " of a bare
		// "anon 123".
		if loc := t.learned.FindStringIndex(msg); len(loc) == 2 && loc[1] < len(msg) {
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
