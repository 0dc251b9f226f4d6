// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package sampler

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/oomsight/oomsight/internal/cgroupfs"
)

const ctr = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-poddfc377c9_c533_4d51_af9e_6e0e0b3db83b.slice/cri-containerd-2260b35b008a15bd118e629c0c5d74e7f3a1fe18c724fbac61a54862fea196dc.scope"

// fixture starts a sampler over a copy of the captured v2 tree.
func fixture(t *testing.T) (*Sampler, string) {
	t.Helper()
	root := t.TempDir()
	require.NoError(t, os.CopyFS(root, os.DirFS("../../testdata/v2/cgroupfs")))
	h, err := cgroupfs.Detect(root)
	require.NoError(t, err)
	s := New(Options{Hierarchy: h, Logger: zap.NewNop()})
	_, err = s.Start()
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s, root
}

// setOOMKills rewrites the oom_kill line of a fixture cgroup's
// memory.events.local.
func setOOMKills(t *testing.T, root, path, n string) {
	t.Helper()
	file := filepath.Join(root, filepath.FromSlash(path), "memory.events.local")
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	var lines []string
	for l := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		if strings.HasPrefix(l, "oom_kill ") {
			l = "oom_kill " + n
		}
		lines = append(lines, l)
	}
	require.NoError(t, os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600))
}

func collect(t *testing.T, s *Sampler) []string {
	t.Helper()
	var paths []string
	p, err := s.Collect(t.Context(), func(c *Collected) { paths = append(paths, c.Path) })
	require.NoError(t, err)
	require.Zero(t, p.Unread)
	return paths
}

// TestCollectCountsKills: a collection books the rise of a cgroup's
// oom_kill counter once, hands it to the subscriber until it cancels, and
// a kill line without a cgroup is attributed to it once.
func TestCollectCountsKills(t *testing.T) {
	s, root := fixture(t)
	paths := collect(t, s)
	require.Contains(t, paths, ctr)
	assert.Equal(t, s.Paths(nil), paths, "every cgroup, in path order")

	var mu sync.Mutex
	var got []Kill
	cancel := s.Subscribe(func(k Kill) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, k)
	})
	setOOMKills(t, root, ctr, "2")
	collect(t, s)
	collect(t, s) // the same reading again: no new kill
	mu.Lock()
	require.Len(t, got, 1)
	assert.Equal(t, ctr, got[0].Path)
	assert.Equal(t, uint64(2), got[0].N)
	mu.Unlock()

	path, ok := s.Infer(time.Now())
	assert.True(t, ok)
	assert.Equal(t, ctr, path)
	path, ok = s.Infer(time.Now())
	assert.True(t, ok, "two processes killed: two kill lines")
	assert.Equal(t, ctr, path)
	_, ok = s.Infer(time.Now())
	assert.False(t, ok, "both kills claimed")

	cancel()
	setOOMKills(t, root, ctr, "3")
	collect(t, s)
	mu.Lock()
	assert.Len(t, got, 1, "nothing handed on after cancel")
	mu.Unlock()
	s.Claim(ctr + "/child") // the nearest counted ancestor's kill is claimed
	_, ok = s.Infer(time.Now())
	assert.False(t, ok, "claimed by the report of a kill below it")
}

// TestCutCollectionBooksOnlyWhatItRead: a collection cut by its deadline
// before a cgroup books no kill of that cgroup (each counter is its own,
// read or not); the next reading of it does, once.
func TestCutCollectionBooksOnlyWhatItRead(t *testing.T) {
	s, root := fixture(t)
	collect(t, s)
	setOOMKills(t, root, ctr, "1")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	p, err := s.Collect(ctx, func(*Collected) {})
	require.NoError(t, err)
	assert.Equal(t, p.Total, p.Unread)
	assert.ErrorIs(t, p.Cut, context.Canceled)
	_, ok := s.Infer(time.Now().Add(time.Hour)) // far from any counted kill: only reads
	assert.False(t, ok)
	// Infer's own scan read the counters: the kill is counted now, once.
	path, ok := s.Infer(time.Now())
	assert.True(t, ok)
	assert.Equal(t, ctr, path)
}

// TestRecordCounts: records are counted per cgroup and cause, and kills
// the container survived per cgroup, handed out in path order; a record
// without a cgroup is not counted.
func TestRecordCounts(t *testing.T) {
	s, _ := fixture(t)
	s.CountRecord("/b", "anon")
	s.CountRecord("/a", "")
	s.CountRecord("/b", "anon")
	s.CountRecord("", "anon")
	s.CountSurvived("/b")
	s.CountSurvived("")
	var order []string
	got := map[string]map[string]int64{}
	survived := map[string]int64{}
	s.RecordCounts(func(path string, start time.Time, c Counts) {
		assert.False(t, start.IsZero())
		order = append(order, path)
		got[path] = maps.Clone(c.ByCause)
		survived[path] = c.Survived
	})
	assert.Equal(t, []string{"/a", "/b"}, order)
	assert.Equal(t, map[string]map[string]int64{"/a": {"unknown": 1}, "/b": {"anon": 2}}, got)
	assert.Equal(t, map[string]int64{"/a": 0, "/b": 1}, survived)
}
