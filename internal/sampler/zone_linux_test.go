// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package sampler

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/oomsight/oomsight/internal/cgroupfs"
)

// TestInZone: the fast pass asks for a process snapshot at 90 % of a known
// limit and above (the v1 threshold event's level), never without a limit.
func TestInZone(t *testing.T) {
	const mib = 1 << 20
	for _, tt := range []struct {
		usage, limit uint64
		want         bool
	}{
		{57 * mib, 64 * mib, false},
		{64*mib*9/10 + 1, 64 * mib, true}, // the first byte at 90 %
		{64 * mib, 64 * mib, true},
		{70 * mib, 64 * mib, true}, // a lowered limit
		{1 << 40, 0, false},        // unlimited
	} {
		assert.Equal(t, tt.want, inZone(tt.usage, tt.limit), "%d of %d", tt.usage, tt.limit)
	}
}

// TestCollectAsksForSnapshots: without a fast pass, each collection of a
// cgroup in its limit zone asks for a process snapshot (the captured
// container, its usage set to 61 of 64 MiB); one below its zone does not.
func TestCollectAsksForSnapshots(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.CopyFS(root, os.DirFS("../../testdata/v2/cgroupfs")))
	dir := filepath.Join(root, filepath.FromSlash(ctr))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "memory.current"), []byte("63963136\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "memory.max"), []byte("67108864\n"), 0o600))
	h, err := cgroupfs.Detect(root)
	require.NoError(t, err)
	var asked []string
	s := New(Options{
		Hierarchy: h, Logger: zap.NewNop(), SamplingInterval: 100 * time.Millisecond,
		Snapshot: func(path string, usage, limit uint64) {
			assert.True(t, inZone(usage, limit), "%s: %d of %d", path, usage, limit)
			asked = append(asked, path)
		},
	})
	_, err = s.Start()
	require.NoError(t, err)
	defer s.Close()
	zone := map[string]bool{}
	_, err = s.Collect(t.Context(), func(c *Collected) {
		u, ok := c.Sample.Get(cgroupfs.Usage)
		l, lok := c.Sample.Get(cgroupfs.Limit)
		zone[c.Path] = ok && lok && inZone(u, l)
	})
	require.NoError(t, err)
	var want []string
	for _, p := range s.Paths(nil) {
		if zone[p] {
			want = append(want, p)
		}
	}
	require.Contains(t, want, ctr)
	assert.Equal(t, want, asked)
}
