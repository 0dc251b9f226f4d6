// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package text_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oomsight/oomsight/internal/kmsg"
	"github.com/oomsight/oomsight/internal/kmsg/text"
	"github.com/oomsight/oomsight/internal/oomreport"
)

// The text reader is tested with the OOM report's lines, the Lines it
// serves in explain (oomreport.Lines).

// parseText reads one line with the kernel log text reader, as explain does.
func parseText(line string, opts ...text.Option) (kmsg.Record, bool) {
	return text.ParseLine(line, oomreport.Lines, opts...)
}

// TestPrefixForms: every prefix a log tool puts before the kernel's text
// comes off, whatever comes before it, and never leaks into the message.
func TestPrefixForms(t *testing.T) {
	const msg = "memory: usage 122880kB, limit 122880kB, failcnt 83"
	local := func(y int, mo time.Month, d, h, mi, s int) time.Time {
		return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
	}
	for _, tc := range []struct {
		name, line string
		mono       time.Duration // 0: none
		time       time.Time     // zero: none
		zoneless   bool          // time is local, offset unknown
	}{
		{name: "dmesg", line: "[198542.576733] " + msg, mono: 198542576733 * time.Microsecond},
		{name: "dmesg -T", line: "[Thu Aug 17 17:29:27 2023] " + msg, time: local(2023, 8, 17, 17, 29, 27), zoneless: true},
		{name: "dmesg -x", line: "kern  :info  : [198542.576733] " + msg, mono: 198542576733 * time.Microsecond},
		{name: "dmesg -x -T", line: "kern  :warn  : [Thu Aug 17 17:29:27 2023] " + msg, time: local(2023, 8, 17, 17, 29, 27), zoneless: true},
		{name: "dmesg -H", line: "[Aug17 17:29] " + msg},
		{name: "dmesg -H continued", line: "[  +0.000123] " + msg},
		{name: "dmesg -r", line: "<6>[198542.576733] " + msg, mono: 198542576733 * time.Microsecond},
		{name: "dmesg --time-format=iso", line: "2023-08-17T17:29:27,402000+02:00 " + msg, time: time.Date(2023, 8, 17, 15, 29, 27, 402e6, time.UTC)},
		{name: "syslog", line: "Jan  5 02:12:02 iZbp153spuk45ulvkwxf34Z kernel: " + msg},
		{name: "syslog without host", line: "Apr 18 00:37:34 kernel: " + msg},
		{name: "syslog without host, padded", line: "Apr 18 00:37:34   kernel: " + msg},
		{name: "syslog with [uptime]", line: "Nov 30 02:53:56 server01 kernel: [  818.375886] " + msg, mono: 818375886 * time.Microsecond},
		{name: "busybox syslog facility.level", line: "Dec  1 14:32:07 vm kern.warn kernel: [ 3175.004842] " + msg, mono: 3175004842 * time.Microsecond},
		{name: "grep -n", line: "166233:Apr 18 00:37:34 host kernel: [14049899.298694] " + msg, mono: 14049899298694 * time.Microsecond},
		{name: "grep -n context line", line: "166232-Apr 18 00:37:34 host kernel: " + msg},
		{name: "editor line number", line: "166233 Apr 18 00:37:34   kernel: [14049899.298694] " + msg, mono: 14049899298694 * time.Microsecond},
		{name: "cat -n", line: "    12\t[198542.576733] " + msg, mono: 198542576733 * time.Microsecond},
		{name: "line number before a bare line", line: "12: " + msg},
		{name: "journalctl -k", line: "Jan 05 02:12:02 host kernel: " + msg},
		{name: "journalctl -o short-precise", line: "Dec 01 14:32:01.895576 vm kernel: " + msg},
		{name: "journalctl -o short-iso", line: "2024-01-05T02:12:02+0000 host kernel: " + msg, time: time.Date(2024, 1, 5, 2, 12, 2, 0, time.UTC)},
		{name: "journalctl -o short-full", line: "Thu 2023-08-17 17:29:27 UTC host kernel: " + msg, time: local(2023, 8, 17, 17, 29, 27)},
		{name: "journalctl -o short-full, zone name", line: "Thu 2023-08-17 17:29:27 CEST host kernel: " + msg, time: local(2023, 8, 17, 17, 29, 27), zoneless: true},
		{name: "journalctl -o short-monotonic", line: "[ 3169.330990] host kernel: " + msg, mono: 3169330990 * time.Microsecond},
		{name: "dmesg -d", line: "[198542.576733 <    0.000123>] " + msg, mono: 198542576733 * time.Microsecond},
		{name: "journalctl -o short-delta", line: "[198542.576733 <    0.000123>] host kernel: " + msg, mono: 198542576733 * time.Microsecond},
		{name: "journalctl -o short-unix", line: "1692293367.402000 host kernel: " + msg, time: time.Unix(1692293367, 402e6)},
		{name: "journalctl -o json", line: `{"__REALTIME_TIMESTAMP":"1692293367402000","_SOURCE_MONOTONIC_TIMESTAMP":"198542576733","SYSLOG_IDENTIFIER":"kernel","_TRANSPORT":"kernel","MESSAGE":"` + msg + `"}`, mono: 198542576733 * time.Microsecond, time: time.Unix(1692293367, 402e6)},
		{name: "log shipper JSON with a prefixed message", line: `{"host":"ip-10-0-1-2","message":"kernel: [198542.576733] ` + msg + `"}`, mono: 198542576733 * time.Microsecond},
		{name: "rsyslog without zone", line: "2023-08-17 17:29:27 host kernel: " + msg, time: local(2023, 8, 17, 17, 29, 27), zoneless: true},
		{name: "Kibana table, tabs", line: "Aug 17, 2023 @ 17:29:27.402\tip-10-0-1-2\tkernel: [198542.576733] " + msg, mono: 198542576733 * time.Microsecond},
		{name: "CSV export", line: `"Aug 17, 2023 @ 17:29:27.402","ip-10-0-1-2","` + msg + `"`},
		{name: "unknown header before kernel:", line: "2023/08/17 17:29:27.402 ip-10-0-1-2 kernel: " + msg},
		{name: "unknown header, no tag", line: "2023-08-17 17:29:27.402 | ip-10-0-1-2 | " + msg},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := parseText(tc.line)
			require.True(t, ok)
			assert.Equal(t, msg, r.Message)
			assert.Equal(t, tc.mono != 0, r.HasMonotonic)
			assert.Equal(t, tc.mono, r.Monotonic)
			assert.True(t, tc.time.Equal(r.Time), "time %v", r.Time)
			assert.Equal(t, tc.zoneless, r.TimeZoneUnknown)
		})
	}
}

// FuzzParseLine: the line classifier takes any text without panicking,
// and a kernel line it has found is found again as it is: taking the
// prefixes off never eats into the kernel's own text.
func FuzzParseLine(f *testing.F) {
	for s := range strings.SplitSeq(`kern  :warn  : [Thu Aug 17 17:29:27 2023] xray invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0
166233 Apr 18 00:37:34   kernel: [14049899.298694] memory: usage 1kB, limit 2kB, failcnt 3
166233:Apr 18 00:37:34 host kernel: 4194304 pages RAM
12 4194304 pages RAM
"Aug 17, 2023 @ 17:29:27.402","ip","Killed process 1, UID 2, (a) total-vm:1kB"
a	b	[ 1.5] Task in /a killed as a result of limit of /a
2023-08-17 17:29:27.402 | ip | anon 1
6,1,2,-;Memory cgroup out of memory: Killed process 1 (a)
Thu 2023-08-17 17:29:27 UTC host kernel: oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),task=x,pid=1,uid=0
{"__REALTIME_TIMESTAMP":"1692293367402000","SYSLOG_IDENTIFIER":"kernel","MESSAGE":"[ 1.5] Memory cgroup out of memory: Killed process 1 (a)"}
1692293367.402000 host kernel: memory: usage 1kB, limit 2kB, failcnt 3`, "\n") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		r, ok := parseText(line)
		if !ok || !oomreport.Lines.Known(r.Message) || strings.ContainsAny(r.Message, "\n\r") {
			return
		}
		again, ok := parseText(r.Message)
		if !ok {
			t.Fatalf("%q: found %q, which does not parse again", line, r.Message)
		}
		if again.Message != strings.TrimRight(r.Message, "\r\n") && kmsgUnescaped(r.Message) {
			t.Fatalf("%q: found %q, then %q", line, r.Message, again.Message)
		}
	})
}

// kmsgUnescaped tells whether parsing s again leaves its bytes alone (a
// decoded message can spell a new \xNN escape).
func kmsgUnescaped(s string) bool { return !strings.Contains(s, `\x`) }

// TestJSONKillLine: a kill line in a JSON entry keeps its kernel message
// (a later "Killed process" in it is no place to cut).
func TestJSONKillLine(t *testing.T) {
	const kill = "Memory cgroup out of memory: Killed process 4242 (java) total-vm:8kB, anon-rss:4kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:4kB oom_score_adj:0"
	r, ok := text.ParseLine(`{"SYSLOG_IDENTIFIER":"kernel","MESSAGE":"`+kill+`"}`, oomreport.Lines)
	require.True(t, ok)
	assert.Equal(t, kill, r.Message)
}

// TestOtherPrograms: lines of other programs are skipped, in every form
// that names the program.
func TestOtherPrograms(t *testing.T) {
	for _, line := range []string{
		"Jan  5 02:12:02 host systemd[1]: Started foo.",
		"2024-01-05T02:12:02+0000 host sshd[77]: Accepted publickey",
		"1692293367.402000 host containerd[9]: level=info",
		`{"SYSLOG_IDENTIFIER":"systemd","MESSAGE":"Started foo."}`,
	} {
		_, ok := text.ParseLine(line, oomreport.Lines)
		assert.False(t, ok, line)
	}
}

// TestUTCOffset: a zone-less stamp is placed with --utc-offset; a stamp
// with its own zone keeps it.
func TestUTCOffset(t *testing.T) {
	r, ok := parseText("[Thu Aug 17 17:29:27 2023] Out of memory: Killed process 1 (a)", text.WithUTCOffset(2*time.Hour))
	require.True(t, ok)
	assert.False(t, r.TimeZoneUnknown)
	assert.True(t, time.Date(2023, 8, 17, 15, 29, 27, 0, time.UTC).Equal(r.Time), r.Time)
	r, ok = parseText("2024-01-05T02:12:02+0000 host kernel: x", text.WithUTCOffset(2*time.Hour))
	require.True(t, ok)
	assert.True(t, time.Date(2024, 1, 5, 2, 12, 2, 0, time.UTC).Equal(r.Time), r.Time)
}

func TestParseLine(t *testing.T) {
	const msg = "memory: usage 65536kB, limit 65536kB, failcnt 3271"
	for _, tc := range []struct {
		name, line, msg string
		ok              bool
		mono            time.Duration // 0: none
		seq             uint64
		time            time.Time
	}{
		{"raw kmsg", "6,391,17191113,-;" + msg, msg, true, 17191113 * time.Microsecond, 391, time.Time{}},
		{"raw kmsg escapes", `6,394,1,-;anon 1\x0afile 2`, "anon 1\nfile 2", true, time.Microsecond, 394, time.Time{}},
		{"dmesg", "[   17.191113] " + msg, msg, true, 17191113 * time.Microsecond, 0, time.Time{}},
		{"dmesg keeps the kernel's leading space", "[   17.190069]  <TASK>", " <TASK>", true, 17190069 * time.Microsecond, 0, time.Time{}},
		{"dmesg with priority", "<6>[   17.191113] " + msg, msg, true, 17191113 * time.Microsecond, 0, time.Time{}},
		{"dmesg -T", "[Thu May 14 23:17:24 2020] " + msg, msg, true, 0, 0, time.Date(2020, 5, 14, 23, 17, 24, 0, time.UTC)}, // local digits, zone unknown (TestPrefixForms)
		{"syslog", "Jan  5 02:12:02 host kernel: " + msg, msg, true, 0, 0, time.Time{}},
		{"syslog with kernel stamp", "Jan  5 02:12:02 host kernel: [198542.576733] " + msg, msg, true, 198542576733 * time.Microsecond, 0, time.Time{}},
		{"journalctl -k", "Jan 05 02:12:02 host kernel: " + msg, msg, true, 0, 0, time.Time{}},
		{"journalctl short-iso", "2024-01-05T02:12:02+0000 host kernel: " + msg, msg, true, 0, 0, time.Date(2024, 1, 5, 2, 12, 2, 0, time.UTC)},
		{"journalctl short-iso colon zone", "2024-01-05T02:12:02.250+01:00 host kernel: " + msg, msg, true, 0, 0, time.Date(2024, 1, 5, 1, 12, 2, 250e6, time.UTC)},
		{"bare", msg, msg, true, 0, 0, time.Time{}},
		{"other program", "Jan  5 02:12:02 host systemd[1]: Started foo.", "", false, 0, 0, time.Time{}},
		{"empty", "   ", "", false, 0, 0, time.Time{}},
		{"malformed kmsg", "6,1,2,-", "6,1,2,-", true, 0, 0, time.Time{}},
	} {
		r, ok := parseText(tc.line)
		require.Equal(t, tc.ok, ok, tc.name)
		if !ok {
			continue
		}
		assert.Equal(t, tc.msg, r.Message, tc.name)
		assert.Equal(t, tc.mono != 0, r.HasMonotonic, tc.name)
		assert.Equal(t, tc.mono, r.Monotonic, tc.name)
		assert.Equal(t, tc.seq != 0, r.HasSeq, tc.name)
		assert.Equal(t, tc.seq, r.Seq, tc.name)
		assert.True(t, tc.time.Equal(r.Time), "%s: %v", tc.name, r.Time)
	}
}

// util-linux dmesg prints the extra lines of one record indented without a
// timestamp; Records folds them back, so the record matches raw kmsg.
func TestRecordsContinuation(t *testing.T) {
	dm := records(t, "../../../testdata/v2/oom/container-limit.dmesg")
	raw := records(t, "../../../testdata/v2/oom/container-limit.kmsg")
	require.Len(t, dm, len(raw))
	for i := range raw {
		assert.Equal(t, raw[i].Message, dm[i].Message, "record %d", i)
		assert.Equal(t, raw[i].Monotonic, dm[i].Monotonic, "record %d", i)
	}
	// The global report's Mem-Info record has lines starting with a space.
	dm = records(t, "../../../testdata/v2/oom/global.dmesg")
	raw = records(t, "../../../testdata/v2/oom/global.kmsg")
	require.Len(t, dm, len(raw))

	// Dictionary lines after a raw record are dropped.
	rs := records(t, writeTemp(t, "6,1,5,-;hello\n SUBSYSTEM=usb\n DEVICE=c189:1\n6,2,6,-;world\n"))
	require.Len(t, rs, 2)
	assert.Equal(t, "hello", rs[0].Message)
}

func writeTemp(t *testing.T, s string) string {
	t.Helper()
	p := t.TempDir() + "/log"
	require.NoError(t, os.WriteFile(p, []byte(s), 0o600))
	return p
}

func records(t *testing.T, path string) []kmsg.Record {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var rs []kmsg.Record
	for r, err := range text.Records(f, oomreport.Lines) {
		require.NoError(t, err)
		rs = append(rs, r)
	}
	return rs
}

// TestEscapesPerForm: only /dev/kmsg escapes bytes as \xNN (backslash
// included, as \x5c), so only its records are decoded; in the forms other
// tools write (dmesg decodes and shows non-printable bytes as \xNN again,
// journald stores the bytes, rsyslog writes #ooo) "\x1b" is the four
// characters it reads, and pasting it never makes a live escape byte.
func TestEscapesPerForm(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{`4,364,17189144,-;m\x1b[2J invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL)`, "m\x1b[2J invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL)"},
		{`4,364,17189144,-;a\x5cx1b invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL)`, `a\x1b invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL)`},
		{`12:4,364,17189144,-;m\x0aevil invoked oom-killer: order=0`, "m\nevil invoked oom-killer: order=0"},
		{`[   17.189144] m\x1b[2J invoked oom-killer: order=0`, `m\x1b[2J invoked oom-killer: order=0`},
		{`Dec  1 14:32:07 node1 kernel: m\x1b[2J invoked oom-killer: order=0`, `m\x1b[2J invoked oom-killer: order=0`},
		{`2024-01-05T02:12:02+0000 node1 kernel: Memory cgroup out of memory: Killed process 1 (\x1b]0;x\x07)`, `Memory cgroup out of memory: Killed process 1 (\x1b]0;x\x07)`},
		{`{"MESSAGE":"m\\x1b[2J invoked oom-killer: order=0","SYSLOG_IDENTIFIER":"kernel"}`, `m\x1b[2J invoked oom-killer: order=0`},
		// journalctl -o json writes a message with a control byte as its bytes.
		{`{"MESSAGE":[109,27,91,50,74,32,105,110,118,111,107,101,100,32,111,111,109,45,107,105,108,108,101,114,58,32,111,114,100,101,114,61,48],"SYSLOG_IDENTIFIER":"kernel"}`, "m\x1b[2J invoked oom-killer: order=0"},
		// rsyslog's #012 is a newline only where every line is a stat line.
		{`Dec  1 14:32:07 node1 kernel: anon 1#012file 2`, "anon 1\nfile 2"},
		{`Dec  1 14:32:07 node1 kernel: Memory cgroup out of memory: Killed process 1 (a#012b)`, `Memory cgroup out of memory: Killed process 1 (a#012b)`},
	} {
		r, ok := parseText(tc.line)
		require.True(t, ok, tc.line)
		assert.Equal(t, tc.want, r.Message, tc.line)
	}
}
