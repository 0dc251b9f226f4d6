// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package kubecluster // import "github.com/oomsight/oomsight/deploy/kubecluster"

import (
	"fmt"
	"regexp"
	"strings"
)

// The VM's serial console carries the kernel's messages and, through
// journald's forward_to_console (vmKernelArgs), every journal line as
// "[ seconds.micros] IDENTIFIER[PID]: MESSAGE" (systemd's
// journald-console.c), interleaved with the kernel's "[ seconds] ..."
// lines and the serial getty's. These functions read it after the fact:
// the VM is not asked anything.

// journalLine matches a journal line forwarded to the console: an
// optional timestamp, the syslog identifier, the pid, the message.
var journalLine = regexp.MustCompile(`^(?:\[\s*\d+\.\d+\]\s+)?([A-Za-z0-9_.@-]+)\[(\d+)\]: (.*)$`)

// consoleLines splits the console into lines without the serial line's
// carriage returns and terminal escapes.
func consoleLines(console string) []string {
	console = ansiEscape.ReplaceAllString(console, "")
	lines := strings.Split(strings.ReplaceAll(console, "\r", ""), "\n")
	out := lines[:0]
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

// journalLines are the messages of one syslog identifier (the kubelet's
// "kubelet"), in order, without the timestamp and pid.
func journalLines(console, ident string) []string {
	var out []string
	for _, l := range consoleLines(console) {
		m := journalLine.FindStringSubmatch(l)
		if len(m) == 4 && m[1] == ident {
			out = append(out, m[3])
		}
	}
	return out
}

// setupStep is the last step setup.sh (vmSetupScript) announced, "" if
// none: how far the node's own start got.
func setupStep(console string) string {
	last := ""
	for _, l := range consoleLines(console) {
		if _, after, ok := strings.Cut(l, "oomsight-node: "); ok {
			last = strings.TrimSpace(after)
		}
	}
	return last
}

// describeConsole says what the console tells of a VM node that did not
// become Ready: the last step of setup.sh and the kubelet's last n journal
// lines, or the console's last n lines when the kubelet logged nothing.
func describeConsole(console string, n int) string {
	step := setupStep(console)
	if step == "" {
		step = "(setup.sh never started)"
	}
	if kl := journalLines(console, "kubelet"); len(kl) > 0 {
		return fmt.Sprintf("last setup step: %s; last lines of the kubelet's journal:\n    %s", step, strings.Join(tail(kl, n), "\n    "))
	}
	return fmt.Sprintf("last setup step: %s; the kubelet logged nothing; last lines of the console:\n    %s", step, strings.Join(tail(consoleLines(console), n), "\n    "))
}

func tail(lines []string, n int) []string {
	if len(lines) > n {
		return lines[len(lines)-n:]
	}
	return lines
}
