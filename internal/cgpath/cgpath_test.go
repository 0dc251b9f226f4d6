// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgpath

import "testing"

func TestIsAncestor(t *testing.T) {
	for _, c := range []struct {
		a, b   string
		want   bool
		within bool
	}{
		{"/", "/a", true, true},
		{"/", "/", false, true},
		{"/a", "/a/b", true, true},
		{"/a", "/a/b/c", true, true},
		{"/a", "/ab", false, false},
		{"/a", "/a", false, true},
		{"/a/b", "/a", false, false},
		{"/", "relative", false, false},
	} {
		if got := IsAncestor(c.a, c.b); got != c.want {
			t.Errorf("IsAncestor(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
		if got := Within(c.a, c.b); got != c.within {
			t.Errorf("Within(%q, %q) = %v, want %v", c.a, c.b, got, c.within)
		}
	}
}

func TestParent(t *testing.T) {
	for p, want := range map[string]string{
		"/":                       "",
		"/a":                      "/",
		"/a/b":                    "/a",
		"/kubepods/pod1/ctr":      "/kubepods/pod1",
		"relative":                "",
		"/kubepods.slice/x.scope": "/kubepods.slice",
	} {
		if got := Parent(p); got != want {
			t.Errorf("Parent(%q) = %q, want %q", p, got, want)
		}
	}
}
