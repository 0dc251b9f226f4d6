// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package cgpath is the arithmetic of cgroup paths as the kernel prints
// them ("/", "/kubepods/burstable/pod…"): slash-separated, absolute,
// relative to the hierarchy's root. Kill attribution, discovery and the
// memory.oom.group lookup all ask whether one cgroup lies below another;
// they ask it here, so that "/" and sibling prefixes ("/a" is not above
// "/ab") are handled the same way everywhere.
package cgpath // import "github.com/oomsight/oomsight/internal/cgpath"

import "strings"

// IsAncestor reports whether the cgroup at a is a strict ancestor of the
// one at b: "/" is the ancestor of every other cgroup, "/a" of "/a/b" but
// not of "/ab" or of itself.
func IsAncestor(a, b string) bool {
	if a == "/" {
		return b != "/" && strings.HasPrefix(b, "/")
	}
	return len(b) > len(a) && b[len(a)] == '/' && strings.HasPrefix(b, a)
}

// Within reports whether b is a or one of its descendants.
func Within(a, b string) bool {
	return a == b || IsAncestor(a, b)
}

// Parent is the path of the cgroup directly above the one at p ("/" above
// "/a"), and "" above "/" or for a path that is not absolute: the time to
// OOM walks a cgroup's ancestors with it.
func Parent(p string) string {
	i := strings.LastIndexByte(p, '/')
	switch {
	case p == "/" || i < 0:
		return ""
	case i == 0:
		return "/"
	}
	return p[:i]
}
