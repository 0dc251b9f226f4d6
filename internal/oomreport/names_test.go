// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oomreport

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oomsight/oomsight/internal/kmsg"
)

// hostileNames are task names a workload can give itself with
// prctl(PR_SET_NAME): any bytes but NUL, at most 15 of them (the kernel
// cuts the rest; "Killed process 1 (init)" arrives as "Killed process ").
var hostileNames = []string{
	"m\nevil",
	"m\x1b[2J",
	"a)b",
	"a(b",
	"x) total-vm:9kB",
	", UID 0,",
	"Killed process ",
	"\nKilled process",
	"1 pages RAM",
	"[pid] a name",
	"anon 1\nfile 2",
	"oom_reaper: x",
	",pid=1,uid=0",
	"\\x0a",
	"\xff\xfe\x9b[31m",
	"Tasks in / are",
	" ",
	"a\r\nb\tc",
}

// kernelEscape writes s as /dev/kmsg does (kernel/printk/printk.c,
// msg_add_ext_text): bytes below 0x20, from 0x7f up and the backslash as
// \xNN, the rest as they are.
func kernelEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c >= 127 || c == '\\' {
			fmt.Fprintf(&b, `\x%02x`, c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// renamed is the real report of testdata/v2/oom/container-limit.kmsg
// (kernel 6.1, one record a line) with its victim, memhog pid 1143,
// renamed to name wherever the kernel prints the name: the invoked line,
// the stack dump's header, the task row, the oom-kill summary and the kill
// line. The stat dump stays one record of many lines, as 6.1 prints it.
func renamed(tb testing.TB, name string) string {
	return renamedLog(tb, "../../testdata/v2/oom/container-limit.kmsg", ";", kernelEscape(name))
}

// renamedLog renames memhog to esc (the name as the log writes it) in the
// log at path, whose lines carry the kernel's text after sep.
func renamedLog(tb testing.TB, path, sep, esc string) string {
	b, err := os.ReadFile(path)
	require.NoError(tb, err)
	var out strings.Builder
	for line := range strings.SplitSeq(strings.TrimRight(string(b), "\n"), "\n") {
		head, msg, ok := strings.Cut(line, sep)
		if !ok {
			out.WriteString(line + "\n") // a dmesg continuation line
			continue
		}
		switch {
		case strings.HasPrefix(msg, "memhog invoked"):
			msg = esc + strings.TrimPrefix(msg, "memhog")
		case strings.HasPrefix(msg, "CPU: "), strings.HasPrefix(msg, "oom-kill:"), strings.Contains(msg, "Killed process"):
			msg = strings.Replace(strings.Replace(msg, "(memhog)", "("+esc+")", 1), "Comm: memhog ", "Comm: "+esc+" ", 1)
			msg = strings.Replace(msg, ",task=memhog,", ",task="+esc+",", 1)
		case strings.HasSuffix(msg, " memhog") && strings.HasPrefix(msg, "["):
			msg = strings.TrimSuffix(msg, "memhog") + esc
		}
		out.WriteString(head + sep + msg + "\n")
	}
	return out.String()
}

// TestHostileNamesRaw: whatever name a process gives itself, its kill
// read from /dev/kmsg (one record per read, as the receiver reads it) is
// one report, of its own pid, with its name byte for byte. The name's
// newline is escaped by the kernel exactly as the stat dump's own line
// breaks are, so a record is cut into lines only when it is a stat dump.
func TestHostileNamesRaw(t *testing.T) {
	for _, name := range hostileNames {
		t.Run(fmt.Sprintf("%q", name), func(t *testing.T) {
			requireVictim(t, assembleKmsg(t, renamed(t, name)), name)
		})
	}
}

// TestHostileNamesExplain: explain reads the same records pasted as text
// (a saved /dev/kmsg) and agrees with the receiver.
func TestHostileNamesExplain(t *testing.T) {
	for _, name := range hostileNames {
		t.Run(fmt.Sprintf("%q", name), func(t *testing.T) {
			reps, err := ReadAll(strings.NewReader(renamed(t, name)))
			require.NoError(t, err)
			requireVictim(t, reps, name)
		})
	}
}

// assembleKmsg feeds raw /dev/kmsg text to an Assembler a record at a
// time, as the receiver reads the device.
func assembleKmsg(tb testing.TB, raw string) []*Report {
	tb.Helper()
	a := NewAssembler()
	var reps []*Report
	for line := range strings.SplitSeq(strings.TrimRight(raw, "\n"), "\n") {
		r, err := kmsg.ParseRecord([]byte(line))
		if err != nil {
			tb.Fatal(err)
		}
		reps = append(reps, a.Add(r)...)
	}
	return append(reps, a.Flush()...)
}

func requireVictim(t *testing.T, reps []*Report, name string) {
	t.Helper()
	require.Len(t, reps, 1, "one kill, one report")
	r := reps[0]
	assert.Equal(t, 1143, r.PID)
	assert.Equal(t, name, r.Comm, "the name byte for byte")
	assert.Equal(t, name, r.TriggerName)
	require.NotNil(t, r.TriggerPID)
	assert.Equal(t, int64(1143), *r.TriggerPID)
	require.Len(t, r.Tasks, 1)
	assert.Equal(t, Task{PID: 1143, Name: name, RSS: 15434 * 4096}, r.Tasks[0])
	assert.Equal(t, int64(62558208), r.MemcgStat["anon"], "the stat dump is still read")
	assert.Len(t, r.MemcgStat, 47)
	require.NotNil(t, r.AnonRSS)
	assert.Equal(t, int64(60888*1024), *r.AnonRSS)
	assert.Equal(t, "/kubepods/burstable/pod0f5eb28f-6722-4cf5-ab0f-b62748c018d4/0dc1822caf9e150de25daa1cf572418426ce6b72757b5efdff52acef348368a3", r.TaskMemcg)
}

// TestHostileNamesDmesg: util-linux dmesg prints a name's newline as a
// line break and indents what follows (as it does for the stat dump's),
// and shows a control byte as \xNN; the text reader folds the indented
// line back, and leaves "\x1b" as the four characters dmesg printed. Names
// that look like a log line's beginning or a report's line stay names.
func TestHostileNamesDmesg(t *testing.T) {
	indent := strings.Repeat(" ", len("[   17.189144] "))
	for _, tc := range []struct{ printed, want string }{
		{"m\n" + indent + "evil", "m\nevil"},
		{`m\x1b[2J`, `m\x1b[2J`},
		{"a)b", "a)b"},
		{"a(b", "a(b"},
		{", UID 0,", ", UID 0,"},
		{"Killed process", "Killed process"},
		{"\n" + indent + "Killed process", "\nKilled process"},
		{"1 pages RAM", "1 pages RAM"},
		{"[pid] a name", "[pid] a name"},
		{"oom_reaper: x", "oom_reaper: x"},
		{",pid=1,uid=0", ",pid=1,uid=0"},
		{"kernel: x", "kernel: x"},
	} {
		t.Run(fmt.Sprintf("%q", tc.want), func(t *testing.T) {
			reps, err := ReadAll(strings.NewReader(renamedLog(t, "../../testdata/v2/oom/container-limit.dmesg", "] ", tc.printed)))
			require.NoError(t, err)
			requireVictim(t, reps, tc.want)
		})
	}
}

// capturedHostileNames are the kills of testdata/oom/v1-hostile-names.kmsg,
// captured by the receiver's TestHostileNamesRealKills on a real kernel
// (6.18, cgroup v1): memhog renamed with prctl(PR_SET_NAME) and OOM-killed,
// one kill per name; "Killed process 1 (init)" as the kernel kept it.
var capturedHostileNames = []struct {
	pid   int
	name  string
	pages int64 // the task row's rss
	anon  int64 // the kill line's anon-rss, kB
}{
	{24140, "m\nevil", 16871, 65664},
	{24227, "m\x1b[2J", 16967, 66048},
	{24294, "\x1b]0;owned\x07", 16935, 65920},
	{24361, "mem)hog", 16967, 66048},
	{24421, "mem(hog", 16967, 66048},
	{24504, ", UID 0,", 16967, 65920},
	{24572, "Killed process ", 16967, 66048},
}

// TestHostileNamesCapture: the real records of the capture, read as the
// receiver reads /dev/kmsg (a record per read) and as explain reads the
// saved text, give one report per kill with the pid and the name byte for
// byte, in the kill line, the summary, the task row and the trigger.
func TestHostileNamesCapture(t *testing.T) {
	const path = "../../testdata/oom/v1-hostile-names.kmsg"
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	live := assembleKmsg(t, string(b))
	pasted, err := ReadAll(strings.NewReader(string(b)))
	require.NoError(t, err)
	for form, reps := range map[string][]*Report{"records": live, "explain": pasted} {
		require.Len(t, reps, len(capturedHostileNames), form)
		for i, want := range capturedHostileNames {
			r := reps[i]
			assert.Equal(t, want.pid, r.PID, "%s %d", form, i)
			assert.Equal(t, want.name, r.Comm, "%s %d", form, i)
			assert.Equal(t, want.name, r.TriggerName, "%s %d", form, i)
			require.NotNil(t, r.TriggerPID)
			assert.Equal(t, int64(want.pid), *r.TriggerPID)
			require.Len(t, r.Tasks, 1, "%s %d", form, i)
			assert.Equal(t, Task{PID: int64(want.pid), Name: want.name, RSS: want.pages * 4096}, r.Tasks[0], "%s %d", form, i)
			require.NotNil(t, r.AnonRSS)
			assert.Equal(t, want.anon*1024, *r.AnonRSS)
			assert.True(t, strings.HasSuffix(r.TaskMemcg, "/kubepods/burstable/pod0f5eb28f-6722-4cf5-ab0f-b62748c018d4/0dc1822caf9e150de25daa1cf572418426ce6b72757b5efdff52acef348368a3"), r.TaskMemcg)
			assert.Equal(t, r.TaskMemcg[:strings.LastIndexByte(r.TaskMemcg, '/')], r.Memcg, "the pod's limit")
			assert.NotEmpty(t, r.MemcgStat)
		}
	}
	assert.Contains(t, pasted[1].Body(), `Process m\x1b[2J (pid 24227) in container 0dc1822caf9e of pod 0f5eb28f was OOM-killed`)
}
