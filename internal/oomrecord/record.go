// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oomrecord // import "github.com/oomsight/oomsight/internal/oomrecord"

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/oomsight/oomsight/internal/oomreport"
)

// DefaultMaxTasks is how many task table rows a record keeps: the
// assembler's default too.
const DefaultMaxTasks = oomreport.DefaultMaxTasks

// Options are how a report is rendered.
type Options struct {
	// MaxTasks is how many task table rows to keep, largest rss first, in
	// the kernel's order (0: DefaultMaxTasks; -1: all); the rest are
	// counted in linux.oom.tasks.omitted. A global OOM prints the node's
	// whole task table.
	MaxTasks int
}

func (o Options) maxTasks() int {
	if o.MaxTasks == 0 {
		return DefaultMaxTasks
	}
	return o.MaxTasks
}

// Field is one attribute with its value: int64, string, bool,
// map[string]int64 (the stat dump) or []map[string]any (the tasks, keys
// pid, name, rss, oom_score_adj).
type Field struct {
	Key   string
	Value any
}

// Record returns the attributes the report tells, in the table's order
// (the receiver-only keys are the receiver's to add).
func Record(r *oomreport.Report, o Options) []Field {
	return fields(Attributes, r, o, nil)
}

// Resource returns the resource keys the victim's cgroup tells.
func Resource(r *oomreport.Report) []Field {
	return fields(ResourceKeys, r, Options{}, nil)
}

func fields(keys []Key, r *oomreport.Report, o Options, fs []Field) []Field {
	for _, k := range keys {
		if k.get == nil {
			continue
		}
		if v, ok := k.get(r, o); ok {
			fs = append(fs, Field{k.Name, v})
		}
	}
	return fs
}

// JSON writes one flat object, as `oomsight explain --format json` prints
// it: the record's attributes and the resource keys in the table's order,
// then "body" and, when known, "time" (RFC 3339 with nanoseconds; ISO 8601
// local time and "time.utc_offset": "unknown" when the log gave no zone).
// The order is kept (rather than a map's sorted keys) so that a line reads
// like the report: who, where, how much, why.
func JSON(r *oomreport.Report, o Options) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	write := func(k string, v any) error {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		// Numbers and booleans directly: explain prints a line per kill,
		// a million for a million kill lines (issue 24).
		switch v := v.(type) {
		case int64:
			b.Write(strconv.AppendInt(b.AvailableBuffer(), v, 10))
			return nil
		case bool:
			b.Write(strconv.AppendBool(b.AvailableBuffer(), v))
			return nil
		}
		vb, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("oomrecord: encoding %s: %w", k, err)
		}
		b.Write(vb)
		return nil
	}
	for _, f := range append(Record(r, o), Resource(r)...) {
		if err := write(f.Key, f.Value); err != nil {
			return nil, err
		}
	}
	if err := write("body", r.Body()); err != nil {
		return nil, err
	}
	switch {
	case r.Time.IsZero():
	case r.TimeZoneUnknown:
		// ISO 8601 local time: no offset, because the log gave none.
		if err := write("time", r.Time.Format("2006-01-02T15:04:05.999999999")); err != nil {
			return nil, err
		}
		if err := write("time.utc_offset", "unknown"); err != nil {
			return nil, err
		}
	default:
		if err := write("time", r.Time.Format(time.RFC3339Nano)); err != nil {
			return nil, err
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// topTasks returns the limit largest rows by rss, in the kernel's order,
// and how many were left out (limit -1: all).
func topTasks(tasks []oomreport.Task, limit int) ([]oomreport.Task, int) {
	if limit < 0 || len(tasks) <= limit {
		return tasks, 0
	}
	idx := make([]int, len(tasks))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return tasks[idx[a]].RSS > tasks[idx[b]].RSS })
	keep := idx[:limit]
	sort.Ints(keep)
	rows := make([]oomreport.Task, limit)
	for i, j := range keep {
		rows[i] = tasks[j]
	}
	return rows, len(tasks) - limit
}
