// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

//go:build linux

package oompipeline // import "github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/oompipeline"

import (
	"math"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/oomsight/oomsight/internal/identity"
	"github.com/oomsight/oomsight/internal/oomrecord"
	"github.com/oomsight/oomsight/internal/oomreport"
	"github.com/oomsight/oomsight/internal/procsnap"
	"github.com/oomsight/oomsight/internal/recorder"
	"github.com/oomsight/oomsight/internal/sampler"
	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/metadata"
	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/resource"
)

// The records the pipeline builds, pure functions of a report (or a
// counted kill, or a snapshot) and what the pipeline's stages added to it.

// oomEventName is the EventName of every OOM kill record;
// nearLimitEventName that of a near miss.
const (
	oomEventName       = "linux.oom_kill"
	nearLimitEventName = "linux.memory.near_limit"
)

// Attributes only the receiver sets (oomsight explain has no sampler); the
// key table is oomrecord's.
const (
	historyKey  = oomrecord.HistoryKey
	inferredKey = oomrecord.TaskMemcgInferredKey
	countedKey  = oomrecord.CountedKillsKey
	survivedKey = oomrecord.ContainerSurvivedKey
	// The near-limit record's own keys.
	nearUsageKey = "linux.memory.near_limit.usage"
	nearLimitKey = "linux.memory.near_limit.limit"
)

// putSurvived puts the survival verdict on a record; a survived kill's
// body gets the sentence that says why Kubernetes shows nothing.
func putSurvived(lr plog.LogRecord, path string, survived bool) {
	lr.Attributes().PutBool(survivedKey, survived)
	if survived {
		lr.Body().SetStr(lr.Body().Str() + oomreport.SurvivedSentence(path))
	}
}

// enrichment is what the receiver adds to a report: the climb, whether
// the victim's cgroup was inferred from the counters, how many task
// table rows the record keeps (oom.max_tasks), and the process snapshot
// taken nearest before the kill (nil: none).
type enrichment struct {
	hist     *recorder.History
	inferred bool
	maxTasks int
	procs    *procsnap.Snapshot
}

// buildOOMLogs turns one report into one log record: event linux.oom_kill,
// severity ERROR, timestamp = the kernel's time of the kill line, observed
// = when it was read, body = the explanation, attributes = the report and,
// when the receiver sampled the limiting cgroup, its climb (hist).
func buildOOMLogs(r *oomreport.Report, observed time.Time, rac metadata.ResourceAttributesConfig, en enrichment) plog.Logs {
	ld, lr := newOOMLog(r.TaskMemcg, r.Time, observed, rac)
	body := r.Body()
	attrs := lr.Attributes()
	for _, f := range oomrecord.Record(r, oomrecord.Options{MaxTasks: en.maxTasks}) {
		putValue(attrs, f.Key, f.Value)
	}
	end := r.Time
	if end.IsZero() {
		end = observed
	}
	if en.procs != nil {
		if cmdline, ok := putProcesses(attrs, en.procs, int64(r.PID)); ok {
			body += oomreport.VictimCmdlineSentence(cmdline, end.Sub(en.procs.Time))
		}
	}
	if en.inferred {
		attrs.PutBool(inferredKey, true)
		body += oomreport.RateLimitedSentence
	}
	if en.hist != nil {
		var top uint64
		if r.MemcgUsage != nil && *r.MemcgUsage > 0 && !r.Global {
			top = uint64(*r.MemcgUsage)
		}
		body += climbSentence(attrs, en.hist, end, top)
	}
	lr.Body().SetStr(body)
	return ld
}

// buildCountedLogs makes the record of a kill that only a cgroup's
// oom_kill counter shows (the kernel log could not be read): the cgroup,
// how many processes, its climb, and why nothing more is known.
func buildCountedLogs(c sampler.Kill, observed time.Time, rac metadata.ResourceAttributesConfig, hist *recorder.History, procs *procsnap.Snapshot, reason string) plog.Logs {
	ld, lr := newOOMLog(c.Path, c.At, observed, rac)
	attrs := lr.Attributes()
	attrs.PutStr(oomrecord.TaskMemcgKey, c.Path)
	attrs.PutInt(countedKey, clampInt64(c.N))
	if procs != nil {
		putProcesses(attrs, procs, 0) // the victim is unknown
	}
	body := oomreport.CountedBody(c.N, c.Path, reason)
	if hist != nil {
		// The kill's time is unknown (the counter is read later): the climb
		// ends at the history's last point, the highest (UntilPeak).
		end := c.At
		if n := len(hist.T); n > 0 {
			end = time.UnixMilli(hist.T[n-1])
		}
		body += climbSentence(attrs, hist, end, 0)
	}
	lr.Body().SetStr(body)
	return ld
}

// buildNearLimitLogs makes the record of a near miss: a snapshot of a
// cgroup in its limit zone that no kill followed (severity WARN, at the
// snapshot's time, on the cgroup's resource).
func buildNearLimitLogs(sn *procsnap.Snapshot, observed time.Time, rac metadata.ResourceAttributesConfig) plog.Logs {
	ld, lr := newRecord(nearLimitEventName, sn.Path, sn.Time, observed, rac)
	lr.SetSeverityNumber(plog.SeverityNumberWarn)
	lr.SetSeverityText("WARN")
	attrs := lr.Attributes()
	attrs.PutInt(nearUsageKey, clampInt64(sn.Usage))
	if sn.Limit > 0 {
		attrs.PutInt(nearLimitKey, clampInt64(sn.Limit))
	}
	putProcesses(attrs, sn, 0)
	procs := make([]oomreport.SnapshotProcess, len(sn.Processes))
	for i, p := range sn.Processes {
		procs[i] = oomreport.SnapshotProcess{PID: p.PID, Cmdline: p.Cmdline, RSS: p.RSS()}
	}
	lr.Body().SetStr(oomreport.NearLimitBody(sn.Path, sn.Usage, sn.Limit, procs, procsnap.Quiet))
	return ld
}

// putProcesses puts a process snapshot on a record's attributes and
// returns the command line of the process victim (0: none) when the
// snapshot has it.
func putProcesses(attrs pcommon.Map, sn *procsnap.Snapshot, victim int64) (cmdline string, ok bool) {
	s := attrs.PutEmptySlice(oomrecord.ProcessesKey)
	s.EnsureCapacity(len(sn.Processes))
	for _, p := range sn.Processes {
		m := s.AppendEmpty().SetEmptyMap()
		m.PutInt("pid", p.PID)
		if p.Name != "" {
			m.PutStr("name", p.Name)
		}
		if p.Cmdline != "" {
			m.PutStr("cmdline", p.Cmdline)
		}
		m.PutInt("rss_anon", p.RSSAnon)
		m.PutInt("rss_file", p.RSSFile)
		m.PutInt("rss_shmem", p.RSSShmem)
		if victim != 0 && p.PID == victim && p.Cmdline != "" {
			cmdline, ok = p.Cmdline, true
		}
	}
	attrs.PutStr(oomrecord.ProcessesCgroupKey, sn.Path)
	attrs.PutInt(oomrecord.ProcessesTimeKey, sn.Time.UnixMilli())
	if n := sn.Omitted + sn.Unread; n > 0 {
		attrs.PutInt(oomrecord.ProcessesOmittedKey, int64(n))
	}
	if sn.Hidden > 0 {
		attrs.PutInt(oomrecord.ProcessesHiddenKey, int64(sn.Hidden))
	}
	if ok {
		attrs.PutStr(oomrecord.VictimCmdlineKey, cmdline)
	}
	return cmdline, ok
}

// newOOMLog starts a linux.oom_kill record on the resource of the cgroup at
// path (none when empty), at time at (unknown when zero).
func newOOMLog(path string, at, observed time.Time, rac metadata.ResourceAttributesConfig) (plog.Logs, plog.LogRecord) {
	ld, lr := newRecord(oomEventName, path, at, observed, rac)
	lr.SetSeverityNumber(plog.SeverityNumberError)
	lr.SetSeverityText("ERROR")
	return ld, lr
}

// newRecord starts a record of the event on the resource of the cgroup at
// path (none when empty), at time at (unknown when zero).
func newRecord(event, path string, at, observed time.Time, rac metadata.ResourceAttributesConfig) (plog.Logs, plog.LogRecord) {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	if path != "" {
		rb := metadata.NewResourceBuilder(rac)
		resource.Set(rb, path, identity.FromPath(path))
		rb.Emit().MoveTo(rl.Resource())
	}
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(metadata.ScopeName)
	lr := sl.LogRecords().AppendEmpty()
	lr.SetEventName(event)
	if !at.IsZero() {
		lr.SetTimestamp(pcommon.NewTimestampFromTime(at))
	}
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(observed))
	return ld, lr
}

// climbSentence puts the history on the record and returns the body's
// sentence on the climb (with a leading space), or "". end is the kill's
// time; top the usage at the kill when the kernel said it (0: unknown).
func climbSentence(attrs pcommon.Map, h *recorder.History, end time.Time, top uint64) string {
	putHistory(attrs.PutEmptyMap(historyKey), h)
	return oomreport.ClimbSentence(h.T, h.Usage, end.UnixNano(), top)
}

// putHistory writes a flight recorder's history as equal-length arrays:
// t (unix ms) and usage; full_t (unix ms), anon, file, active_file, shmem.
func putHistory(m pcommon.Map, h *recorder.History) {
	ints := func(key string, n int, at func(int) int64) {
		s := m.PutEmptySlice(key)
		s.EnsureCapacity(n)
		for i := range n {
			s.AppendEmpty().SetInt(at(i))
		}
	}
	ints("t", len(h.T), func(i int) int64 { return h.T[i] })
	ints("usage", len(h.Usage), func(i int) int64 { return clampInt64(h.Usage[i]) })
	full := h.Full
	ints("full_t", len(full), func(i int) int64 { return full[i].T / int64(time.Millisecond) })
	ints("anon", len(full), func(i int) int64 { return clampInt64(full[i].Anon) })
	ints("file", len(full), func(i int) int64 { return clampInt64(full[i].File) })
	ints("active_file", len(full), func(i int) int64 { return clampInt64(full[i].ActiveFile) })
	ints("shmem", len(full), func(i int) int64 { return clampInt64(full[i].Shmem) })
}

// putValue stores one report value with its natural OTLP type.
func putValue(m pcommon.Map, key string, v any) {
	switch v := v.(type) {
	case int64:
		m.PutInt(key, v)
	case int:
		m.PutInt(key, int64(v))
	case uint64:
		m.PutInt(key, clampInt64(v))
	case string:
		m.PutStr(key, v)
	case bool:
		m.PutBool(key, v)
	case map[string]int64:
		sub := m.PutEmptyMap(key)
		sub.EnsureCapacity(len(v))
		for k, n := range v {
			sub.PutInt(k, n)
		}
	case []map[string]any:
		s := m.PutEmptySlice(key)
		s.EnsureCapacity(len(v))
		for _, row := range v {
			_ = s.AppendEmpty().SetEmptyMap().FromRaw(row)
		}
	default:
		_ = m.PutEmpty(key).FromRaw(v)
	}
}

// clampInt64 converts a kernel count to an OTLP int, saturating at
// MaxInt64.
func clampInt64(v uint64) int64 { return int64(min(v, math.MaxInt64)) }
