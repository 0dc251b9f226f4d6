package cgroupmemoryreceiver

import (
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/oomsight/oomsight/internal/identity"
	"github.com/oomsight/oomsight/internal/oomreport"
	"github.com/oomsight/oomsight/internal/recorder"
	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/metadata"
)

// oomEventName is the EventName of every OOM kill record.
const oomEventName = "linux.oom_kill"

// resourceKeys are report fields that describe the victim's cgroup; they
// go on the resource, exactly as on the metrics of that cgroup, so that
// records and metrics join on cgroup.path.
var resourceKeys = map[string]bool{
	"cgroup.path":            true,
	"k8s.pod.uid":            true,
	"k8s.pod.qos_class":      true,
	"container.id":           true,
	"container.runtime.name": true,
}

// historyKey is the attribute of the limiting cgroup's flight recorder.
const historyKey = "cgroup.memory.history"

// buildOOMLogs turns one report into one log record: event linux.oom_kill,
// severity ERROR, timestamp = the kernel's time of the kill line, observed
// = when it was read, body = the explanation, attributes = the report and,
// when the receiver sampled the limiting cgroup, its climb (hist).
func buildOOMLogs(r *oomreport.Report, observed time.Time, rac metadata.ResourceAttributesConfig, hist *recorder.History) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	if r.TaskMemcg != "" {
		rb := metadata.NewResourceBuilder(rac)
		setResource(rb, r.TaskMemcg, identity.FromPath(r.TaskMemcg))
		rb.Emit().MoveTo(rl.Resource())
	}
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(metadata.ScopeName)

	lr := sl.LogRecords().AppendEmpty()
	lr.SetEventName(oomEventName)
	lr.SetSeverityNumber(plog.SeverityNumberError)
	lr.SetSeverityText("ERROR")
	if !r.Time.IsZero() {
		lr.SetTimestamp(pcommon.NewTimestampFromTime(r.Time))
	}
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(observed))
	body := r.Body()
	attrs := lr.Attributes()
	for _, f := range r.Fields() {
		if resourceKeys[f.Key] {
			continue
		}
		putValue(attrs, f.Key, f.Value)
	}
	if hist != nil {
		putHistory(attrs.PutEmptyMap(historyKey), hist)
		end := r.Time
		if end.IsZero() {
			end = observed
		}
		var top uint64
		if r.MemcgUsage != nil && *r.MemcgUsage > 0 && !r.Global {
			top = uint64(*r.MemcgUsage)
		}
		if climb := hist.Climb(end.UnixNano(), top, oomreport.Bytes); climb != "" {
			body += " " + strings.ToUpper(climb[:1]) + climb[1:] + "."
		}
	}
	lr.Body().SetStr(body)
	return ld
}

// putHistory writes a flight recorder's history as equal-length arrays:
// t (unix ms) and usage; full_t (unix ms), anon, file, active_file, shmem.
func putHistory(m pcommon.Map, h *recorder.History) {
	ints := func(key string, n int, at func(int) int64) {
		s := m.PutEmptySlice(key)
		s.EnsureCapacity(n)
		for i := 0; i < n; i++ {
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
		m.PutInt(key, int64(v))
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
