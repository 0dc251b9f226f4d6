// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgroupfs

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDetect(t *testing.T) {
	v1Root, err := filepath.Abs("../../testdata/v1/root")
	require.NoError(t, err)

	h, err := Detect(v1Root)
	require.NoError(t, err)
	assert.Equal(t, Hierarchy{Version: V1, Dir: filepath.Join(v1Root, "memory")}, h)

	// Pointing root_path at the v1 memory mount itself works too.
	h, err = Detect(filepath.Join(v1Root, "memory"))
	require.NoError(t, err)
	assert.Equal(t, V1, h.Version)

	// A unified hierarchy: cgroup.controllers lists memory.
	v2 := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(v2, "cgroup.controllers"), []byte("cpuset cpu io memory hugetlb pids rdma misc\n"), 0o600))
	h, err = Detect(v2)
	require.NoError(t, err)
	assert.Equal(t, Hierarchy{Version: V2, Dir: v2}, h)

	// Hybrid with memory on cgroup2 (unusual but valid): unified/ has it.
	hy := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(hy, "unified"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(hy, "unified", "cgroup.controllers"), []byte("memory pids\n"), 0o600))
	h, err = Detect(hy)
	require.NoError(t, err)
	assert.Equal(t, Hierarchy{Version: V2, Dir: filepath.Join(hy, "unified")}, h)

	// cgroup2 without the memory controller (this CI's hybrid layout has
	// such a unified/ next to the v1 memory mount) is not taken.
	noMem := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(noMem, "cgroup.controllers"), []byte("cpu pids\n"), 0o600))
	_, err = Detect(noMem)
	assert.ErrorIs(t, err, ErrNoMemoryController)

	_, err = Detect(filepath.Join(noMem, "missing"))
	assert.ErrorIs(t, err, os.ErrNotExist)

	_, err = Detect(filepath.Join(noMem, "cgroup.controllers"))
	assert.ErrorContains(t, err, "not a directory")
}

func TestHierarchyAbs(t *testing.T) {
	h := Hierarchy{Version: V1, Dir: "/sys/fs/cgroup/memory"}
	assert.Equal(t, "/sys/fs/cgroup/memory", h.Abs("/"))
	assert.Equal(t, "/sys/fs/cgroup/memory/kubepods/pod1", h.Abs("/kubepods/pod1"))
}

// TestDetectResolvesSymlinks: some hosts link the controller directory
// (memory -> memory,memsw); the hierarchy is where the link points, so
// that walking it finds the cgroups.
func TestDetectResolvesSymlinks(t *testing.T) {
	root := t.TempDir()
	joined := filepath.Join(root, "memory,memsw")
	require.NoError(t, os.CopyFS(joined, os.DirFS("../../testdata/v1/root/memory")))
	require.NoError(t, os.Symlink("memory,memsw", filepath.Join(root, "memory")))
	h, err := Detect(root)
	require.NoError(t, err)
	assert.Equal(t, Hierarchy{Version: V1, Dir: joined}, h)
}
