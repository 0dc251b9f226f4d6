// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package discovery

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFilter(t *testing.T) {
	const (
		pod     = "/kubepods/burstable/pod0f5eb28f-6722-4cf5-ab0f-b62748c018d4"
		ctr     = pod + "/0dc1822caf9e150de25daa1cf572418426ce6b72757b5efdff52acef348368a3"
		sdPod   = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-poddfc377c9_c533_4d51_af9e_6e0e0b3db83b.slice"
		prefixd = "/kubelet.slice/kubelet-kubepods.slice" + pod
	)
	for _, tc := range []struct {
		name             string
		include, exclude []string
		match            []string
		noMatch          []string
	}{
		{name: "empty selects all", match: []string{"/", pod, ctr, "/system.slice"}},
		{
			name:    "top-level kubepods subtree",
			include: []string{"/kubepods*/**"},
			match:   []string{pod, ctr, sdPod},
			noMatch: []string{"/", "/kubepods", "/system.slice/docker.service", prefixd},
		},
		{
			name:    "kubepods below any prefix",
			include: []string{"**/kubepods*/**"},
			match:   []string{pod, ctr, prefixd},
			noMatch: []string{"/system.slice"},
		},
		{
			name:    "star stays in one segment",
			include: []string{"/kubepods/*"},
			match:   []string{"/kubepods/burstable"},
			noMatch: []string{pod},
		},
		{
			name:    "exclude wins over include",
			include: []string{"/**"},
			exclude: []string{"/system.slice", "/system.slice/**"},
			match:   []string{pod},
			noMatch: []string{"/system.slice", "/system.slice/sshd.service"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := NewFilter(tc.include, tc.exclude)
			require.NoError(t, err)
			for _, p := range tc.match {
				assert.True(t, f.Match(p), "%s should match", p)
			}
			for _, p := range tc.noMatch {
				assert.False(t, f.Match(p), "%s should not match", p)
			}
		})
	}
}

func TestFilterErrors(t *testing.T) {
	_, err := NewFilter([]string{"/ok/**", "/bad/[a"}, nil)
	assert.ErrorContains(t, err, `include[1]: bad glob "/bad/[a"`)
	_, err = NewFilter(nil, []string{""})
	assert.ErrorContains(t, err, "exclude[0]: empty glob")
	// Paths start with "/": a glob that cannot match one is refused with
	// the two ways to write it, not accepted to select nothing.
	_, err = NewFilter([]string{"kubepods/**"}, nil)
	assert.ErrorContains(t, err, `include[0]: glob "kubepods/**" matches no cgroup`)
	assert.ErrorContains(t, err, `"/kubepods/**"`)
	assert.ErrorContains(t, err, `"**/kubepods/**"`)
	_, err = NewFilter(nil, []string{"/ok", "?system.slice"})
	assert.ErrorContains(t, err, `exclude[1]: glob "?system.slice" matches no cgroup`)
	for _, ok := range []string{"/kubepods/**", "**/kubepods*/**", "*/kubepods", "{/a,/b}", "[/]kubepods"} {
		_, err = NewFilter([]string{ok}, nil)
		assert.NoError(t, err, ok)
	}
}

func TestWalkFixture(t *testing.T) {
	dir, err := filepath.Abs("../../testdata/v1/root/memory")
	require.NoError(t, err)
	f, err := NewFilter([]string{"/kubepods/**"}, nil)
	require.NoError(t, err)
	paths, err := Walk(dir, f)
	require.NoError(t, err)
	assert.Equal(t, []string{
		"/kubepods/burstable",
		"/kubepods/burstable/pod0f5eb28f-6722-4cf5-ab0f-b62748c018d4",
		"/kubepods/burstable/pod0f5eb28f-6722-4cf5-ab0f-b62748c018d4/0dc1822caf9e150de25daa1cf572418426ce6b72757b5efdff52acef348368a3",
	}, paths)

	all, err := Walk(dir, nil)
	require.NoError(t, err)
	assert.Equal(t, "/", all[0])
	assert.Len(t, all, 9)
}

func TestWalkMissingRoot(t *testing.T) {
	_, err := Walk(filepath.Join(t.TempDir(), "gone"), nil)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestFilterMayContain(t *testing.T) {
	for _, tc := range []struct {
		include []string
		yes, no []string
	}{
		{nil, []string{"/", "/a/b"}, nil},
		{[]string{"/kubepods*/**"}, []string{"/", "/kubepods", "/kubepods.slice/x/y"}, []string{"/system.slice", "/user.slice/user-0.slice"}},
		{[]string{"/kubepods/*"}, []string{"/kubepods", "/kubepods/burstable"}, []string{"/kubepods/burstable/pod1", "/docker"}},
		{[]string{"**/kubepods*/**"}, []string{"/system.slice", "/a/b/c"}, nil},
		{[]string{"/a/{b,c}/*"}, []string{"/x"}, nil}, // braces: no pruning
		{[]string{"/a/b", "/c/**"}, []string{"/a", "/a/b", "/c/d/e"}, []string{"/a/b/c", "/d"}},
	} {
		f, err := NewFilter(tc.include, nil)
		require.NoError(t, err)
		for _, d := range tc.yes {
			assert.True(t, f.MayContain(d), "%v may contain %s", tc.include, d)
		}
		for _, d := range tc.no {
			assert.False(t, f.MayContain(d), "%v cannot contain %s", tc.include, d)
		}
	}
}
