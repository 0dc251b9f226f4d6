// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package procsnap

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

// TestParseStatus reads status files captured on this machine's kernel
// (6.18): an ordinary process, one with tmpfs-backed shared memory, a
// kernel thread and a zombie (the last two have no memory of their own).
func TestParseStatus(t *testing.T) {
	tests := []struct {
		file string
		want Status
	}{
		{"status_cat.txt", Status{Name: "cat", RSSAnon: 116 << 10, RSSFile: 1648 << 10, HasRSS: true}},
		{"status_python_shmem.txt", Status{Name: "python3", RSSAnon: 23292 << 10, RSSFile: 6680 << 10, RSSShmem: 8192 << 10, HasRSS: true}},
		{"status_kthread.txt", Status{Name: "kthreadd"}},
		{"status_zombie.txt", Status{Name: "sleep"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParseStatus(fixture(t, tt.file))
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	assert.Equal(t, int64((23292+6680+8192)<<10), Status{RSSAnon: 23292 << 10, RSSFile: 6680 << 10, RSSShmem: 8192 << 10}.RSS())
}

func TestParseStatusBad(t *testing.T) {
	for name, in := range map[string]string{
		"no name":       "RssAnon:\t1 kB\n",
		"not kB":        "Name:\tx\nRssAnon:\t1 MB\n",
		"not a number":  "Name:\tx\nRssFile:\tlots kB\n",
		"negative":      "Name:\tx\nRssShmem:\t-1 kB\n",
		"absurdly big":  "Name:\tx\nRssAnon:\t99999999999999999 kB\n",
		"missing value": "Name:\tx\nRssAnon:\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseStatus([]byte(in))
			require.Error(t, err)
		})
	}
	_, err := ParseStatus(nil)
	require.ErrorIs(t, err, ErrNoName)
}

func TestParsePIDs(t *testing.T) {
	pids, hidden, err := ParsePIDs(fixture(t, "cgroup_procs_hidden.txt"), nil)
	require.NoError(t, err)
	assert.Equal(t, []int{1234, 5678}, pids)
	assert.Equal(t, 2, hidden, "processes of another pid namespace are listed as 0")

	pids, hidden, err = ParsePIDs(nil, []int{7})
	require.NoError(t, err)
	assert.Equal(t, []int{7}, pids)
	assert.Zero(t, hidden)

	for _, bad := range []string{"12x\n", "-3\n"} {
		_, _, err := ParsePIDs([]byte(bad), nil)
		require.Error(t, err, bad)
	}
}

func TestSplitCmdline(t *testing.T) {
	assert.Equal(t, []string{"/root/.pyenv/versions/3.11.7/bin/python3", "-"}, SplitCmdline(fixture(t, "cmdline_python.bin"), false))
	tests := []struct {
		name      string
		in        string
		truncated bool
		want      []string
	}{
		{"empty (kernel thread)", "", false, nil},
		{"one argument", "sleep\x00", false, []string{"sleep"}},
		{"empty argument kept", "a\x00\x00b\x00", false, []string{"a", "", "b"}},
		{"setproctitle: one string", "postgres: writer process   ", false, []string{"postgres:", "writer", "process"}},
		{"truncated: the cut argument goes", "app\x00--user=x\x00--password=hunt", true, []string{"app", "--user=x"}},
		{"truncated inside the first argument", "averyveryverylongpath", true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, SplitCmdline([]byte(tt.in), tt.truncated))
		})
	}
}
