// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oomrecord

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func taskField(fs []Field, key string) (any, bool) {
	for _, f := range fs {
		if f.Key == key {
			return f.Value, true
		}
	}
	return nil, false
}

// TestTaskTableBounded: a global OOM prints the node's whole task table; a
// report keeps the largest rows by rss (DefaultMaxTasks, or Options.MaxTasks) in
// the kernel's order and counts the rest. The captures' tables are small
// (a VM); MaxTasks below their size exercises the same path.
func TestTaskTableBounded(t *testing.T) {
	reps := readFile(t, "../../testdata/v2/oom/trigger-victim.kmsg")
	require.Len(t, reps, 1)
	r := reps[0]
	n := len(r.Tasks)
	require.Equal(t, 4, n)

	o := Options{}
	all, ok := taskField(append(Record(r, o), Resource(r)...), "linux.oom.tasks")
	require.True(t, ok)
	if n <= DefaultMaxTasks {
		assert.Len(t, all, n)
		_, ok = taskField(append(Record(r, o), Resource(r)...), "linux.oom.tasks.omitted")
		assert.False(t, ok, "nothing left out")
	}

	o.MaxTasks = 2
	rows, _ := taskField(append(Record(r, o), Resource(r)...), "linux.oom.tasks")
	kept := rows.([]map[string]any)
	require.Len(t, kept, 2)
	omitted, ok := taskField(append(Record(r, o), Resource(r)...), "linux.oom.tasks.omitted")
	require.True(t, ok)
	assert.Equal(t, int64(n-2), omitted)
	minKept := kept[0]["rss"].(int64)
	for _, row := range kept {
		minKept = min(minKept, row["rss"].(int64))
	}
	keptPIDs := map[int64]bool{}
	for _, row := range kept {
		keptPIDs[row["pid"].(int64)] = true
	}
	for _, task := range r.Tasks {
		if !keptPIDs[task.PID] {
			assert.LessOrEqual(t, task.RSS, minKept, "a left-out row is not larger than a kept one")
		}
	}
	assert.Contains(t, keptPIDs, int64(r.PID), "the victim has the most rss")

	o.MaxTasks = -1
	rows, _ = taskField(append(Record(r, o), Resource(r)...), "linux.oom.tasks")
	assert.Len(t, rows, n)
}

// TestGroupKillTableOnce: a memory.oom.group kill's task table is on the
// first victim's report only, not copied onto every member's.
func TestGroupKillTableOnce(t *testing.T) {
	reps := readFile(t, "../../testdata/v2/oom/oom-group.kmsg")
	require.GreaterOrEqual(t, len(reps), 2)
	_, first := taskField(Record(reps[0], Options{}), "linux.oom.tasks")
	assert.True(t, first, "the first victim carries the table")
	for _, r := range reps[1:] {
		_, has := taskField(Record(r, Options{}), "linux.oom.tasks")
		assert.False(t, has, "member pid %d", r.PID)
		assert.NotEmpty(t, r.Tasks, "still known to the assembler and the body")
	}
}
