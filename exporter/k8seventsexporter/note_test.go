// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package k8seventsexporter

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oomsight/oomsight/internal/oomrecord"
	"github.com/oomsight/oomsight/internal/oomreport"
	"github.com/oomsight/oomsight/internal/procsnap"
)

// TestNoteCommandLine: a record of a real kill with a process snapshot, as
// the receiver makes it (the victim's redacted command line on
// linux.oom.victim.cmdline and quoted in the sentence), becomes an Event
// whose note names the process but leaves its command line out by
// default; include_command_line keeps the redacted one, never the secret.
func TestNoteCommandLine(t *testing.T) {
	ld := capturedRecords(t, "../../testdata/oom/v1-container-limit.kmsg", eater, killAt)[0]
	res, lr := only(t, ld)
	sentence := lr.Body().Str()
	raw := []byte("/usr/bin/python3\x00worker.py\x00--queue=images\x00--db-password=hunter2\x00")
	cmdline := procsnap.Render(procsnap.CaptureRedacted, "python3", raw, false)
	require.Equal(t, "/usr/bin/python3 worker.py --queue=images --db-password=***", cmdline)
	lr.Attributes().PutStr(oomrecord.VictimCmdlineKey, cmdline)
	lr.Body().SetStr(sentence + oomreport.VictimCmdlineSentence(cmdline, 700*time.Millisecond))

	k, drop := mapping{controller: defaultController}.toKill(res, lr, time.Now())
	require.Empty(t, drop)
	assert.Equal(t, sentence, k.note, "the default note is the sentence without the command line")
	assert.NotContains(t, k.note, "worker.py")
	assert.Contains(t, k.note, "Process ", "the process is still named")

	k, drop = mapping{controller: defaultController, cmdline: true}.toKill(res, lr, time.Now())
	require.Empty(t, drop)
	assert.Contains(t, k.note, `Its command line was "`+cmdline+`"`)
	assert.NotContains(t, k.note, "hunter2")

	// The default configuration leaves it out.
	assert.False(t, createDefaultConfig().(*Config).IncludeCommandLine)
	assert.True(t, strings.HasPrefix(k.note, sentence))
}
