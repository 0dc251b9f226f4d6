// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package kmsg

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseRecord(t *testing.T) {
	r, err := ParseRecord([]byte("6,429,22290595,-;memory: usage 49152kB, limit 49152kB, failcnt 3207\n"))
	require.NoError(t, err)
	assert.Equal(t, Record{
		Priority: 6, Seq: 429, HasSeq: true,
		Monotonic: 22290595 * time.Microsecond, HasMonotonic: true,
		Message: "memory: usage 49152kB, limit 49152kB, failcnt 3207",
	}, r)

	// Dictionary lines after the message are dropped; extra header fields
	// (newer kernels add a caller id) are accepted.
	r, err = ParseRecord([]byte("3,437,22291066,-,caller=T1392;Memory cgroup out of memory: Killed process 1392 (memhog)\n SUBSYSTEM=memcg\n DEVICE=x\n"))
	require.NoError(t, err)
	assert.Equal(t, "Memory cgroup out of memory: Killed process 1392 (memhog)", r.Message)
	assert.Equal(t, 3, r.Priority)
}

func TestParseRecordMalformed(t *testing.T) {
	for _, in := range []string{
		"", "no semicolon", "6,1;x", "a,1,2,-;x", "6,b,2,-;x", "6,1,c,-;x", "6,1,-5,-;x", "-1,1,2,-;x",
	} {
		_, err := ParseRecord([]byte(in))
		assert.ErrorIs(t, err, ErrMalformed, "input %q", in)
	}
}

func TestUnescape(t *testing.T) {
	assert.Equal(t, "anon 1\nfile 2", Unescape(`anon 1\x0afile 2`))
	assert.Equal(t, `a\b`, Unescape(`a\x5cb`))
	assert.Equal(t, `\xZZ \x4`, Unescape(`\xZZ \x4`))
	assert.Equal(t, "plain", Unescape("plain"))
}

// TestParseCapturedV2 parses every record the VM captured: all are well
// formed, sequence numbers increase, and the 6.1 stat dump is one record
// that decodes into many lines.
func TestParseCapturedV2(t *testing.T) {
	f, err := os.Open("../../testdata/v2/oom/pod-limit.kmsg")
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var last uint64
	var statDump string
	n := 0
	for sc.Scan() {
		r, err := ParseRecord(sc.Bytes())
		require.NoError(t, err, "line %q", sc.Text())
		assert.Greater(t, r.Seq, last)
		last = r.Seq
		if strings.HasPrefix(r.Message, "anon ") {
			statDump = r.Message
		}
		n++
	}
	require.NoError(t, sc.Err())
	assert.Greater(t, n, 20)
	assert.Greater(t, strings.Count(statDump, "\n"), 30, "stat dump decoded into lines")
	assert.Contains(t, statDump, "\nshmem 4194304\n")
}

func FuzzParseRecord(f *testing.F) {
	f.Add([]byte("6,429,22290595,-;memory: usage 49152kB\n"))
	f.Add([]byte(`6,432,22290710,-;anon 45809664\x0afile 4194304`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRecord(b)
		if err == nil && (!r.HasSeq || r.Monotonic < 0) {
			t.Fatalf("accepted %q without seq/time", b)
		}
	})
}
