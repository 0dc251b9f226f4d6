// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package k8seventsexporter // import "github.com/oomsight/oomsight/exporter/k8seventsexporter"

import (
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/oomsight/oomsight/internal/oomrecord"
	"github.com/oomsight/oomsight/internal/oomreport"
)

// note is the Event's note: the record's sentence, without the killed
// process's command line unless include_command_line is set. The
// receiver's sentence names the process (comm and pid) and, when a
// process snapshot had it, quotes its redacted command line (the record's
// linux.oom.victim.cmdline): the clause is found by that attribute and
// the words oomreport writes around it, not by guessing at the text.
func (m mapping) note(lr plog.LogRecord) string {
	body := lr.Body().AsString()
	if m.cmdline {
		return body
	}
	cmdline := str(lr.Attributes(), oomrecord.VictimCmdlineKey)
	if cmdline == "" {
		return body
	}
	body, _ = oomreport.WithoutVictimCmdline(body, cmdline)
	return body
}
