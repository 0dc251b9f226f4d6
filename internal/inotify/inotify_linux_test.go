// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package inotify

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func drain(t *testing.T, in *Instance[string]) ([]Event[string], bool) {
	t.Helper()
	var got []Event[string]
	overflow := in.Drain(func(ev Event[string]) { got = append(got, ev) })
	return got, overflow
}

// TestSharedWatchAndGone: two keys on one file share the kernel's watch
// and both hear of a write; removing one keeps the other; the file
// removed, the kernel drops the watch (IN_IGNORED) and the key is reported
// Gone and forgotten.
func TestSharedWatchAndGone(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "memory.max")
	require.NoError(t, os.WriteFile(file, []byte("1\n"), 0o600))
	in, err := New[string]()
	require.NoError(t, err)
	defer in.Close()
	require.NoError(t, in.Add("a", file, unix.IN_MODIFY))
	require.NoError(t, in.Add("b", file, unix.IN_MODIFY))
	assert.Equal(t, 2, in.Len())

	got, overflow := drain(t, in)
	assert.Empty(t, got, "nothing happened yet")
	assert.False(t, overflow)

	require.NoError(t, os.WriteFile(file, []byte("2\n"), 0o600))
	got, _ = drain(t, in)
	keys := map[string]bool{}
	for _, ev := range got {
		assert.NotZero(t, ev.Mask&unix.IN_MODIFY)
		keys[ev.Key] = true
	}
	assert.Equal(t, map[string]bool{"a": true, "b": true}, keys)

	in.Remove("a")
	assert.False(t, in.Watched("a"))
	require.NoError(t, os.WriteFile(file, []byte("3\n"), 0o600))
	got, _ = drain(t, in)
	require.NotEmpty(t, got, "b still watches the file")
	for _, ev := range got {
		assert.Equal(t, "b", ev.Key)
	}

	require.NoError(t, os.Remove(file))
	got, _ = drain(t, in)
	require.NotEmpty(t, got)
	assert.True(t, got[len(got)-1].Gone, "the last event says the watch is gone: %+v", got)
	assert.False(t, in.Watched("b"), "a gone watch is forgotten")
	assert.Zero(t, in.Len())
}

// TestDirectoryEventsNameTheEntry: a directory watch reports the entry an
// event is about.
func TestDirectoryEventsNameTheEntry(t *testing.T) {
	dir := t.TempDir()
	in, err := New[string]()
	require.NoError(t, err)
	defer in.Close()
	require.NoError(t, in.Add("/", dir, unix.IN_CREATE|unix.IN_DELETE))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "child"), 0o755))
	got, _ := drain(t, in)
	require.Len(t, got, 1)
	assert.Equal(t, Event[string]{Key: "/", Name: "child", Mask: unix.IN_CREATE | unix.IN_ISDIR}, got[0])
}

// TestOverflowReported: more events than the kernel queues
// (fs.inotify.max_queued_events) are reported as an overflow, so that the
// user takes everything as changed.
func TestOverflowReported(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events")
	require.NoError(t, err)
	var limit int
	_, err = fmt.Sscan(string(b), &limit)
	require.NoError(t, err)
	dir := t.TempDir()
	in, err := New[string]()
	require.NoError(t, err)
	defer in.Close()
	require.NoError(t, in.Add("/", dir, unix.IN_CREATE))
	for i := 0; i <= limit; i++ {
		require.NoError(t, os.Mkdir(filepath.Join(dir, strconv.Itoa(i)), 0o755))
	}
	n := 0
	overflow := in.Drain(func(Event[string]) { n++ })
	assert.True(t, overflow, "%d events of %d made, queue limit %d", n, limit+1, limit)
	got, overflow := drain(t, in)
	assert.Empty(t, got)
	assert.False(t, overflow, "reported once")
}

// TestClosedInstance: a closed instance refuses watches and drains
// nothing.
func TestClosedInstance(t *testing.T) {
	in, err := New[string]()
	require.NoError(t, err)
	in.Close()
	in.Close()
	assert.Error(t, in.Add("a", t.TempDir(), unix.IN_MODIFY))
	got, overflow := drain(t, in)
	assert.Empty(t, got)
	assert.False(t, overflow)
}
