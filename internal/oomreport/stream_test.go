// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oomreport

import (
	"cmp"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReportsStream: Reports yields a kill's report while the log is still
// being written (once the records after its kill line came), not at the
// end of the input: what lets explain print report by report in bounded
// memory.
func TestReportsStream(t *testing.T) {
	raw, err := os.ReadFile("../../testdata/v2/oom/oom-group.kmsg")
	require.NoError(t, err)
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write(raw)
		// Nothing more for a while: the report must come out before.
		time.Sleep(10 * time.Second)
		_ = pw.Close()
	}()
	got := make(chan *Report, 1)
	go func() {
		for r, err := range Reports(pr) {
			if err == nil {
				got <- r
				return
			}
		}
	}()
	select {
	case r := <-got:
		assert.NotZero(t, r.PID)
	case <-time.After(5 * time.Second):
		t.Fatal("no report before the end of the input")
	}
	_ = pr.Close()
}

// TestTaskTableKeepsLargest: the rows the streaming table keeps are those
// a stable sort by rss would pick (ties: the earlier row), in the
// kernel's order, and it counts the rest.
func TestTaskTableKeepsLargest(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 5, 20, 21, 100, 1000} {
		rows := make([]Task, n)
		for i := range rows {
			rows[i] = Task{PID: int64(100 + i), Name: "p", RSS: int64(rng.IntN(8)) * 4096, OOMScoreAdj: int64(rng.IntN(2001) - 1000)}
		}
		for _, limit := range []int{1, 3, 20, -1} {
			tt := newTaskTable(limit, "")
			for _, r := range rows {
				tt.add(r)
			}
			kept, omitted := tt.finish()
			idx := make([]int, n)
			for i := range idx {
				idx[i] = i
			}
			slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(rows[b].RSS, rows[a].RSS) })
			if limit >= 0 && n > limit {
				idx = idx[:limit]
			}
			slices.Sort(idx)
			want := make([]Task, len(idx))
			for i, j := range idx {
				want[i] = rows[j]
			}
			assert.Equal(t, want, kept, "n=%d limit=%d", n, limit)
			assert.Equal(t, n-len(want), omitted)
			for _, r := range rows {
				adj, ok := tt.scoreAdj(r.PID)
				assert.True(t, ok)
				assert.Equal(t, r.OOMScoreAdj, adj)
			}
			assert.False(t, tt.listed(99))
			assert.False(t, tt.listed(int64(100+n)))
		}
	}
}

// TestGroupKillSharesTable: the members of a group kill share the first
// victim's table (no copy per member).
func TestGroupKillSharesTable(t *testing.T) {
	raw, err := os.ReadFile("../../testdata/v2/oom/oom-group.kmsg")
	require.NoError(t, err)
	reps, err := ReadAll(strings.NewReader(string(raw)))
	require.NoError(t, err)
	require.Len(t, reps, 3)
	for _, r := range reps[1:] {
		assert.Same(t, reps[0].table, r.table)
		assert.True(t, r.TasksElsewhere)
	}
	assert.Len(t, reps[0].Tasks, 3)
}
