// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package survival // import "github.com/oomsight/oomsight/internal/survival"

import (
	"bytes"
	"errors"
	"strconv"
)

// sigkill is SIGKILL's bit in /proc/<pid>/status's signal masks.
const sigkill = 1 << (9 - 1)

// ParseStatus reads what the rule needs from /proc/<pid>/status: the pid
// namespaces (NSpid, 4.1+: a kernel without it gives Level 0 and no init,
// hence Unknown verdicts), whether the process is the init of its
// innermost one, and whether it is dying (State Z or X, or SIGKILL pending
// in SigPnd or ShdPnd: the OOM killer and the kernel's ending of a pid
// namespace both send SIGKILL).
func ParseStatus(b []byte) (Process, error) {
	var p Process
	seen := false
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		key, val, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		val = bytes.TrimSpace(val)
		switch string(key) {
		case "Name":
			seen = true
		case "State":
			if len(val) > 0 && (val[0] == 'Z' || val[0] == 'X') {
				p.Dying = true
			}
		case "SigPnd", "ShdPnd":
			mask, err := strconv.ParseUint(string(val), 16, 64)
			if err != nil {
				return Process{}, errors.New("survival: bad " + string(key) + " in status")
			}
			if mask&sigkill != 0 {
				p.Dying = true
			}
		case "NSpid":
			f := bytes.Fields(val)
			p.Level = len(f)
			p.NSInit = len(f) > 1 && string(f[len(f)-1]) == "1"
		}
	}
	if !seen {
		return Process{}, errors.New("survival: not a /proc/<pid>/status")
	}
	return p, nil
}
