// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package k8seventsexporter // import "github.com/oomsight/oomsight/exporter/k8seventsexporter"

import (
	"hash/fnv"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/oomsight/oomsight/internal/oomrecord"
	"github.com/oomsight/oomsight/internal/printable"
)

// What the exporter reads from a record: the receiver's EventName and
// attribute keys, and the resource attributes k8s_attributes sets.
const (
	oomEventName   = "linux.oom_kill"
	podUIDKey      = "k8s.pod.uid"
	podNameKey     = "k8s.pod.name"
	namespaceKey   = "k8s.namespace.name"
	containerKey   = "k8s.container.name"
	nodeNameKey    = "k8s.node.name"
	containerIDKey = "container.id"
	countedKey     = oomrecord.CountedKillsKey
	survivedKey    = oomrecord.ContainerSurvivedKey
	noteByteLimit  = 1024 // the API server's limit on note/message (events.go, NoteLengthLimit)
)

// The Event's fixed words.
const (
	// Reason is the Events' reason. Not the kubelet's container status
	// OOMKilled, its node Event SystemOOM or node-problem-detector's
	// OOMKilling, so that `kubectl get events` tells the sources apart;
	// it starts with OOMKill so that one grep finds them all, and says
	// what this Event adds: the kernel's explanation of the kill.
	Reason = "OOMKillExplained"
	// ActionKilled is the action when the killed process was the
	// container's main process or it is not known to have survived.
	ActionKilled = "Killed"
	// ActionKilledWorker is the action when the container kept running
	// (linux.oom.container.survived): a worker was killed, so Kubernetes
	// shows no OOMKilled and no restart, and this Event is the only trace.
	ActionKilledWorker = "KilledWorker"
)

// Drop reasons, the values of otelcol_k8s_events_records_dropped's reason.
const (
	dropNotOOMKill = "not_oom_kill"
	dropNoPod      = "no_pod"
	dropRefused    = "refused"
)

// kill is one OOM record as the Event needs it: the pure result of
// mapping, before the series cache decides between create and patch.
type kill struct {
	namespace, podName string
	podUID             types.UID
	container          string // k8s.container.name; "" when unknown
	action             string
	note               string
	at                 time.Time // the kill's time (record timestamp)
	instance           string    // reportingInstance
	n                  int32     // kills this record stands for (counter-based records: more than 1)
	// lookup: the record has the pod's uid (the receiver reads it from
	// the cgroup path) but not its name or namespace, because
	// k8s_attributes had not seen the pod yet (one killed seconds after
	// it started, or while the processor's watch was re-established
	// after an API server outage); the exporter looks the pod up on
	// node (lookup.go).
	lookup      bool
	node        string // k8s.node.name
	containerID string // container.id, to find the container's name
}

// key is what repeated kills aggregate on: one Event per pod, container
// and action (reason and action are immutable on an Event).
func (k kill) key() string {
	return string(k.podUID) + "/" + k.container + "/" + k.action
}

// mapping holds what the Event takes from the configuration.
type mapping struct {
	controller string // reporting_controller
	instance   string // reporting_instance; "" = the record's node, else host
	host       string // the host name, the last resort for the instance
	cmdline    bool   // include_command_line: the note keeps the command line
}

// toKill maps one record to a kill, or says why it is dropped (one of the
// drop reasons): only linux.oom_kill records that name a pod (uid from
// the cgroup path, name and namespace from k8s_attributes) become Events.
func (m mapping) toKill(res pcommon.Resource, lr plog.LogRecord, now time.Time) (kill, string) {
	if lr.EventName() != oomEventName {
		return kill{}, dropNotOOMKill
	}
	attrs := res.Attributes()
	k := kill{
		namespace: str(attrs, namespaceKey),
		podName:   str(attrs, podNameKey),
		podUID:    types.UID(str(attrs, podUIDKey)),
		container: str(attrs, containerKey),
		action:    ActionKilled,
		note:      noteOf(m.note(lr)),
		n:         1,
	}
	if k.podUID == "" {
		return kill{}, dropNoPod
	}
	k.node, k.containerID = str(attrs, nodeNameKey), str(attrs, containerIDKey)
	k.lookup = k.namespace == "" || k.podName == ""
	if v, ok := lr.Attributes().Get(survivedKey); ok && v.Type() == pcommon.ValueTypeBool && v.Bool() {
		k.action = ActionKilledWorker
	}
	if v, ok := lr.Attributes().Get(countedKey); ok && v.Type() == pcommon.ValueTypeInt && v.Int() > 1 {
		k.n = clampCount(v.Int())
	}
	switch {
	case lr.Timestamp() != 0:
		k.at = lr.Timestamp().AsTime()
	case lr.ObservedTimestamp() != 0:
		k.at = lr.ObservedTimestamp().AsTime()
	default:
		k.at = now
	}
	k.instance = m.instance
	if k.instance == "" {
		k.instance = str(attrs, nodeNameKey)
	}
	if k.instance == "" {
		k.instance = m.host
	}
	k.instance = truncate(k.instance, reportingInstanceLimit)
	return k, ""
}

// event is the events.k8s.io/v1 Event that first tells of k: a Warning
// on the Pod (by uid, name and namespace; the container in fieldPath),
// at the kill's time, with the record's sentence as note. n > 1 (a
// counter-based record of several kills) starts with a series.
func (m mapping) event(k kill) *eventsv1.Event {
	ev := &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: eventName(k), Namespace: k.namespace},
		EventTime:  metav1.NewMicroTime(k.at),
		Regarding: corev1.ObjectReference{
			Kind:       "Pod",
			APIVersion: "v1",
			Namespace:  k.namespace,
			Name:       k.podName,
			UID:        k.podUID,
		},
		Type:                corev1.EventTypeWarning,
		Reason:              Reason,
		Action:              k.action,
		Note:                k.note,
		ReportingController: m.controller,
		ReportingInstance:   k.instance,
	}
	if k.container != "" {
		ev.Regarding.FieldPath = "spec.containers{" + k.container + "}"
	}
	if k.n > 1 {
		ev.Series = &eventsv1.EventSeries{Count: k.n, LastObservedTime: metav1.NewMicroTime(k.at)}
	}
	return ev
}

// eventName is the pod's name, the kill time in hex nanoseconds (as
// client-go's recorders name Events) and a hash of the aggregation key,
// so that a create retried after a lost response meets its own Event
// (409) rather than making a second one, and two containers killed in the
// same nanosecond get two names. At most 253 bytes (a DNS subdomain).
func eventName(k kill) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(k.key()))
	suffix := "." + strconv.FormatInt(k.at.UnixNano(), 16) + "." + strconv.FormatUint(uint64(h.Sum32()), 16)
	prefix := k.podName
	if len(prefix)+len(suffix) > 253 {
		prefix = strings.TrimRight(prefix[:253-len(suffix)], ".-")
	}
	return prefix + suffix
}

// noteOf is the Event's note for a record's body: `kubectl describe` prints
// it to a terminal, so a name's control bytes are shown as escapes (the
// receiver's sentences are escaped already; a record that came another way,
// over OTLP, may not be), then cut to the API server's limit.
func noteOf(body string) string {
	return truncate(printable.Escape(body), noteByteLimit)
}

// truncate cuts s to at most limit bytes at a rune boundary, ending in
// "…" when cut, so that the API server does not refuse a long sentence.
func truncate(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	const ellipsis = "…"
	cut := limit - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

// clampCount keeps a kill count within the series' int32 (far above any
// real count: a cgroup's counter read between two collections).
func clampCount(n int64) int32 {
	const most = 1 << 30
	if n > most {
		return most
	}
	return int32(n) // #nosec G115 -- 1 < n <= 1<<30
}

func str(m pcommon.Map, key string) string {
	if v, ok := m.Get(key); ok && v.Type() == pcommon.ValueTypeStr {
		return v.Str()
	}
	return ""
}
