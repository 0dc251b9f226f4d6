// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oomreport

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTextFormats: one real kill, captured by testdata/capture/v1/formats.sh
// as raw /dev/kmsg records and in the text forms other tools write, must
// read as the same report in each form.
func TestTextFormats(t *testing.T) {
	for _, tc := range []struct{ ref, file string }{
		{"v1-formats.kmsg", "v1-formats.dmesg-iso"},
		{"v1-formats.kmsg", "v1-formats.journal-monotonic"},
		{"v1-formats.kmsg", "v1-formats.journal-precise"},
		{"v1-formats.kmsg", "v1-formats.syslog-nohost"},
		{"v1-formats2.kmsg", "v1-formats2.syslog-facility"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			want := readFile(t, "../../testdata/oom/"+tc.ref)
			require.Len(t, want, 1)
			got := readFile(t, "../../testdata/oom/"+tc.file)
			require.Len(t, got, 1)
			w, g := want[0], got[0]
			assert.Equal(t, w.PID, g.PID)
			assert.Equal(t, "memhog", g.Comm)
			assert.Equal(t, w.Comm, g.Comm)
			assert.Equal(t, w.Memcg, g.Memcg)
			assert.NotEmpty(t, g.TaskMemcg)
			assert.Equal(t, w.TaskMemcg, g.TaskMemcg)
			assert.Equal(t, w.TriggerName, g.TriggerName)
			assert.Equal(t, w.TriggerPID, g.TriggerPID)
			assert.Equal(t, w.MemcgUsage, g.MemcgUsage)
			assert.Equal(t, w.MemcgLimit, g.MemcgLimit)
			assert.Equal(t, w.MemcgStat, g.MemcgStat)
			assert.Equal(t, w.Tasks, g.Tasks)
			assert.Equal(t, w.AnonRSS, g.AnonRSS)
			assert.Equal(t, w.Body(), g.Body())
		})
	}
}
