// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgrouptest // import "github.com/oomsight/oomsight/internal/testing/cgrouptest"

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// ReadOnlyMount bind-mounts the v1 memory hierarchy dir read-only at a
// temporary directory, as a DaemonSet mounts the host's cgroups; it is
// unmounted at cleanup.
func ReadOnlyMount(tb testing.TB, dir string) string {
	tb.Helper()
	mnt := tb.TempDir()
	if err := unix.Mount(dir, mnt, "", unix.MS_BIND, ""); err != nil {
		Unavailable(tb, "bind mount: %v", err)
	}
	tb.Cleanup(func() { _ = unix.Unmount(mnt, unix.MNT_DETACH) })
	if err := unix.Mount("", mnt, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		Unavailable(tb, "read-only remount: %v", err)
	}
	_, err := os.Stat(filepath.Join(mnt, "memory.usage_in_bytes"))
	if errors.Is(err, os.ErrNotExist) {
		tb.Fatalf("bind mount of %s at %s shows no memory files", dir, mnt)
	}
	return mnt
}
