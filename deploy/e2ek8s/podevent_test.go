// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package e2ek8s

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"

	"github.com/oomsight/oomsight/deploy/kubecluster"
	"github.com/oomsight/oomsight/internal/oomreport"
)

// The pod-event proof's workload: the eater of workloadManifest in a
// Deployment of its own, so that its Events count only this proof's kills.
var podEventManifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: pevent
  namespace: {{ns}}
spec:
  replicas: 1
  selector:
    matchLabels: {app: pevent}
  template:
    metadata:
      labels: {app: pevent}
    spec:
      nodeSelector: {{nodeSelector}}
      terminationGracePeriodSeconds: 1
      containers:
        - name: eater
          image: ` + kubecluster.WorkloadImage + `
          imagePullPolicy: IfNotPresent
          command: ["/workload", "eat", "/trigger", "200"]
          resources:
            requests: {cpu: 10m, memory: 32Mi}
            limits: {memory: 64Mi}
          volumeMounts: [{name: trigger, mountPath: /trigger}]
        - name: sidecar
          image: ` + kubecluster.WorkloadImage + `
          imagePullPolicy: IfNotPresent
          command: ["/workload", "sleep"]
          resources:
            requests: {cpu: 10m, memory: 16Mi}
          volumeMounts: [{name: trigger, mountPath: /trigger}]
      volumes:
        - name: trigger
          emptyDir: {}
`

// The Event the k8s_oom_events exporter writes (exporter/k8seventsexporter).
const (
	eventReason     = "OOMKillExplained"
	eventController = "oomsight"
	apiDownFor      = 30 * time.Second
)

// podEvent: the agent's k8s_oom_events exporter writes a kill as one Warning
// Event on the pod (kubectl describe pod shows the record's sentence),
// three kills of the container as one Event of count 3, and a kill while
// the API server is stopped appears once it is back.
func (e *env) podEvent(ctx context.Context, n *node) (string, error) {
	if _, err := n.apply(ctx, "pevent", podEventManifest); err != nil {
		return "", err
	}
	if _, err := e.kubectl(ctx, "-n", n.ns, "rollout", "status", "deployment/pevent", "--timeout=180s"); err != nil {
		return "", err
	}
	var pods corev1.PodList
	if err := e.getJSON(ctx, &pods, "pods", "-n", n.ns, "-l", "app=pevent"); err != nil {
		return "", err
	}
	if len(pods.Items) != 1 {
		return "", fmt.Errorf("%d pevent pods", len(pods.Items))
	}
	pod := pods.Items[0]
	uid := string(pod.UID)
	var eaterID string
	for i := range pod.Status.ContainerStatuses {
		cs := &pod.Status.ContainerStatuses[i]
		if cs.Name == "eater" {
			eaterID = trimRuntime(cs.ContainerID)
		}
	}
	// The agent knows the container's name before the kill (k8s_attributes).
	if err := waitFor(ctx, 90*time.Second, "the pevent eater's metrics with names", func() error {
		for _, s := range metricSeries(e.srv) {
			if s.attrs["container.id"] == eaterID && s.attrs["k8s.container.name"] == "eater" && s.attrs["k8s.pod.name"] == pod.Name {
				return nil
			}
		}
		return errNotYet
	}); err != nil {
		return "", err
	}
	// The emptyDir on the node: a kill can be asked for with the API down.
	trigger := emptyDir(uid, "trigger")
	byPod := func(r record) bool { return r.res["k8s.pod.uid"] == uid }

	// One kill: exactly one Event, with the record's sentence.
	if err := n.askKill(ctx, trigger); err != nil {
		return "", err
	}
	killed, err := e.waitOOMKilled(ctx, n, pod.Name, 1)
	if err != nil {
		return "", err
	}
	// The proof on the second node follows the first's API server outage:
	// the agent's clients may still be in their back-off (2 min).
	if _, waitPodEventErr := e.waitPodEvent(ctx, n, uid, 1, 120*time.Second); waitPodEventErr != nil {
		recs := oomRecords(e.srv, byPod)
		return "", fmt.Errorf("%w; the pod's OOM records at the test's server: %d, their resources %v", waitPodEventErr, len(recs), resources(recs))
	}
	time.Sleep(15 * time.Second) // three batches: a second Event would have come
	ev, err := e.waitPodEvent(ctx, n, uid, 1, 0)
	if err != nil {
		return "", err
	}
	recs := oomRecords(e.srv, func(r record) bool { return r.res["container.id"] == killed })
	if len(recs) != 1 {
		return "", fmt.Errorf("%d OOM records for the killed container %s, want 1", len(recs), short(killed))
	}
	if checkEventErr := checkEvent(ev, n, pod, recs[0]); checkEventErr != nil {
		return "", checkEventErr
	}
	describe, err := e.kubectl(ctx, "-n", n.ns, "describe", "pod", pod.Name)
	if err != nil {
		return "", err
	}
	if want := "spec.containers{eater}: " + ev.Message; !strings.Contains(describe, want) || !strings.Contains(describe, eventReason) {
		return "", fmt.Errorf("kubectl describe pod does not show %q:\n%s", want, eventsSection(describe))
	}

	// A second kill counts in the same Event.
	if askKillErr := n.askKill(ctx, trigger); askKillErr != nil {
		return "", askKillErr
	}
	if _, waitOOMKilledErr := e.waitOOMKilled(ctx, n, pod.Name, 2); waitOOMKilledErr != nil {
		return "", waitOOMKilledErr
	}
	if _, waitPodEventErr := e.waitPodEvent(ctx, n, uid, 2, 60*time.Second); waitPodEventErr != nil {
		return "", waitPodEventErr
	}

	// The third kill while the API server is stopped: the record goes on
	// to the OTLP server, the Event is written once the API is back.
	before := len(oomRecords(e.srv, byPod))
	if stopAPIServerErr := e.c.StopAPIServer(); stopAPIServerErr != nil {
		return "", stopAPIServerErr
	}
	stopped := time.Now()
	restart := func() error {
		if startAPIServerErr := e.c.StartAPIServer(ctx); startAPIServerErr != nil {
			return fmt.Errorf("kube-apiserver did not come back: %w", startAPIServerErr)
		}
		return nil
	}
	if askKillErr := n.askKill(ctx, trigger); askKillErr != nil {
		return "", errors.Join(askKillErr, restart())
	}
	if waitForErr := waitFor(ctx, 60*time.Second, "the third kill's record with the API server stopped", func() error {
		if len(oomRecords(e.srv, byPod)) <= before {
			return errNotYet
		}
		return nil
	}); waitForErr != nil {
		return "", errors.Join(waitForErr, restart())
	}
	recordAfter := time.Since(stopped)
	time.Sleep(time.Until(stopped.Add(apiDownFor)))
	if out, kubectlErr := e.kubectl(ctx, "--request-timeout=3s", "get", "--raw", "/readyz"); kubectlErr == nil {
		return "", errors.Join(fmt.Errorf("the API server answered while stopped: %s", out), restart())
	}
	if restartErr := restart(); restartErr != nil {
		return "", restartErr
	}
	down, back := time.Since(stopped), time.Now()
	_, err = e.waitPodEvent(ctx, n, uid, 3, 150*time.Second)
	if err != nil {
		return "", err
	}
	eventAfter := time.Since(back)
	// The kill during the outage: on the VM's node the kubelet was seen to
	// come back with restartCount 3 and no lastState at all (the exited
	// container no longer known to it), or with Error and exit code 137
	// (node.killReason), so both pass here and are said in the line; any
	// other lastState does not.
	lastState, waitErr := e.waitRestarted(ctx, n, pod.Name, 3)
	if waitErr != nil {
		return "", waitErr
	}
	time.Sleep(15 * time.Second)
	if ev, err = e.waitPodEvent(ctx, n, uid, 3, 0); err != nil {
		return "", err
	}
	if n := len(oomRecords(e.srv, byPod)); n != 3 {
		return "", fmt.Errorf("%d OOM records for pod %s after three kills, want 3", n, pod.Name)
	}
	table, err := e.kubectl(ctx, "-n", n.ns, "get", "events", "--field-selector", "involvedObject.uid="+uid, "-o", "wide")
	if err != nil {
		return "", err
	}
	fmt.Printf("k8s: kubectl get events --field-selector involvedObject.uid=%s -o wide:\n%s\n", uid, indent(table))
	if !strings.Contains(table, eventReason) {
		return "", fmt.Errorf("kubectl get events does not list %s:\n%s", eventReason, table)
	}
	if describe, err = e.kubectl(ctx, "-n", n.ns, "describe", "pod", pod.Name); err != nil {
		return "", err
	}
	excerpt := eventsSection(describe)
	fmt.Printf("k8s: kubectl describe pod %s (Events):\n%s\n", pod.Name, indent(excerpt))
	if !strings.Contains(excerpt, "(x3 over") || !strings.Contains(excerpt, "spec.containers{eater}: "+ev.Message) {
		return "", fmt.Errorf("kubectl describe pod: no oomsight Event x3 with the sentence:\n%s", excerpt)
	}
	if _, err := e.kubectl(ctx, "-n", n.ns, "delete", "deployment", "pevent", "--wait=true", "--timeout=60s"); err != nil {
		return "", err
	}
	return fmt.Sprintf("pod %s (the kubelet's lastState after the outage: %s): 1 kill -> exactly 1 Event (Warning %s from %s on %s, regarding the pod by uid, name, namespace, fieldPath spec.containers{eater}, eventTime = the record's kill time, message = the record's sentence, shown by kubectl describe pod); 3 kills -> still 1 Event, series.count 3 (kubectl describe: x3); kube-apiserver stopped %.0f s during the 3rd kill: its record reached the OTLP server %.0f s after the stop, the Event's count 3 %.0f s after the API server was back; message: %q",
		pod.Name, lastState, eventReason, eventController, ev.ReportingInstance, down.Seconds(), recordAfter.Seconds(), eventAfter.Seconds(), ev.Message), nil
}

// askKill asks the eater for one more kill through the emptyDir on the
// host (what `workload kill` does inside the pod), so no API call is
// needed.
func askKill(dir string) error {
	f := filepath.Join(dir, "kills")
	n := 0
	b, err := os.ReadFile(f)
	switch {
	case err == nil:
		if n, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("the eater's trigger: %w", err)
	}
	if err := os.WriteFile(f, []byte(strconv.Itoa(n+1)), 0o644); err != nil { //nolint:gosec // the pod's own emptyDir, read by its non-root process
		return fmt.Errorf("the eater's trigger: %w", err)
	}
	return nil
}

// waitOOMKilled waits until the kubelet reports the pod's eater killed
// (node.killReason) with restartCount want and running again; it returns
// the killed instance's container id.
func (e *env) waitOOMKilled(ctx context.Context, n *node, podName string, want int32) (string, error) {
	const container = "eater"
	var killed string
	err := waitFor(ctx, 150*time.Second, fmt.Sprintf("the kubelet's OOMKilled #%d", want), func() error {
		cs, err := e.containerStatus(ctx, n, podName, container)
		if err != nil {
			return err
		}
		term := cs.LastTerminationState.Terminated
		if cs.RestartCount != want || term == nil || cs.State.Running == nil {
			return fmt.Errorf("%s: restarts %d, last state %+v, state %+v", container, cs.RestartCount, cs.LastTerminationState, cs.State)
		}
		if _, reasonErr := n.killReason(term); reasonErr != nil {
			return fmt.Errorf("%s's %w", container, reasonErr)
		}
		killed = trimRuntime(term.ContainerID)
		return nil
	})
	return killed, err
}

// waitRestarted waits until the kubelet reports the pod's eater running
// with restartCount want, its lastState a kill (node.killReason) or none;
// it returns which ("none" or the kill's reason).
func (e *env) waitRestarted(ctx context.Context, n *node, podName string, want int32) (string, error) {
	var last string
	err := waitFor(ctx, 150*time.Second, fmt.Sprintf("the kubelet's restart #%d", want), func() error {
		cs, err := e.containerStatus(ctx, n, podName, "eater")
		if err != nil {
			return err
		}
		term := cs.LastTerminationState.Terminated
		switch {
		case cs.RestartCount != want || cs.State.Running == nil:
			return fmt.Errorf("eater: restarts %d, state %+v", cs.RestartCount, cs.State)
		case term == nil:
			last = "none"
		default:
			var reasonErr error
			if last, reasonErr = n.killReason(term); reasonErr != nil {
				return fmt.Errorf("eater's %w", reasonErr)
			}
		}
		return nil
	})
	return last, err
}

// containerStatus returns the kubelet's status of a pod's container.
func (e *env) containerStatus(ctx context.Context, n *node, podName, container string) (corev1.ContainerStatus, error) {
	var p corev1.Pod
	if err := e.getJSON(ctx, &p, "pod", "-n", n.ns, podName); err != nil {
		return corev1.ContainerStatus{}, err
	}
	for i := range p.Status.ContainerStatuses {
		if cs := p.Status.ContainerStatuses[i]; cs.Name == container {
			return cs, nil
		}
	}
	return corev1.ContainerStatus{}, fmt.Errorf("no %s container in %s", container, podName)
}

// waitPodEvent waits (timeout 0: checks once) until the pod has exactly
// one Event from oomsight, counting want kills, as `kubectl get events
// --field-selector involvedObject.uid=` lists them (core/v1).
func (e *env) waitPodEvent(ctx context.Context, n *node, uid string, want int32, timeout time.Duration) (corev1.Event, error) {
	var ev corev1.Event
	err := waitFor(ctx, timeout, fmt.Sprintf("one oomsight Event of count %d on pod %s", want, uid), func() error {
		var list corev1.EventList
		if err := e.getJSON(ctx, &list, "events", "-n", n.ns, "--field-selector", "involvedObject.uid="+uid); err != nil {
			return err
		}
		var ours []corev1.Event
		for i := range list.Items {
			x := &list.Items[i]
			if x.ReportingController == eventController {
				ours = append(ours, *x)
			}
		}
		if len(ours) != 1 {
			return fmt.Errorf("%d oomsight Events on the pod (of %d)", len(ours), len(list.Items))
		}
		ev = ours[0]
		if got := eventCount(ev); got != want {
			return fmt.Errorf("Event %s counts %d kills, want %d", ev.Name, got, want)
		}
		return nil
	})
	return ev, err
}

// eventCount is the count kubectl shows: the series' (events.k8s.io), else
// the legacy count, else 1.
func eventCount(ev corev1.Event) int32 {
	switch {
	case ev.Series != nil:
		return ev.Series.Count
	case ev.Count > 0:
		return ev.Count
	}
	return 1
}

// checkEvent compares the first kill's Event with its OOM record.
func checkEvent(ev corev1.Event, n *node, pod corev1.Pod, r record) error {
	io := ev.InvolvedObject
	kill := r.ts.AsTime().Truncate(time.Microsecond)
	checks := []struct {
		what      string
		got, want any
	}{
		{"type", ev.Type, corev1.EventTypeWarning},
		{"reason", ev.Reason, eventReason},
		{"action", ev.Action, "Killed"},
		{"involvedObject.kind", io.Kind, "Pod"},
		{"involvedObject.name", io.Name, pod.Name},
		{"involvedObject.namespace", io.Namespace, n.ns},
		{"involvedObject.uid", string(io.UID), string(pod.UID)},
		{"involvedObject.fieldPath", io.FieldPath, "spec.containers{eater}"},
		{"reportingInstance", ev.ReportingInstance, n.Name},
		{"message", ev.Message, noteOf(r)},
		{"eventTime", ev.EventTime.Time.UTC().Format(time.RFC3339Nano), kill.UTC().Format(time.RFC3339Nano)},
	}
	for _, c := range checks {
		if c.got != c.want {
			return fmt.Errorf("Event %s: %s = %v, want %v", ev.Name, c.what, c.got, c.want)
		}
	}
	return nil
}

// noteOf is the record's sentence as the Event carries it: without the
// victim's command line (k8s_oom_events' include_command_line is off), whole,
// or cut at a rune boundary to the API server's 1024 bytes with "…".
func noteOf(r record) string {
	body, _ := oomreport.WithoutVictimCmdline(r.body, r.str("linux.oom.victim.cmdline"))
	const limit, ellipsis = 1024, "…"
	if len(body) <= limit {
		return body
	}
	cut := limit - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(body[cut]) {
		cut--
	}
	return body[:cut] + ellipsis
}

// eventsSection returns the Events part of kubectl describe's output.
func eventsSection(describe string) string {
	if i := strings.Index(describe, "\nEvents:"); i >= 0 {
		return strings.TrimRight(describe[i+1:], "\n")
	}
	return describe
}

// indent prefixes each line with "k8s:   ", so that make e2e-k8s's
// filtered output keeps the kubectl excerpts.
func indent(s string) string {
	return "k8s:   " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\nk8s:   ")
}
