// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oomreport

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestWithoutVictimCmdline: the sentence VictimCmdlineSentence writes is
// removed whole, whatever the command line and the snapshot's age, and
// nothing else of the body is touched.
func TestWithoutVictimCmdline(t *testing.T) {
	const before = "Process memhog (pid 15058) in container 0dc1822caf9e was OOM-killed because its container's own 100 MiB memory limit was hit."
	const after = " Usage climbed from 256 KiB to 100 MiB in 1.6 s."
	for _, cmdline := range []string{
		"/tmp/memhog --worker=thumbnailer --queue=images",
		`python -c "print(1)" before the kill).`, // the sentence's own words inside
		"app --password=***",
		"app --title=\x1b]0;pwned\x07 --x=\n", // control bytes: the sentence shows them escaped
	} {
		for _, age := range []time.Duration{0, 500 * time.Millisecond, 42 * time.Second} {
			body := before + VictimCmdlineSentence(cmdline, age) + after
			got, ok := WithoutVictimCmdline(body, cmdline)
			assert.True(t, ok, cmdline)
			assert.Equal(t, before+after, got, cmdline)
		}
	}
	got, ok := WithoutVictimCmdline(before+after, "/tmp/memhog --x")
	assert.False(t, ok)
	assert.Equal(t, before+after, got, "no sentence, nothing touched")

	got, ok = WithoutVictimCmdline(before+` It ran "/tmp/memhog --x".`, "/tmp/memhog --x")
	assert.True(t, ok)
	assert.NotContains(t, got, "/tmp/memhog --x", "a command line in other words never passes")

	got, ok = WithoutVictimCmdline(before, "")
	assert.False(t, ok)
	assert.Equal(t, before, got)
}
