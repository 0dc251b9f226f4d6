// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package procsnap // import "github.com/oomsight/oomsight/internal/procsnap"

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Capture is how much of a command line a snapshot keeps (the
// processes.command_line setting).
type Capture uint8

const (
	// CaptureRedacted keeps the first MaxCmdline bytes of the command line
	// with credential-shaped arguments replaced by Redacted (the default).
	CaptureRedacted Capture = iota
	// CaptureName keeps the process name (comm) only.
	CaptureName
	// CaptureOff keeps no name and no command line: pids and memory only.
	CaptureOff
)

// Setting values of Capture, as users write them.
const (
	SettingRedacted = "redacted"
	SettingName     = "name"
	SettingOff      = "off"
)

// ParseCapture reads a processes.command_line setting.
func ParseCapture(s string) (Capture, error) {
	switch s {
	case SettingRedacted:
		return CaptureRedacted, nil
	case SettingName:
		return CaptureName, nil
	case SettingOff:
		return CaptureOff, nil
	}
	return 0, fmt.Errorf("%q is not one of %s (default), %s, %s", s, SettingRedacted, SettingName, SettingOff)
}

func (c Capture) String() string {
	switch c {
	case CaptureName:
		return SettingName
	case CaptureOff:
		return SettingOff
	}
	return SettingRedacted
}

const (
	// MaxCmdline is how many bytes of a command line a snapshot keeps.
	MaxCmdline = 256
	// ReadCmdline is how many bytes of /proc/<pid>/cmdline are read: more
	// than kept, so that the redaction rules see an argument whole before
	// the result is cut to MaxCmdline.
	ReadCmdline = 4096
	// Redacted replaces a credential.
	Redacted = "***"
)

// Render returns what a snapshot keeps of a process's command line under
// c: "" (off), the name, or the redacted command line cut to MaxCmdline
// bytes. raw is the start of /proc/<pid>/cmdline, truncated when the file
// goes on. A process without a command line (a kernel thread, a zombie)
// is shown as [name], as ps does.
func Render(c Capture, name string, raw []byte, truncated bool) string {
	switch c {
	case CaptureOff:
		return ""
	case CaptureName:
		return name
	}
	args := SplitCmdline(raw, truncated)
	if len(args) == 0 {
		return "[" + name + "]"
	}
	return cut(strings.Join(Redact(args), " "), MaxCmdline)
}

// cut shortens s to at most n bytes without splitting a UTF-8 sequence.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
