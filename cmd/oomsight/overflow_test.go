// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestExplainOverflowRejected: numbers that do not fit, edited into the v2
// VM's real group kill capture (a kill line's anon-rss of 2^53 kB, which is
// 2^63 bytes, and a 20-digit pid in the task table), are rejected with a
// message each on stderr and a count in the summary, and are absent from
// the output; on main (a46aa0a) the anon-rss became a negative size and
// nothing was said.
func TestExplainOverflowRejected(t *testing.T) {
	raw, err := os.ReadFile("../../testdata/v2/oom/oom-group.kmsg")
	require.NoError(t, err)
	in := string(raw)
	for old, edited := range map[string]string{
		"Killed process 1680 (memhog) total-vm:1281196kB, anon-rss:54028kB": "Killed process 1680 (memhog) total-vm:1281196kB, anon-rss:9007199254740992kB",
		"[   1674]     0  1674": "[18446744073709551616]     0  1674",
	} {
		require.Equal(t, 1, strings.Count(in, old))
		in = strings.Replace(in, old, edited, 1)
	}
	for _, format := range []string{"json", "text"} {
		var out, errOut bytes.Buffer
		code := run([]string{"explain", "--format", format}, strings.NewReader(in), &out, &errOut)
		require.Equal(t, 0, code, errOut.String())
		assert.Equal(t, 2, strings.Count(errOut.String(), "rejected:"), errOut.String())
		assert.Contains(t, errOut.String(), `anon-rss "9007199254740992kB" rejected: too large to convert to bytes`)
		assert.Contains(t, errOut.String(), `task table pid "18446744073709551616" rejected`)
		// Its row rejected, pid 1674 is no member the table lists: its kill
		// is reported on its own.
		assert.Contains(t, errOut.String(), "4 kill(s) explained; 2 value(s) rejected as out of range")
		assert.NotRegexp(t, `(?m)(: |:)-\d`, out.String(), "no negative number in the output")
		if format == "json" {
			first := map[string]any{}
			require.NoError(t, json.Unmarshal([]byte(strings.SplitN(out.String(), "\n", 2)[0]), &first))
			assert.EqualValues(t, 1680, first["process.pid"])
			assert.NotContains(t, first, "linux.oom.victim.anon_rss")
		}
	}
}

// TestExplainMalformedKmsgCounted: a raw kmsg record whose sequence number
// or timestamp is out of range (the v2 VM's capture, edited in the number)
// is skipped with a message and counted, not dropped silently (main) nor
// dated at a wrapped, negative time.
func TestExplainMalformedKmsgCounted(t *testing.T) {
	raw, err := os.ReadFile("../../testdata/v2/oom/oom-group.kmsg")
	require.NoError(t, err)
	in := strings.Replace(string(raw), "3,479,28288335,-;", "3,18446744073709551616,28288335,-;", 1)
	in = strings.Replace(in, "3,480,28291744,-;", "3,480,9223372036854776,-;", 1)
	var out, errOut bytes.Buffer
	code := run([]string{"explain", "--format", "json"}, strings.NewReader(in), &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	assert.Contains(t, errOut.String(), `skipped: malformed kmsg record: sequence number "18446744073709551616"`)
	assert.Contains(t, errOut.String(), `skipped: malformed kmsg record: timestamp "9223372036854776"`)
	assert.Contains(t, errOut.String(), "1 kill(s) explained; 2 malformed kmsg record(s) skipped")
}
