// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package peerbench

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The testdata files are /proc/<pid>/stat and status captured from real
// processes on the CI machine: the cAdvisor of make bench-peers after a
// few scrapes, a copy of sleep named "x) (y z" (a command name with the
// parentheses and spaces that break a naive split), and kthreadd (no
// memory of its own); loadavg is /proc/loadavg.
func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		file string
		want time.Duration
	}{
		{"stat-cadvisor", 280 * time.Millisecond}, // utime 10 + stime 18 ticks
		{"stat-parens", 0},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got, err := ParseStat(read(t, tc.file))
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestParseStatBad(t *testing.T) {
	for name, in := range map[string]string{
		"empty":         "",
		"no name":       "123 S 1 2 3",
		"cut short":     "123 (sleep) S 1 2 3 4 5 6 7 8 9 10",
		"utime not int": "1 (a) S 1 1 1 0 -1 0 0 0 0 0 x 0 0 0",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseStat([]byte(in))
			assert.Error(t, err)
		})
	}
}

func TestParseStatus(t *testing.T) {
	m, err := ParseStatus(read(t, "status-cadvisor"))
	require.NoError(t, err)
	assert.Equal(t, Memory{RSS: 19104 << 10, HWM: 19228 << 10, Anon: 7504 << 10, File: 11600 << 10}, m)

	m, err = ParseStatus(read(t, "status-sleep"))
	require.NoError(t, err)
	assert.Equal(t, Memory{RSS: 1808 << 10, HWM: 1808 << 10, Anon: 108 << 10, File: 1700 << 10}, m)

	_, err = ParseStatus(read(t, "status-kthread"))
	assert.ErrorContains(t, err, "kernel thread")

	_, err = ParseStatus([]byte("VmHWM:\t12 MB\nVmRSS:\t1 kB\n"))
	assert.ErrorContains(t, err, "kB")
	_, err = ParseStatus([]byte("VmHWM:\t12 kB\nVmRSS:\tx kB\n"))
	assert.ErrorContains(t, err, "VmRSS")
}

func TestReadUsageSelf(t *testing.T) {
	u, err := ReadUsage(os.Getpid())
	require.NoError(t, err)
	assert.Positive(t, u.RSS)
	assert.GreaterOrEqual(t, u.HWM, u.RSS)
	_, err = ReadUsage(-1)
	assert.Error(t, err)
}

func TestParseLoadavg(t *testing.T) {
	v, err := ParseLoadavg(read(t, "loadavg")) // captured while the machine was busy
	require.NoError(t, err)
	assert.InDelta(t, 11.27, v, 1e-9)
	_, err = ParseLoadavg(nil)
	assert.Error(t, err)
	_, err = ParseLoadavg([]byte("x 1 2"))
	assert.Error(t, err)
}

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}
