// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oomreport // import "github.com/oomsight/oomsight/internal/oomreport"

import (
	"container/heap"
	"slices"
)

// pidLimit is the highest pid a Linux kernel can give (PID_MAX_LIMIT on
// 64-bit kernels, 4 Mi): /proc/sys/kernel/pid_max cannot exceed it, so a
// larger pid in a kill line or a task table row is not the kernel's and is
// rejected (a ParseError), which also bounds the pid indexes below.
const pidLimit = 4 << 20

// DefaultMaxTasks is how many task table rows a report keeps unless told
// otherwise (WithMaxTasks): the largest by rss, the rest only counted.
const DefaultMaxTasks = 20

// taskTable is a report's task table as the assembler keeps it while the
// rows stream by: the maxRows rows with the largest rss (all when maxRows
// is -1) and an index of every row's pid and oom_score_adj. Its memory is
// bounded whatever the input: maxRows rows plus 2 bytes per pid up to the
// largest listed (at most pidLimit, 8 MiB). The reports of one
// memory.oom.group kill share it, so a group kill of N members costs O(N),
// not O(N²) (issue 24).
type taskTable struct {
	maxRows int
	kept    rowHeap // the largest rows so far; smallest (then latest) on top
	seen    int     // rows seen
	// adj holds, for each pid listed, its oom_score_adj + adjBias (0: not
	// listed): membership and the victim's oom_score_adj in one array.
	adj []int16
	// triggerName is the allocating task's name when the rows came, and
	// triggerRows/triggerPID the rows with that name and the last one's
	// pid (see Report.threadOf).
	triggerName string
	triggerRows int
	triggerPID  int64
	rows        []Task // kept rows in the kernel's order, once finished
	done        bool
}

// adjBias maps oom_score_adj (-1000…1000) onto 1…2001, leaving 0 for "not
// listed".
const adjBias = 1001

func newTaskTable(maxRows int, triggerName string) *taskTable {
	return &taskTable{maxRows: maxRows, triggerName: triggerName}
}

// add takes one row (its pid and oom_score_adj already checked by
// parseTaskRow; out of range, it is dropped).
func (t *taskTable) add(row Task) {
	adj := row.OOMScoreAdj + adjBias
	if t.done || row.PID < 0 || row.PID > pidLimit || adj < 1 || adj >= 2*adjBias {
		return // done: a report was built from it, rows are no longer taken
	}
	if int(row.PID) >= len(t.adj) {
		t.adj = slices.Grow(t.adj, int(row.PID)+1-len(t.adj))[:row.PID+1]
	}
	t.adj[row.PID] = int16(adj)
	if t.triggerName != "" && row.Name == t.triggerName {
		t.triggerRows, t.triggerPID = t.triggerRows+1, row.PID
	}
	r := indexedTask{Task: row, idx: t.seen}
	t.seen++
	switch {
	case t.maxRows < 0 || len(t.kept) < t.maxRows:
		heap.Push(&t.kept, r)
	case row.RSS > t.kept[0].RSS:
		// Equal rss keeps the earlier row, as a stable sort by rss would.
		t.kept[0] = r
		heap.Fix(&t.kept, 0)
	}
}

// finish ends the table: the kept rows in the kernel's order, and how many
// were left out. A report built from the table shares the rows.
func (t *taskTable) finish() ([]Task, int) {
	if !t.done {
		t.done = true
		sorted := slices.Clone(t.kept)
		slices.SortFunc(sorted, func(a, b indexedTask) int { return a.idx - b.idx })
		t.rows = make([]Task, len(sorted))
		for i, r := range sorted {
			t.rows[i] = r.Task
		}
		t.rows = slices.Clip(t.rows)
		t.kept = nil
	}
	return t.rows, t.seen - len(t.rows)
}

// listed tells whether the table has a row for pid.
func (t *taskTable) listed(pid int64) bool {
	return pid >= 0 && pid < int64(len(t.adj)) && t.adj[pid] != 0
}

// scoreAdj returns pid's oom_score_adj, if the table lists it.
func (t *taskTable) scoreAdj(pid int64) (int64, bool) {
	if !t.listed(pid) {
		return 0, false
	}
	return int64(t.adj[pid]) - adjBias, true
}

type indexedTask struct {
	Task
	idx int // row number in the table
}

// rowHeap is a min-heap by rss; among equal rss the later row is smaller
// (dropped first).
type rowHeap []indexedTask

func (h rowHeap) Len() int { return len(h) }
func (h rowHeap) Less(i, j int) bool {
	return h[i].RSS < h[j].RSS || (h[i].RSS == h[j].RSS && h[i].idx > h[j].idx)
}
func (h rowHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *rowHeap) Push(x any)   { *h = append(*h, x.(indexedTask)) }
func (h *rowHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// pidSet is a set of pids below pidLimit: a bitset, at most 512 KiB.
type pidSet []uint64

func (s *pidSet) add(pid int) {
	if pid < 0 || pid >= pidLimit {
		return
	}
	w := pid / 64
	if w >= len(*s) {
		*s = slices.Grow(*s, w+1-len(*s))[:w+1]
	}
	(*s)[w] |= 1 << (pid % 64)
}

func (s pidSet) has(pid int) bool {
	w := pid / 64
	return pid >= 0 && w < len(s) && s[w]&(1<<(pid%64)) != 0
}
