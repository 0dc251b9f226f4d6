// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package printable

import (
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
)

func TestEscape(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"memhog", "memhog"},
		{"java -Xmx1g", "java -Xmx1g"},
		{"m\nevil", `m\x0aevil`},
		{"m\x1b[2J", `m\x1b[2J`},
		{"\x1b]0;owned\x07", `\x1b]0;owned\x07`},
		{"a\tb\rc\x00d\x7f", `a\x09b\x0dc\x00d\x7f`},
		{"\xff\xfe", `\xff\xfe`},
		{"\xc2", `\xc2`},                       // a cut UTF-8 sequence
		{"\u009b31m", `\u009b31m`},             // C1 CSI, as UTF-8
		{"\u009d0;x\u009c", `\u009d0;x\u009c`}, // C1 OSC … ST
		{"abc\u202edcba", `abc\u202edcba`},     // right-to-left override
		{"\u2066x\u2069", `\u2066x\u2069`},     // isolates
		{"a\u200bb", `a\u200bb`},               // zero-width space
		{"a\u2028b", `a\u2028b`},               // line separator
		{"\ue000", `\ue000`},                   // private use
		{"\U000f0000", `\U000f0000`},           // private use, plane 15
		{"café 日本 🙂", "café 日本 🙂"},
		{"a\u00a0b", "a\u00a0b"}, // a no-break space is drawn
		{`\x1b`, `\x1b`},         // already an escape: four characters
		{`C:\dir`, `C:\dir`},
	} {
		got := Escape(tc.in)
		assert.Equal(t, tc.want, got, "%q", tc.in)
		assert.Equal(t, got, Escape(got), "idempotent on %q", tc.in)
	}
}

func TestEscapeKeepsPlainText(t *testing.T) {
	s := "Process memhog (pid 1143) was OOM-killed."
	assert.Equal(t, 0, int(testing.AllocsPerRun(10, func() { _ = Escape(s) })))
}

// FuzzEscape: whatever the input, the output is valid UTF-8 with no
// control byte, no C1 control and no bidi control, and escaping it again
// changes nothing.
func FuzzEscape(f *testing.F) {
	for c := range 256 {
		f.Add(string([]byte{'a', byte(c), 'b'}))
	}
	f.Add("\u202e\u009b\x1b[2J")
	f.Fuzz(func(t *testing.T, s string) {
		got := Escape(s)
		if !utf8.ValidString(got) {
			t.Fatalf("%q: not UTF-8: %q", s, got)
		}
		for _, r := range got {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x200e || r == 0x200f || r == 0x61c {
				t.Fatalf("%q: %U left in %q", s, r, got)
			}
		}
		if Escape(got) != got {
			t.Fatalf("%q: not idempotent: %q", s, got)
		}
	})
}
