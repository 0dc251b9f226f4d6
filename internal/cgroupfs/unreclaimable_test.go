// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgroupfs

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestUnreclaimableFromRealStat: the Unreclaimable field is the sum of
// exactly the keys UnreclaimableV1/V2 name, checked against memory.stat
// files captured from real kernels (v1: the host of the tests; v2:
// Debian's 6.1 cloud kernel, testdata/v2/kernel.txt), each of which has
// every key (so that none is silently missing on the kernels we run on).
func TestUnreclaimableFromRealStat(t *testing.T) {
	for _, tc := range []struct {
		file  string
		parse func([]byte, *Sample) error
		keys  []string
	}{
		{"../../testdata/v1/root/memory/kubepods/memory.stat", v1Stat, UnreclaimableV1},
		{"../../testdata/v2/cgroupfs/kubepods/memory.stat", v2Stat, UnreclaimableV2},
		{"../../testdata/v2/cgroupfs/memory.stat", v2Stat, UnreclaimableV2},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b := readFixture(t, tc.file)
			stat, err := ParseKeyValues(b)
			require.NoError(t, err)
			var want uint64
			for _, k := range tc.keys {
				v, ok := stat[k]
				require.True(t, ok, "key %s missing from a real memory.stat", k)
				want += v
			}
			var s Sample
			require.NoError(t, tc.parse(b, &s))
			got, ok := s.Get(Unreclaimable)
			require.True(t, ok)
			assert.Equal(t, want, got)
			anon, _ := s.Get(Anon)
			file, _ := s.Get(File)
			assert.GreaterOrEqual(t, got, anon, "anon is part of it")
			assert.Positive(t, file, "page cache exists in the fixture but is not counted")
		})
	}
}

// TestUnreclaimableTable: which keys count, and absent without the
// anonymous key (a memory.stat that does not say it must not read as 0).
func TestUnreclaimableTable(t *testing.T) {
	for _, tc := range []struct {
		name  string
		parse func([]byte, *Sample) error
		stat  string
		want  uint64
		has   bool
	}{
		{"v1 rss and shmem", v1Stat, "rss 1\nshmem 2\ncache 100\ntotal_rss 10\ntotal_shmem 20\ntotal_cache 400\ntotal_active_file 300\n", 30, true},
		{"v1 own keys only: absent", v1Stat, "rss 10\nshmem 20\n", 0, false},
		{"v1 no shmem (old kernel)", v1Stat, "total_rss 10\ntotal_cache 5\n", 10, true},
		{"v2 every key", v2Stat, "anon 1\nfile 1000\nkernel 64\nkernel_stack 2\npagetables 4\nsec_pagetables 1000\npercpu 8\nsock 16\nvmalloc 1000\nshmem 32\nslab_reclaimable 1000\nslab_unreclaimable 64\nslab 1064\n", 127, true},
		{"v2 before percpu (5.6)", v2Stat, "anon 1\nshmem 2\nslab_unreclaimable 4\n", 7, true},
		{"v2 no anon: absent", v2Stat, "file 5\nshmem 2\n", 0, false},
		{"v2 zero anon", v2Stat, "anon 0\nfile 5\n", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s Sample
			require.NoError(t, tc.parse([]byte(tc.stat), &s))
			got, ok := s.Get(Unreclaimable)
			assert.Equal(t, tc.has, ok)
			assert.Equal(t, tc.want, got)
		})
	}
}
