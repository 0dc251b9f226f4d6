package cgroupmemoryreceiver

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/oomsight/oomsight/internal/identity"
	"github.com/oomsight/oomsight/internal/oomreport"
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

// buildOOMLogs turns one report into one log record: event linux.oom_kill,
// severity ERROR, timestamp = the kernel's time of the kill line, observed
// = when it was read, body = the explanation, attributes = the report.
func buildOOMLogs(r *oomreport.Report, observed time.Time, rac metadata.ResourceAttributesConfig) plog.Logs {
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
	lr.Body().SetStr(r.Body())
	attrs := lr.Attributes()
	for _, f := range r.Fields() {
		if resourceKeys[f.Key] {
			continue
		}
		putValue(attrs, f.Key, f.Value)
	}
	return ld
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
