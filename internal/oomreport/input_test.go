// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oomreport

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/oomsight/oomsight/internal/kmsg/text"
)

func TestReadAllTooLong(t *testing.T) {
	reps, err := ReadAll(strings.NewReader(strings.Repeat("x", 1<<20+1)))
	assert.Empty(t, reps)
	assert.ErrorContains(t, err, "reading kernel log")
}

// FuzzAssembler feeds arbitrary text, split into lines, through the line
// adapter and the assembler: no input may panic it, and every report must
// have a body.
func FuzzAssembler(f *testing.F) {
	for _, p := range []string{
		"../../testdata/v2/oom/oom-group.kmsg", "../../testdata/v2/oom/global.dmesg",
		"../../testdata/v2/oom/tmpfs.busybox-dmesg", "../../testdata/oom/v1-trigger-victim.kmsg",
		"../../testdata/oom/public-fragments.txt", "../../testdata/oom/v1-formats.dmesg-iso",
		"../../testdata/oom/v1-formats.journal-monotonic", "../../testdata/oom/v1-formats.syslog-nohost",
		"../../testdata/oom/v1-formats2.syslog-facility",
	} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("Tasks in /a are going to be killed due to memory.oom.group set\nKilled process 1 (a)\nKilled process 1 (a)\n")
	f.Fuzz(func(_ *testing.T, s string) {
		reps, _ := ReadAll(strings.NewReader(s))
		a := NewAssembler()
		for line := range strings.SplitSeq(s, "\n") {
			if r, ok := text.ParseLine(line, Lines); ok {
				reps = append(reps, a.Add(r)...)
			}
			if len(line)%7 == 0 {
				reps = append(reps, a.Idle()...)
			}
		}
		reps = append(reps, a.Flush()...)
		for _, r := range reps {
			_ = r.Body() // rendered as JSON by oomrecord's FuzzJSON
		}
	})
}
