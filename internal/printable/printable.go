// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package printable makes text that a workload chose — a process name, a
// cgroup path, a command line — safe to show to a person: on a terminal
// (explain's text output), in a log record's body, in a Kubernetes Event
// that `kubectl describe` prints. Such text may hold any bytes, and a
// terminal acts on some of them (ESC starts a control sequence that can
// clear the screen, retitle the window or hide a line; OSC, CSI and BEL
// likewise), while a bidi override turns what follows it around.
//
// The exact bytes stay where a program reads them (JSON output, OTLP
// attribute values); only what a person reads goes through Escape.
package printable // import "github.com/oomsight/oomsight/internal/printable"

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Escape returns s with every byte or rune that a terminal would not draw
// as a visible character written as an escape a person can read:
//
//   - C0 control bytes (newline, tab and ESC included) and DEL as \xNN,
//     the form /dev/kmsg and dmesg use (ESC is \x1b);
//   - bytes that are not UTF-8 as \xNN;
//   - every other rune that is not graphic — C1 controls (U+0080–U+009F,
//     CSI and OSC among them), bidi controls (U+202A–U+202E,
//     U+2066–U+2069, U+200E, U+200F, U+061C), zero-width and other format
//     characters, line and paragraph separators, private use and
//     unassigned code points — as \uNNNN (or \UNNNNNNNN).
//
// The ASCII space and graphic runes (letters, marks, numbers, punctuation,
// symbols, other spaces) are kept, and so is the backslash: an escape in
// the input stays the characters it is, so Escape is idempotent and plain
// text comes back unchanged (without a copy).
func Escape(s string) string {
	i := 0
	for i < len(s) && s[i] >= 0x20 && s[i] < 0x7f {
		i++
	}
	if i == len(s) {
		return s // printable ASCII: the common case
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for i < len(s) {
		c := s[i]
		if c >= 0x20 && c < 0x7f {
			b.WriteByte(c)
			i++
			continue
		}
		if c < 0x80 {
			fmt.Fprintf(&b, `\x%02x`, c) // C0 control or DEL
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, c) // not UTF-8
		case unicode.IsGraphic(r):
			b.WriteString(s[i : i+n])
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
		i += n
	}
	return b.String()
}
