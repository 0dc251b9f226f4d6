// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package e2ev2

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
)

// The console protocol between the VM side and the host side. Every line
// the host acts on starts with linePrefix; anything before it on the same
// line (a stray kernel message, a carriage return) is ignored.
const (
	linePrefix = "E2EV2 "

	statusPass    = "PASS"
	statusFail    = "FAIL"
	statusPending = "PENDING" // a check whose code under test is not on main yet; never a pass
)

// check is one CHECK line.
type check struct {
	Name, Status, Detail string
}

// consoleResult is what the host learns from the VM's console.
type consoleResult struct {
	Kernel  string
	Mode    string
	Checks  []check
	Done    bool // the DONE line was seen: the test binary ran to its end
	Exit    int  // the test binary's exit code from the DONE line
	Lines   []string
	Unknown []string // E2EV2 lines that are not part of the protocol
}

// counts returns the number of checks with each status.
func (r *consoleResult) counts() (pass, fail, pending int) {
	for _, c := range r.Checks {
		switch c.Status {
		case statusPass:
			pass++
		case statusFail:
			fail++
		case statusPending:
			pending++
		}
	}
	return pass, fail, pending
}

// formatCheck renders a CHECK line; the detail is kept on one line.
func formatCheck(name, status, detail string) string {
	detail = strings.Join(strings.Fields(detail), " ")
	return strings.TrimSpace(fmt.Sprintf("%sCHECK %s %s %s", linePrefix, name, status, detail))
}

// parseConsole reads a serial console log (CRLF line ends, escape sequences
// from the firmware) and extracts the protocol lines.
func parseConsole(r io.Reader) (*consoleResult, error) {
	res := &consoleResult{Exit: -1}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		res.Lines = append(res.Lines, line)
		_, after, ok := strings.Cut(line, linePrefix)
		if !ok {
			continue
		}
		kind, rest, _ := strings.Cut(after, " ")
		rest = strings.TrimSpace(rest)
		switch kind {
		case "KERNEL":
			res.Kernel = rest
		case "MODE":
			res.Mode = rest
		case "CHECK":
			f := strings.SplitN(rest, " ", 3)
			if len(f) < 2 || (f[1] != statusPass && f[1] != statusFail && f[1] != statusPending) {
				res.Unknown = append(res.Unknown, line)
				continue
			}
			c := check{Name: f[0], Status: f[1]}
			if len(f) == 3 {
				c.Detail = f[2]
			}
			res.Checks = append(res.Checks, c)
		case "DONE":
			res.Done = true
			if v, ok := strings.CutPrefix(rest, "exit="); ok {
				if n, err := strconv.Atoi(strings.Fields(v + " ")[0]); err == nil {
					res.Exit = n
				}
			}
		case "INIT", "EXIT":
			// informational lines of /init
		default:
			res.Unknown = append(res.Unknown, line)
		}
	}
	return res, sc.Err()
}

func TestParseConsole(t *testing.T) {
	in := "\x1b[2J\x1b[01;01HSeaBIOS (version 1.16.2-debian-1.16.2-1)\r\n" +
		"E2EV2 INIT up 1.52s\r\n" +
		"E2EV2 KERNEL 6.1.0-56-cloud-amd64\r\n" +
		"E2EV2 MODE cgroup2 unified at /sys/fs/cgroup; controllers: cpu memory\r\n" +
		"=== RUN   TestVMMetrics\r\n" +
		formatCheck("metrics/cgroupfs/container/usage", statusPass, "receiver=1 kernel=[1..1]") + "\r\n" +
		"[   12.3] random kernel line " + formatCheck("metrics/systemd/pod/limit", statusFail, "receiver=absent\nkernel=[5..5]") + "\r\n" +
		formatCheck("oom-report-via-kmsg/pod-limit", statusPending, "") + "\r\n" +
		"E2EV2 CHECK broken\r\n" +
		"E2EV2 DONE exit=1\r\n"
	res, err := parseConsole(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if res.Kernel != "6.1.0-56-cloud-amd64" || !strings.HasPrefix(res.Mode, "cgroup2 unified") {
		t.Errorf("kernel %q mode %q", res.Kernel, res.Mode)
	}
	want := []check{
		{"metrics/cgroupfs/container/usage", statusPass, "receiver=1 kernel=[1..1]"},
		{"metrics/systemd/pod/limit", statusFail, "receiver=absent kernel=[5..5]"},
		{"oom-report-via-kmsg/pod-limit", statusPending, ""},
	}
	if fmt.Sprint(res.Checks) != fmt.Sprint(want) {
		t.Errorf("checks:\n got %q\nwant %q", res.Checks, want)
	}
	if !res.Done || res.Exit != 1 {
		t.Errorf("done %v exit %d", res.Done, res.Exit)
	}
	if len(res.Unknown) != 1 {
		t.Errorf("unknown lines: %q", res.Unknown)
	}
	if p, f, pe := res.counts(); p != 1 || f != 1 || pe != 1 {
		t.Errorf("counts %d %d %d", p, f, pe)
	}

	res, err = parseConsole(strings.NewReader("Kernel panic - not syncing: Attempted to kill init!\r\n"))
	if err != nil || res.Done || len(res.Checks) != 0 || res.Exit != -1 {
		t.Errorf("panic console: %+v %v", res, err)
	}
}
