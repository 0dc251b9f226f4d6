// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/oomsight/oomsight/internal/version"
)

const fixture = "../../testdata/v2/oom/trigger-victim.dmesg"

func TestRun(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "missing.log")
	for _, tc := range []struct {
		args        []string
		stdin       string
		code        int
		out, errOut string
	}{
		{args: []string{"version"}, code: 0, out: "oomsight " + version.Version + " (go"},
		{args: []string{"help"}, code: 0, out: "usage: oomsight"},
		{args: nil, code: 2, errOut: "usage: oomsight"},
		{args: []string{"frobnicate"}, code: 2, errOut: `unknown command "frobnicate"`},
		{args: []string{"explain", "--frobnicate"}, code: 2, errOut: "flag provided but not defined"},
		{args: []string{"explain", "--format", "xml"}, code: 2, errOut: `unknown format "xml"`},
		{args: []string{"explain", "a", "b"}, code: 2, errOut: "one input at most"},
		{args: []string{"explain", "--max-tasks", "0"}, code: 2, errOut: "--max-tasks 0: want a positive number, or -1"},
		{args: []string{"explain", "--page-size", "1000"}, code: 2, errOut: "--page-size 1000: want a power of two"},
		{args: []string{"explain", "--max-tasks", "1", "--format", "json", "../../testdata/v2/oom/trigger-victim.kmsg"}, code: 0, out: "{"},
		{args: []string{"explain", bad}, code: 2, errOut: "no such file or directory"},
		{args: []string{"explain"}, stdin: "hello\n\x00\xff garbage\n[ 1.0] usb 1-1: new device\n", code: 1, errOut: "no OOM kill found in input"},
		{args: []string{"explain", "-"}, stdin: "", code: 1, errOut: "no OOM kill found in input"},
		{args: []string{"snapshot"}, code: 2, errOut: "want one CGROUP, got 0"},
		{args: []string{"snapshot", "/a", "/b"}, code: 2, errOut: "want one CGROUP, got 2"},
		{args: []string{"snapshot", "--command-line", "full", "/"}, code: 2, errOut: `--command-line: "full" is not one of redacted (default), name, off`},
		{args: []string{"snapshot", "--format", "xml", "/"}, code: 2, errOut: `unknown format "xml"`},
		{args: []string{"snapshot", "--root", bad, "/"}, code: 1, errOut: "pass --root where the host's cgroup filesystem is mounted"},
		{args: []string{"snapshot", "/no/such/cgroup-" + filepath.Base(bad)}, code: 1, errOut: "not found in the"},
	} {
		var out, errOut bytes.Buffer
		code := run(tc.args, strings.NewReader(tc.stdin), &out, &errOut)
		assert.Equal(t, tc.code, code, "%v", tc.args)
		if tc.out != "" {
			assert.True(t, strings.HasPrefix(out.String(), tc.out), "%v: %q", tc.args, out.String())
		}
		if tc.errOut != "" {
			assert.Contains(t, errOut.String(), tc.errOut, "%v", tc.args)
		}
	}
}

func TestHelpMentionsExplain(t *testing.T) {
	var out bytes.Buffer
	require.Equal(t, 0, run([]string{"help"}, nil, &out, io.Discard))
	assert.Contains(t, out.String(), "explain [--format text|json]")
	// Every flag explain takes is named in the help, so the two cannot
	// drift apart again.
	var usage bytes.Buffer
	run([]string{"explain", "-h"}, nil, io.Discard, &usage)
	flags := regexp.MustCompile(`--[a-z-]+`).FindAllString(strings.SplitN(usage.String(), "\n", 2)[0], -1)
	require.NotEmpty(t, flags, "explain -h printed no flags: %q", usage.String())
	for _, f := range flags {
		assert.Contains(t, out.String(), f)
	}
}

func TestExplainText(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"explain", fixture}, nil, &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	text := out.String()
	assert.True(t, strings.HasPrefix(text, "Process dd (pid 1964) in container a6857f0fde93 of pod 438a990c was OOM-killed"), text)
	for _, want := range []string{
		"  process.pid:                     1964\n",
		"  linux.oom.trigger.name:          spiker\n",
		"  linux.oom.memcg.limit:           67108864 (64 MiB)\n",
		"  linux.oom.cause:                 anon\n",
		"  container.runtime.name:          containerd\n",
		"      1970  13.8 MiB              0   spiker\n",
	} {
		assert.Contains(t, text, want)
	}
}

func TestExplainJSON(t *testing.T) {
	in, err := os.ReadFile("../../testdata/v2/oom/oom-group.kmsg")
	require.NoError(t, err)
	// Flags after the input name work too.
	var out, errOut bytes.Buffer
	code := run([]string{"explain", "-", "--format", "json"}, bytes.NewReader(in), &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 3, "one object per killed process")
	var pids []float64
	for _, l := range lines {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		pids = append(pids, m["process.pid"].(float64))
		assert.Equal(t, true, m["linux.oom.group_kill"])
		assert.Equal(t, "41372d87-a599-4a2c-aa9c-ab180ac97655", m["k8s.pod.uid"])
		assert.Contains(t, m["body"], "memory.oom.group")
		assert.NotContains(t, m, "time", "raw kmsg has no wall clock")
	}
	assert.Equal(t, []float64{1680, 1673, 1674}, pids)
}

// TestExplainFromTerminal: run alone on a terminal, explain says what it
// waits for, then reads what is pasted up to Ctrl-D.
func TestExplainFromTerminal(t *testing.T) {
	master, slave := openPTY(t)
	in, err := os.ReadFile(fixture)
	require.NoError(t, err)
	go func() {
		// A terminal line holds at most 4096 bytes; the fixture's are short.
		_, _ = master.Write(in)
		_, _ = master.WriteString("\x04")
	}()
	var out, errOut bytes.Buffer
	code := run([]string{"explain"}, slave, &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	assert.Contains(t, errOut.String(), "paste it and end with Ctrl-D")
	assert.Contains(t, out.String(), "Process dd (pid 1964)")

	// Not on a terminal: no hint.
	errOut.Reset()
	require.Equal(t, 0, run([]string{"explain", "--page-size", "4096", fixture}, slave, io.Discard, &errOut))
	assert.Empty(t, errOut.String())
}

// openPTY opens a pseudo-terminal pair.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	require.NoError(t, unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0))
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	require.NoError(t, err)
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	// No echo: nobody reads it back from the master, and a full echo
	// buffer would stall the writer.
	tio, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS)
	require.NoError(t, err)
	tio.Lflag &^= unix.ECHO
	require.NoError(t, unix.IoctlSetTermios(int(s.Fd()), unix.TCSETS, tio))
	return m, s
}

// TestExplainMaxTasks: --max-tasks keeps the largest rows and counts the
// rest (a real capture with four rows).
func TestExplainMaxTasks(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"explain", "--format", "json", "--max-tasks", "1", "../../testdata/v2/oom/trigger-victim.kmsg"}, strings.NewReader(""), &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	var m map[string]any
	require.NoError(t, json.Unmarshal(out.Bytes(), &m))
	assert.Len(t, m["linux.oom.tasks"], 1)
	assert.Equal(t, float64(3), m["linux.oom.tasks.omitted"])
}

// TestExplainPageSize: the task table counts pages; --page-size says how
// big. The capture is an x86 kernel's (its release 6.1.0-56-cloud-amd64
// and its stack say so), so explain does not warn; the same report without
// its stack does not tell the architecture, and explain says it assumed
// 4 KiB.
func TestExplainPageSize(t *testing.T) {
	const capture = "../../testdata/v2/oom/trigger-victim.kmsg"
	rss := func(in string, args ...string) (float64, string) {
		var out, errOut bytes.Buffer
		code := run(append([]string{"explain", "--format", "json"}, append(args, "-")...), strings.NewReader(in), &out, &errOut)
		require.Equal(t, 0, code, errOut.String())
		var m map[string]any
		require.NoError(t, json.Unmarshal(out.Bytes(), &m))
		return m["linux.oom.tasks"].([]any)[0].(map[string]any)["rss"].(float64), errOut.String()
	}
	b, err := os.ReadFile(capture)
	require.NoError(t, err)
	x86 := string(b)
	require.Contains(t, x86, "6.1.0-56-cloud-amd64")
	var noArch strings.Builder
	for line := range strings.SplitSeq(x86, "\n") {
		if !strings.Contains(line, "Comm:") && !strings.Contains(line, "+0x") && !strings.Contains(line, "RIP:") && !strings.Contains(line, "Hardware name") {
			noArch.WriteString(line + "\n")
		}
	}

	small, note := rss(x86)
	assert.Empty(t, note, "x86 has 4 KiB pages only")
	same, note := rss(noArch.String())
	assert.Contains(t, note, "assume 4 KiB pages")
	assert.Equal(t, small, same)
	big, note := rss(noArch.String(), "--page-size", "65536")
	assert.Empty(t, note)
	assert.Equal(t, 16*small, big)
}
