// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package cgroupfs finds the cgroup memory hierarchy below a mount point and
// reads the memory files of one cgroup, for cgroup v1 and v2, with held-open
// file descriptors and parsers that do not allocate in steady state.
package cgroupfs // import "github.com/oomsight/oomsight/internal/cgroupfs"

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Version is the cgroup version of a memory hierarchy.
type Version int

// The two cgroup versions. Hybrid hosts (v1 controllers plus a cgroup2 mount
// without the memory controller) account memory in v1.
const (
	V1 Version = 1
	V2 Version = 2
)

func (v Version) String() string {
	switch v {
	case V1:
		return "v1"
	case V2:
		return "v2"
	}
	return fmt.Sprintf("Version(%d)", int(v))
}

// Hierarchy is the memory controller's hierarchy: its version and the
// directory of its root cgroup. Cgroup paths are relative to Dir.
type Hierarchy struct {
	Version Version
	Dir     string
}

// ErrNoMemoryController is returned by Detect when a directory exists but no
// memory hierarchy can be found below it.
var ErrNoMemoryController = errors.New("no cgroup memory controller found")

// Detect finds the memory hierarchy below root (usually /sys/fs/cgroup, or
// /host/sys/fs/cgroup in a container). It looks at files rather than the
// filesystem magic so that it also works on a copied tree (test fixtures) and
// on any mount point, in this order: unified v2 with memory enabled at root,
// v1 at root/memory (this covers hybrid hosts), v2 at root/unified, and root
// itself being a v1 memory mount.
func Detect(root string) (Hierarchy, error) {
	fi, err := os.Stat(root)
	if err != nil {
		return Hierarchy{}, err
	}
	if !fi.IsDir() {
		return Hierarchy{}, fmt.Errorf("%s is not a directory", root)
	}
	switch {
	case hasMemoryController(filepath.Join(root, "cgroup.controllers")):
		return resolved(V2, root)
	case exists(filepath.Join(root, "memory", "memory.usage_in_bytes")):
		return resolved(V1, filepath.Join(root, "memory"))
	case hasMemoryController(filepath.Join(root, "unified", "cgroup.controllers")):
		return resolved(V2, filepath.Join(root, "unified"))
	case exists(filepath.Join(root, "memory.usage_in_bytes")):
		return resolved(V1, root)
	}
	return Hierarchy{}, fmt.Errorf("%w below %s: expected cgroup v2 (cgroup.controllers listing memory) or a v1 memory mount (memory/memory.usage_in_bytes)", ErrNoMemoryController, root)
}

// resolved returns the hierarchy at dir with symlinks resolved: some hosts
// link the controller directory (memory -> memory,memsw), and the walk does
// not follow a symlink at its root.
func resolved(v Version, dir string) (Hierarchy, error) {
	resolvedDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return Hierarchy{}, err
	}
	return Hierarchy{Version: v, Dir: resolvedDir}, nil
}

// Abs returns the directory of the cgroup at path (relative to the root, as
// the kernel prints it: "/" is the root cgroup).
func (h Hierarchy) Abs(path string) string {
	return filepath.Join(h.Dir, filepath.FromSlash(path))
}

func hasMemoryController(controllersFile string) bool {
	b, err := os.ReadFile(controllersFile)
	if err != nil {
		return false
	}
	for f := range bytes.FieldsSeq(b) {
		if string(f) == "memory" {
			return true
		}
	}
	return false
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
