// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package checkpoint

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSaveLoad(t *testing.T) {
	f := New(filepath.Join(t.TempDir(), "oom.checkpoint"))
	_, ok, err := f.Load()
	require.NoError(t, err)
	assert.False(t, ok, "no file yet: first start")

	require.NoError(t, f.CheckWritable())
	require.NoError(t, f.Save(Position{BootID: "b1", Seq: 42}))
	pos, ok, err := f.Load()
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, Position{BootID: "b1", Seq: 42}, pos)

	require.NoError(t, f.Save(Position{BootID: "b1", Seq: 43}))
	pos, _, err = f.Load()
	require.NoError(t, err)
	assert.Equal(t, uint64(43), pos.Seq)
	entries, err := os.ReadDir(filepath.Dir(f.path))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary files left behind")
}

func TestLoadCorrupt(t *testing.T) {
	p := filepath.Join(t.TempDir(), "cp")
	require.NoError(t, os.WriteFile(p, []byte("{not json"), 0o600))
	_, _, err := New(p).Load()
	assert.ErrorContains(t, err, "corrupt")
	assert.ErrorContains(t, err, "delete it")

	require.NoError(t, os.WriteFile(p, []byte(`{"seq": 3}`), 0o600))
	_, _, err = New(p).Load()
	assert.ErrorContains(t, err, "no boot_id")
}

func TestCheckWritable(t *testing.T) {
	err := New(filepath.Join(t.TempDir(), "missing-dir", "cp")).CheckWritable()
	assert.Error(t, err)
}

func TestResume(t *testing.T) {
	pos, ok := Resume(Position{BootID: "b1", Seq: 9}, true, "b1")
	assert.True(t, ok)
	assert.Equal(t, uint64(9), pos.Seq)
	_, ok = Resume(Position{BootID: "b0", Seq: 9}, true, "b1")
	assert.False(t, ok, "another boot: all kills of this boot are new")
	_, ok = Resume(Position{}, false, "b1")
	assert.False(t, ok)
}

func TestReadBootID(t *testing.T) {
	id, err := ReadBootID(BootIDFile)
	require.NoError(t, err)
	assert.Len(t, id, 36)
	_, err = ReadBootID(filepath.Join(t.TempDir(), "none"))
	assert.Error(t, err)
}

// TestDeliveredAndHandled: the position holds what was delivered; a kill
// refused for good stays undelivered (a restart emits it again) until it
// is delivered; the list is bounded.
func TestDeliveredAndHandled(t *testing.T) {
	p := Position{BootID: "b"}
	p = p.Handled(5, true)
	p = p.Handled(7, false) // refused
	p = p.Handled(9, true)
	assert.Equal(t, Position{BootID: "b", Seq: 9, Undelivered: []uint64{7}}, p)
	assert.True(t, p.Delivered(5))
	assert.False(t, p.Delivered(7))
	assert.True(t, p.Delivered(9))
	assert.False(t, p.Delivered(10))
	p = p.Handled(7, true) // delivered after a restart
	assert.Equal(t, Position{BootID: "b", Seq: 9}, p)

	for i := range uint64(MaxUndelivered + 10) {
		p = p.Handled(100+i, false)
	}
	assert.Len(t, p.Undelivered, MaxUndelivered)
	assert.False(t, p.Delivered(100+MaxUndelivered+9))

	// It survives the file.
	f := New(filepath.Join(t.TempDir(), "cp"))
	require.NoError(t, f.Save(Position{BootID: "b", Seq: 9, Undelivered: []uint64{7}}))
	got, ok, err := f.Load()
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, []uint64{7}, got.Undelivered)
}
