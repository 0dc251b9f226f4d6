// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package k8seventsexporter

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
)

var killAt = time.Date(2026, 12, 4, 21, 50, 1, 123456789, time.UTC)

var eater = k8sNames{pod: "eater-7d9f8b6c5-x2x4q", namespace: "shop", container: "eater", node: "node-a"}

func TestEventFromCapturedRecords(t *testing.T) {
	m := mapping{controller: defaultController, host: "agent-pod"}
	tests := []struct {
		name      string
		file      string
		names     k8sNames
		uid       string
		fieldPath string
		instance  string
	}{
		{
			"v1 container limit, cgroupfs", "../../testdata/oom/v1-container-limit.kmsg", eater,
			"0f5eb28f-6722-4cf5-ab0f-b62748c018d4", "spec.containers{eater}", "node-a",
		},
		{
			"v2 pod limit, systemd driver", "../../testdata/v2/oom/pod-limit.kmsg", eater,
			"dfc377c9-c533-4d51-af9e-6e0e0b3db83b", "spec.containers{eater}", "node-a",
		},
		{
			"v2 global OOM of a pod's container, no container name", "../../testdata/v2/oom/global.kmsg",
			k8sNames{pod: "batch-0", namespace: "jobs", node: "node-b"},
			"1e5a2372-c249-42ab-bd18-38bff4980869", "", "node-b",
		},
		{
			"no node name: the host's", "../../testdata/oom/v1-container-limit.kmsg",
			k8sNames{pod: "p", namespace: "ns", container: "c"},
			"0f5eb28f-6722-4cf5-ab0f-b62748c018d4", "spec.containers{c}", "agent-pod",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, lr := only(t, capturedRecords(t, tt.file, tt.names, killAt)[0])
			k, drop := m.toKill(res, lr, time.Now())
			require.Empty(t, drop)
			ev := m.event(k)
			assert.Equal(t, tt.names.namespace, ev.Namespace)
			assert.Equal(t, corev1.ObjectReference{
				Kind: "Pod", APIVersion: "v1", Namespace: tt.names.namespace, Name: tt.names.pod,
				UID: types.UID(tt.uid), FieldPath: tt.fieldPath,
			}, ev.Regarding)
			assert.Equal(t, corev1.EventTypeWarning, ev.Type)
			assert.Equal(t, "OOMKillExplained", ev.Reason)
			assert.Equal(t, ActionKilled, ev.Action)
			assert.Equal(t, lr.Body().Str(), ev.Note, "the record's sentence, whole (short)")
			assert.Contains(t, ev.Note, "was OOM-killed")
			assert.Equal(t, "oomsight", ev.ReportingController)
			assert.Equal(t, tt.instance, ev.ReportingInstance)
			assert.True(t, ev.EventTime.Time.Equal(lr.Timestamp().AsTime()), "event time %v = kill time %v", ev.EventTime, lr.Timestamp().AsTime())
			assert.Nil(t, ev.Series, "one kill: no series")
			assert.Empty(t, validation.IsDNS1123Subdomain(ev.Name), ev.Name)
			assert.True(t, strings.HasPrefix(ev.Name, tt.names.pod+"."), ev.Name)
		})
	}
}

// The dmesg --time-format=iso capture carries the wall clock: the Event's
// time is the kernel's time of the kill line, not the time it was read.
func TestEventTimeIsKillTime(t *testing.T) {
	recs := capturedRecords(t, "../../testdata/oom/v1-formats.dmesg-iso", eater, time.Time{})
	res, lr := only(t, recs[0])
	require.NotZero(t, lr.Timestamp(), "the capture has wall-clock times")
	k, drop := mapping{controller: "oomsight"}.toKill(res, lr, time.Now())
	require.Empty(t, drop)
	assert.Equal(t, lr.Timestamp().AsTime(), k.at)
	assert.NotEqual(t, lr.ObservedTimestamp().AsTime(), k.at)
}

func TestRecordsWithoutAPod(t *testing.T) {
	m := mapping{controller: defaultController, host: "h"}
	// A pod's uid from the cgroup path but no names: k8s_attributes did
	// not know the pod (or is not in the pipeline): to be looked up on
	// the record's node.
	res, lr := only(t, capturedRecords(t, "../../testdata/oom/v1-container-limit.kmsg", k8sNames{node: "n"}, killAt)[0])
	k, drop := m.toKill(res, lr, time.Now())
	assert.Empty(t, drop)
	assert.True(t, k.lookup)
	assert.Equal(t, "n", k.node)
	assert.Equal(t, types.UID("0f5eb28f-6722-4cf5-ab0f-b62748c018d4"), k.podUID)
	assert.NotEmpty(t, k.containerID)

	// A cgroup that is no pod's (a podman or systemd service cgroup): no
	// k8s.pod.uid, whatever else the resource says.
	res, lr = only(t, capturedRecords(t, "../../testdata/oom/v1-tmpfs.kmsg", eater, killAt)[0])
	res.Attributes().Remove(podUIDKey)
	_, drop = m.toKill(res, lr, time.Now())
	assert.Equal(t, dropNoPod, drop)

	// Not an OOM kill record.
	res, lr = only(t, capturedRecords(t, "../../testdata/oom/v1-container-limit.kmsg", eater, killAt)[0])
	lr.SetEventName("something.else")
	_, drop = m.toKill(res, lr, time.Now())
	assert.Equal(t, dropNotOOMKill, drop)
}

// linux.oom.container.survived (the container kept running: a worker was
// killed) makes the action KilledWorker, and a separate Event from the
// container's own kills (action is immutable on an Event).
func TestSurvivedWorker(t *testing.T) {
	m := mapping{controller: defaultController}
	for _, tt := range []struct {
		name   string
		set    func(res map[string]any)
		action string
	}{
		{"survived", func(a map[string]any) { a[survivedKey] = true }, ActionKilledWorker},
		{"not survived", func(a map[string]any) { a[survivedKey] = false }, ActionKilled},
		{"not told", func(map[string]any) {}, ActionKilled},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, lr := only(t, capturedRecords(t, "../../testdata/v2/oom/container-limit.kmsg", eater, killAt)[0])
			attrs := map[string]any{}
			tt.set(attrs)
			for k, v := range attrs {
				lr.Attributes().PutBool(k, v.(bool))
			}
			k, drop := m.toKill(res, lr, time.Now())
			require.Empty(t, drop)
			assert.Equal(t, tt.action, m.event(k).Action)
		})
	}
	res, lr := only(t, capturedRecords(t, "../../testdata/v2/oom/container-limit.kmsg", eater, killAt)[0])
	killed, _ := m.toKill(res, lr, time.Now())
	lr.Attributes().PutBool(survivedKey, true)
	worker, _ := m.toKill(res, lr, time.Now())
	assert.NotEqual(t, killed.key(), worker.key())
	assert.NotEqual(t, eventName(killed), eventName(worker))
}

// A counter-based record of several kills starts its Event with a series.
func TestCountedKills(t *testing.T) {
	m := mapping{controller: defaultController, instance: "configured"}
	res, lr := only(t, capturedRecords(t, "../../testdata/v2/oom/container-limit.kmsg", eater, killAt)[0])
	lr.Attributes().PutInt(countedKey, 3)
	k, drop := m.toKill(res, lr, time.Now())
	require.Empty(t, drop)
	ev := m.event(k)
	require.NotNil(t, ev.Series)
	assert.EqualValues(t, 3, ev.Series.Count)
	assert.True(t, ev.Series.LastObservedTime.Time.Equal(killAt))
	assert.Equal(t, "configured", ev.ReportingInstance, "reporting_instance wins over k8s.node.name")
}

// The API server refuses a note over 1024 bytes (NoteLengthLimit in
// k8s.io/kubernetes pkg/apis/core/validation/events.go).
func TestLongSentenceTruncated(t *testing.T) {
	m := mapping{controller: defaultController}
	res, lr := only(t, capturedRecords(t, "../../testdata/v2/oom/oom-group.kmsg", eater, killAt)[0])
	sentence := lr.Body().Str()
	long := sentence + strings.Repeat(" Ünïcödé — climb;", 80)
	lr.Body().SetStr(long)
	k, _ := m.toKill(res, lr, time.Now())
	note := m.event(k).Note
	assert.LessOrEqual(t, len(note), 1024)
	assert.Greater(t, len(note), 1000)
	assert.True(t, utf8.ValidString(note))
	assert.True(t, strings.HasPrefix(note, sentence))
	assert.True(t, strings.HasSuffix(note, "…"))
	assert.Equal(t, sentence, truncate(sentence, 1024), "short sentences are kept whole")
}

func TestEventNameBounded(t *testing.T) {
	k := kill{podName: strings.Repeat("a", 250) + "-b", podUID: "u", at: killAt, action: ActionKilled}
	name := eventName(k)
	assert.LessOrEqual(t, len(name), 253)
	assert.Empty(t, validation.IsDNS1123Subdomain(name), name)
	k2 := k
	k2.container = "other"
	assert.NotEqual(t, name, eventName(k2), "two containers killed at the same time: two names")
	k3 := k
	k3.at = killAt.Add(time.Microsecond)
	assert.NotEqual(t, name, eventName(k3))
}

// TestNoteEscapesNames: `kubectl describe pod` prints the note to a
// terminal. The records of processes that named themselves with terminal
// escapes (the real capture) give notes with the names escaped, and a
// record whose body carries raw control bytes (one that reached the
// gateway over OTLP) is escaped here too.
func TestNoteEscapesNames(t *testing.T) {
	m := mapping{controller: defaultController}
	danger := "[\x00-\x1f\x7f\u0080-\u009f\u202a-\u202e\u2066-\u2069]"
	var notes []string
	for _, ld := range capturedRecords(t, "../../testdata/oom/v1-hostile-names.kmsg", eater, killAt) {
		res, lr := only(t, ld)
		k, drop := m.toKill(res, lr, time.Now())
		require.Empty(t, drop)
		notes = append(notes, m.event(k).Note)
	}
	require.Len(t, notes, 7)
	assert.Contains(t, notes[0], `Process m\x0aevil (pid 24140)`)
	assert.Contains(t, notes[1], `Process m\x1b[2J (pid 24227)`)
	assert.Contains(t, notes[2], `Process \x1b]0;owned\x07 (pid 24294)`)

	res, lr := only(t, capturedRecords(t, "../../testdata/oom/v1-container-limit.kmsg", eater, killAt)[0])
	lr.Body().SetStr("Process \x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ \u202eevil\x9b was OOM-killed.")
	k, _ := m.toKill(res, lr, time.Now())
	notes = append(notes, m.event(k).Note)
	assert.Equal(t, `Process \x1b]8;;http://x\x1b\link\x1b]8;;\x1b\ \u202eevil\x9b was OOM-killed.`, notes[len(notes)-1])
	for _, n := range notes {
		assert.NotRegexp(t, danger, n)
		assert.True(t, utf8.ValidString(n))
	}
}
