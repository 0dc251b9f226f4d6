package oomreport

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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
		{"dmesg -T", "[Thu May 14 23:17:24 2020] " + msg, msg, true, 0, 0, time.Date(2020, 5, 14, 23, 17, 24, 0, time.Local)},
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
	dm := records(t, "../../testdata/v2/oom/container-limit.dmesg")
	raw := records(t, "../../testdata/v2/oom/container-limit.kmsg")
	require.Len(t, dm, len(raw))
	for i := range raw {
		assert.Equal(t, raw[i].Message, dm[i].Message, "record %d", i)
		assert.Equal(t, raw[i].Monotonic, dm[i].Monotonic, "record %d", i)
	}
	// The global report's Mem-Info record has lines starting with a space.
	dm = records(t, "../../testdata/v2/oom/global.dmesg")
	raw = records(t, "../../testdata/v2/oom/global.kmsg")
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

func TestReadAllTooLong(t *testing.T) {
	reps, err := ReadAll(strings.NewReader(strings.Repeat("x", 1<<20+1)))
	assert.Empty(t, reps)
	assert.ErrorContains(t, err, "reading kernel log")
}

// FuzzAssembler feeds arbitrary text, split into lines, through the line
// adapter and the assembler: no input may panic it, and every report must
// have a body.
func FuzzAssembler(f *testing.F) {
	for _, p := range []string{
		"../../testdata/v2/oom/oom-group.kmsg", "../../testdata/v2/oom/global.dmesg",
		"../../testdata/v2/oom/tmpfs.busybox-dmesg", "../../testdata/oom/v1-trigger-victim.kmsg",
		"../../testdata/oom/public-fragments.txt", "../../testdata/oom/v1-formats.dmesg-iso",
		"../../testdata/oom/v1-formats.journal-monotonic", "../../testdata/oom/v1-formats.syslog-nohost",
		"../../testdata/oom/v1-formats2.syslog-facility",
	} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("Tasks in /a are going to be killed due to memory.oom.group set\nKilled process 1 (a)\nKilled process 1 (a)\n")
	f.Fuzz(func(t *testing.T, s string) {
		reps, _ := ReadAll(strings.NewReader(s))
		a := NewAssembler()
		for line := range strings.SplitSeq(s, "\n") {
			if r, ok := parseText(line); ok {
				reps = append(reps, a.Add(r)...)
			}
			if len(line)%7 == 0 {
				reps = append(reps, a.Idle()...)
			}
		}
		reps = append(reps, a.Flush()...)
		for _, r := range reps {
			_ = r.Body() // rendered as JSON by oomrecord's FuzzJSON
		}
	})
}
