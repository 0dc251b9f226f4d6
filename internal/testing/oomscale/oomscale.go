// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package oomscale makes real OOM captures larger for the tests and
// benchmarks of the cost bounds (issue 24): it repeats a capture's own
// lines with other pids and renumbers the records; no line is typed up.
package oomscale // import "github.com/oomsight/oomsight/internal/testing/oomscale"

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// pidLimit is the kernel's PID_MAX_LIMIT: generated pids stay below it.
const pidLimit = 4 << 20

// GroupCapture is the v2 VM's memory.oom.group kill (raw /dev/kmsg), and
// GroupTemplatePID its member whose row and kill line are repeated, both
// relative to the repository root.
const (
	GroupCapture     = "testdata/v2/oom/oom-group.kmsg"
	GroupTemplatePID = 1673
)

// reKmsgHead is a raw /dev/kmsg record's "prio,seq,usec,flags;".
var reKmsgHead = regexp.MustCompile(`^(\d+),(\d+),(\d+),([^;]*);`)

// GroupKill writes the raw /dev/kmsg capture of a memory.oom.group
// kill (capture: testdata/v2/oom/oom-group.kmsg, the v2 VM's) grown to
// members extra members: a task table row and a kill line for each, made
// of the capture's own row and member kill line of templatePID with pids
// from firstPID on, every record renumbered in sequence.
func GroupKill(w io.Writer, capture string, templatePID, firstPID, members int) error {
	lines := strings.Split(strings.TrimRight(capture, "\n"), "\n")
	rowRe := regexp.MustCompile(`;\[\s*` + strconv.Itoa(templatePID) + `\]`)
	killRe := regexp.MustCompile(`: Killed process ` + strconv.Itoa(templatePID) + ` \(`)
	row, kill := -1, -1
	for i, l := range lines {
		switch {
		case rowRe.MatchString(l):
			row = i
		case killRe.MatchString(l):
			kill = i
		}
	}
	if row < 0 || kill < 0 {
		return fmt.Errorf("the capture has no task row and kill line of pid %d", templatePID)
	}
	rePID := regexp.MustCompile(`\b` + strconv.Itoa(templatePID) + `\b`)
	bw := bufio.NewWriterSize(w, 64<<10)
	seq := 0
	emit := func(l string, pid int) {
		m := reKmsgHead.FindStringSubmatch(l)
		if m == nil {
			fmt.Fprintln(bw, l)
			return
		}
		if seq == 0 {
			seq, _ = strconv.Atoi(m[2])
		}
		body := l[len(m[0]):]
		if pid >= 0 {
			// The row's pid and tgid, the kill line's pid.
			body = rePID.ReplaceAllString(body, strconv.Itoa(pid))
			if i := strings.Index(body, "]"); i > 0 && strings.HasPrefix(body, "[") {
				// Keep the row's column alignment: pids of other widths.
				body = fmt.Sprintf("[%7d]%s", pid, body[i+1:])
			}
		}
		fmt.Fprintf(bw, "%s,%d,%s,%s;%s\n", m[1], seq, m[3], m[4], body)
		seq++
	}
	for i, l := range lines {
		emit(l, -1)
		if i == row || i == kill {
			for n := range members {
				emit(l, firstPID+n)
			}
		}
	}
	return bw.Flush()
}

// KillLines writes n kill lines from the raw /dev/kmsg capture's
// kill line of templatePID (capture: testdata/v2/oom/oom-group.kmsg), each
// with its own pid (cycling below PID_MAX_LIMIT) and sequence number: n
// kills whose reports the kernel rate-limited down to the kill line.
func KillLines(w io.Writer, capture string, templatePID, n int) error {
	var tmpl string
	for l := range strings.SplitSeq(capture, "\n") {
		if strings.Contains(l, ": Killed process "+strconv.Itoa(templatePID)+" (") {
			tmpl = l
			break
		}
	}
	m := reKmsgHead.FindStringSubmatch(tmpl)
	if m == nil {
		return fmt.Errorf("the capture has no raw kill line of pid %d", templatePID)
	}
	body := tmpl[len(m[0]):]
	at := strings.Index(body, strconv.Itoa(templatePID))
	bw := bufio.NewWriterSize(w, 64<<10)
	seq, _ := strconv.Atoi(m[2])
	usec, _ := strconv.Atoi(m[3])
	for i := range n {
		fmt.Fprintf(bw, "%s,%d,%d,%s;%s%d%s\n", m[1], seq+i, usec+i, m[4], body[:at], 1000+i%(pidLimit-1000), body[at+len(strconv.Itoa(templatePID)):])
	}
	return bw.Flush()
}
