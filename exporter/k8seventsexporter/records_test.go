// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package k8seventsexporter

import (
	"os"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/oomsight/oomsight/internal/oomrecord"
	"github.com/oomsight/oomsight/internal/oomreport"
)

// k8sNames is what k8s_attributes and the agent's resource processor add
// to a record's resource: the pod's name and namespace, the container's
// name and the node's.
type k8sNames struct {
	pod, namespace, container, node string
}

// capturedRecords reads a kernel log captured from a real kill (testdata)
// and returns one record per killed process, as the receiver builds it
// (event linux.oom_kill, body = the explanation, the report's attributes,
// the resource its cgroup path tells), with names added as the agent's
// processors add them. Logs without a wall clock (raw kmsg) get at as the
// kill time, as the receiver converts kernel time to wall clock.
func capturedRecords(t *testing.T, file string, names k8sNames, at time.Time) []plog.Logs {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	reports, err := oomreport.ReadAll(f)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if len(reports) == 0 {
		t.Fatalf("%s: no OOM report", file)
	}
	var out []plog.Logs
	for _, r := range reports {
		ld := plog.NewLogs()
		rl := ld.ResourceLogs().AppendEmpty()
		res := rl.Resource().Attributes()
		for _, f := range oomrecord.Resource(r) {
			res.PutStr(f.Key, f.Value.(string))
		}
		for k, v := range map[string]string{podNameKey: names.pod, namespaceKey: names.namespace, containerKey: names.container, nodeNameKey: names.node} {
			if v != "" {
				res.PutStr(k, v)
			}
		}
		lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		lr.SetEventName(oomEventName)
		lr.SetSeverityNumber(plog.SeverityNumberError)
		lr.Body().SetStr(r.Body())
		kill := r.Time
		if kill.IsZero() {
			kill = at
		}
		lr.SetTimestamp(pcommon.NewTimestampFromTime(kill))
		lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(kill.Add(40 * time.Millisecond)))
		for _, f := range oomrecord.Record(r, oomrecord.Options{}) {
			switch v := f.Value.(type) {
			case string:
				lr.Attributes().PutStr(f.Key, v)
			case int64:
				lr.Attributes().PutInt(f.Key, v)
			case bool:
				lr.Attributes().PutBool(f.Key, v)
			}
		}
		out = append(out, ld)
	}
	return out
}

// only returns the one resource and record of ld.
func only(t *testing.T, ld plog.Logs) (pcommon.Resource, plog.LogRecord) {
	t.Helper()
	if ld.LogRecordCount() != 1 {
		t.Fatalf("%d records, want 1", ld.LogRecordCount())
	}
	rl := ld.ResourceLogs().At(0)
	return rl.Resource(), rl.ScopeLogs().At(0).LogRecords().At(0)
}
