// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package discovery

import (
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

// TestTreeFollowsMkdirAndRmdir: after the first (full) walk, a Sync with no
// change reports nothing, a mkdir or rmdir reports exactly that cgroup (and
// what is below it), directories outside the include globs are not walked
// or watched, and a full walk still runs every FullWalkEvery.
func TestTreeFollowsMkdirAndRmdir(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"kubepods/burstable/pod1/ctr1", "system.slice/a/b/c"} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	f, err := NewFilter([]string{"/kubepods/**"}, nil)
	require.NoError(t, err)
	tr := NewTree(root, f)
	defer tr.Close()
	require.True(t, tr.Watching())
	now := time.Unix(1700000000, 0)
	tr.now = func() time.Time { return now }

	d, err := tr.Sync()
	require.NoError(t, err)
	assert.True(t, d.Full)
	assert.Equal(t, []string{"/kubepods/burstable", "/kubepods/burstable/pod1", "/kubepods/burstable/pod1/ctr1"}, sorted(d.Live))
	assert.False(t, tr.ino.Watched("/system.slice"), "pruned: not watched")
	assert.True(t, tr.ino.Watched("/kubepods"))

	d, err = tr.Sync()
	require.NoError(t, err)
	assert.Equal(t, Delta{}, d, "nothing changed")

	require.NoError(t, os.MkdirAll(filepath.Join(root, "kubepods/burstable/pod2/ctr2"), 0o755))
	require.NoError(t, os.Mkdir(filepath.Join(root, "system.slice/x"), 0o755))
	d, err = tr.Sync()
	require.NoError(t, err)
	assert.False(t, d.Full)
	assert.Equal(t, []string{"/kubepods/burstable/pod2", "/kubepods/burstable/pod2/ctr2"}, sorted(d.Added))

	require.NoError(t, os.Remove(filepath.Join(root, "kubepods/burstable/pod1/ctr1")))
	require.NoError(t, os.Remove(filepath.Join(root, "kubepods/burstable/pod1")))
	d, err = tr.Sync()
	require.NoError(t, err)
	assert.Equal(t, []string{"/kubepods/burstable/pod1", "/kubepods/burstable/pod1/ctr1"}, sorted(d.Removed))
	assert.Empty(t, d.Added)

	now = now.Add(FullWalkEvery)
	d, err = tr.Sync()
	require.NoError(t, err)
	assert.True(t, d.Full, "the safety net")
	assert.Equal(t, []string{"/kubepods/burstable", "/kubepods/burstable/pod2", "/kubepods/burstable/pod2/ctr2"}, sorted(d.Live))
}

// TestTreeWithoutInotify walks on every Sync.
func TestTreeWithoutInotify(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "a"), 0o755))
	tr := NewTree(root, nil)
	tr.Close() // as if inotify were unavailable
	d, err := tr.Sync()
	require.NoError(t, err)
	assert.True(t, d.Full)
	require.NoError(t, os.Mkdir(filepath.Join(root, "b"), 0o755))
	d, err = tr.Sync()
	require.NoError(t, err)
	assert.True(t, d.Full)
	assert.Equal(t, []string{"/", "/a", "/b"}, sorted(d.Live))
}

// TestBelow: the cgroups a full walk keeps because a directory above them
// could not be listed.
func TestBelow(t *testing.T) {
	failed := []*DirError{{Path: "/a/b"}}
	assert.True(t, below("/a/b", failed))
	assert.True(t, below("/a/b/ghost", failed))
	assert.False(t, below("/a/bc", failed))
	assert.False(t, below("/a/c", failed))
	assert.True(t, below("/x", []*DirError{{Path: "/"}}))
}

func TestTreeMissingRoot(t *testing.T) {
	tr := NewTree(filepath.Join(t.TempDir(), "gone"), nil)
	defer tr.Close()
	_, err := tr.Sync()
	assert.ErrorIs(t, err, os.ErrNotExist)
}
