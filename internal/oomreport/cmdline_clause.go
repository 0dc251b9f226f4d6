// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oomreport // import "github.com/oomsight/oomsight/internal/oomreport"

import (
	"strings"

	"github.com/oomsight/oomsight/internal/printable"
)

// The fixed words of VictimCmdlineSentence around the command line and
// the snapshot's age: WithoutVictimCmdline finds the sentence by them and
// by the command line itself (the record's linux.oom.victim.cmdline).
const (
	cmdlineClauseStart = ` Its command line was "`
	cmdlineClauseAge   = `" (process snapshot `
	cmdlineClauseEnd   = ` before the kill).`
)

// WithoutVictimCmdline returns body without the sentence that
// VictimCmdlineSentence(cmdline, …) put in it, and whether it was there.
// The sentence is found by its fixed words and the command line as the
// sentence shows it (printable.Escape of the exact bytes), so no other
// text is touched; a body that carries the command line some
// other way (a processor rewrote it) has each occurrence replaced by
// "(command line left out)", so that it never passes.
func WithoutVictimCmdline(body, cmdline string) (string, bool) {
	if cmdline == "" {
		return body, false
	}
	cmdline = printable.Escape(cmdline) // as VictimCmdlineSentence wrote it
	start := strings.Index(body, cmdlineClauseStart+cmdline+cmdlineClauseAge)
	if start >= 0 {
		rest := body[start+len(cmdlineClauseStart)+len(cmdline)+len(cmdlineClauseAge):]
		if end := strings.Index(rest, cmdlineClauseEnd); end >= 0 {
			cut := start + len(cmdlineClauseStart) + len(cmdline) + len(cmdlineClauseAge) + end + len(cmdlineClauseEnd)
			body = body[:start] + body[cut:]
			if !strings.Contains(body, cmdline) {
				return body, true
			}
		}
	}
	if !strings.Contains(body, cmdline) {
		return body, start >= 0
	}
	return strings.ReplaceAll(body, cmdline, "(command line left out)"), true
}
