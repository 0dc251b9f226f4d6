// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

//go:build linux

package e2ev2

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMain frames the VM side's output: the kernel and cgroup mode before
// the tests, DONE with the exit code after them. A test binary that panics
// or times out never prints DONE, which the host treats as a failure.
func TestMain(m *testing.M) {
	inVM := os.Getenv(vmEnv) == "1"
	if inVM {
		fmt.Printf("%sKERNEL %s\n", linePrefix, kernelRelease())
		fmt.Printf("%sMODE %s\n", linePrefix, cgroupMode("/sys/fs/cgroup"))
	}
	code := m.Run()
	if inVM {
		fmt.Printf("%sDONE exit=%d\n", linePrefix, code)
	}
	os.Exit(code)
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// cgroupMode describes the cgroup filesystem at root: its type from the
// filesystem magic, and the controllers the root cgroup offers.
func cgroupMode(root string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		return "unknown (" + err.Error() + ")"
	}
	var fs string
	switch st.Type {
	case unix.CGROUP2_SUPER_MAGIC:
		fs = "cgroup2 unified"
	case unix.CGROUP_SUPER_MAGIC:
		fs = "cgroup v1"
	case unix.TMPFS_MAGIC:
		fs = "cgroup v1/hybrid (tmpfs)"
	default:
		fs = fmt.Sprintf("fs magic %#x", st.Type)
	}
	ctrl, err := os.ReadFile(root + "/cgroup.controllers")
	if err != nil {
		return fmt.Sprintf("%s at %s; no cgroup.controllers", fs, root)
	}
	return fmt.Sprintf("%s at %s; controllers: %s", fs, root, strings.TrimSpace(string(ctrl)))
}
