// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package kmsg

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestParseRecordOutOfRange: a record of the v2 VM's capture
// (testdata/v2/oom/oom-group.kmsg) with its sequence number or timestamp
// edited past what the types hold is malformed; on main (a46aa0a) the
// timestamp wrapped to a negative uptime.
func TestParseRecordOutOfRange(t *testing.T) {
	const msg = "Memory cgroup out of memory: Killed process 1673 (sleep) total-vm:2260kB, anon-rss:4kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:28kB oom_score_adj:0"
	r, err := ParseRecord([]byte("3,479,28288335,-;" + msg))
	require.NoError(t, err)
	assert.Equal(t, uint64(479), r.Seq)
	r, err = ParseRecord([]byte("3,479,9223372036854775,-;" + msg)) // the largest that fits: 292 years
	require.NoError(t, err)
	assert.Positive(t, r.Monotonic)
	for name, line := range map[string]string{
		"seq past uint64":                 "3,18446744073709551616,28288335,-;",
		"usec past int64":                 "3,479,9223372036854775808,-;",
		"usec past time.Duration's range": "3,479,9223372036854776,-;",
	} {
		_, err := ParseRecord([]byte(line + msg))
		assert.ErrorIs(t, err, ErrMalformed, name)
	}
}
