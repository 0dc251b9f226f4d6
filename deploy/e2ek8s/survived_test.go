// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package e2ek8s

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
	corev1 "k8s.io/api/core/v1"

	"github.com/oomsight/oomsight/deploy/kubecluster"
)

const (
	survivedKey      = "linux.oom.container.survived"
	survivedMetric   = "cgroup.memory.oom_kill.survived"
	survivedSentence = "The container kept running — a worker was killed, not its main process — so Kubernetes shows no OOMKilled and no restart."
	survivedAlert    = "ContainerOOMKillSurvived"
)

// survivorManifest is the survived proof's workload: one Burstable
// container limited to 64 MiB whose main process (PID 1 of the container,
// workload fork) runs each eater as a child: the kernel kills the child
// and the container runs on, which the kubelet never sees.
var survivorManifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: survivor
  namespace: {{ns}}
spec:
  replicas: 1
  selector:
    matchLabels: {app: survivor}
  template:
    metadata:
      labels: {app: survivor}
    spec:
      nodeSelector: {{nodeSelector}}
      terminationGracePeriodSeconds: 1
      containers:
        - name: survivor
          image: ` + kubecluster.WorkloadImage + `
          imagePullPolicy: IfNotPresent
          command: ["/workload", "fork", "/trigger", "200"]
          resources:
            requests: {cpu: 10m, memory: 32Mi}
            limits: {memory: 64Mi}
          volumeMounts: [{name: trigger, mountPath: /trigger}]
      volumes:
        - name: trigger
          emptyDir: {}
`

// survived: a worker OOM-killed in a container whose main process keeps
// running: the kubelet shows no OOMKilled and restartCount 0, while the
// record (linux.oom.container.survived true, the sentence), the metric
// (cgroup.memory.oom_kill.survived 1, with the pod's names) and the
// ContainerOOMKillSurvived alert, evaluated by Debian's Prometheus on the
// shipped rules, say the container survived. The converse: the eater of
// the oomkilled proof, whose PID 1 was the victim (kubelet: OOMKilled),
// has survived false, no survived metric and no such alert.
func (e *env) survived(ctx context.Context, n *node) (string, error) {
	if _, err := n.apply(ctx, "survivor", survivorManifest); err != nil {
		return "", err
	}
	if _, err := e.kubectl(ctx, "-n", n.ns, "rollout", "status", "deployment/survivor", "--timeout=180s"); err != nil {
		return "", err
	}
	pod, id, err := e.survivorPod(ctx, n)
	if err != nil {
		return "", err
	}
	path := n.containerPath(string(pod.UID), id)
	if n.v2() {
		return e.groupKilled(ctx, n, pod, id, path)
	}
	if _, kubectlErr := e.kubectl(ctx, "-n", n.ns, "exec", pod.Name, "-c", "survivor", "--", "/workload", "kill", "/trigger"); kubectlErr != nil {
		return "", kubectlErr
	}
	byPath := func(r record) bool { return r.res["cgroup.path"] == path }
	if waitForErr := waitFor(ctx, 60*time.Second, "the survivor's OOM record", func() error {
		if len(oomRecords(e.srv, byPath)) == 0 {
			return errNotYet
		}
		return nil
	}); waitForErr != nil {
		return "", waitForErr
	}
	recs := oomRecords(e.srv, byPath)
	if len(recs) != 1 {
		return "", fmt.Errorf("%d OOM records for the survivor, want 1", len(recs))
	}
	r := recs[0]
	if v, ok := r.attrs.Get(survivedKey); !ok || !v.Bool() {
		return "", fmt.Errorf("survivor's record: %s = %v (present %v), want true; body: %s", survivedKey, v.AsRaw(), ok, r.body)
	}
	if !strings.Contains(r.body, survivedSentence) {
		return "", fmt.Errorf("survivor's record body lacks %q: %s", survivedSentence, r.body)
	}
	if r.res["k8s.pod.name"] != pod.Name || r.res["k8s.container.name"] != "survivor" {
		return "", fmt.Errorf("survivor's record resource %v: want pod %s, container survivor", r.res, pod.Name)
	}

	// The kubelet: the container runs, never restarted, no OOMKilled.
	var now corev1.Pod
	if getJSONErr := e.getJSON(ctx, &now, "pod", "-n", n.ns, pod.Name); getJSONErr != nil {
		return "", getJSONErr
	}
	cs := now.Status.ContainerStatuses
	if len(cs) != 1 || cs[0].RestartCount != 0 || cs[0].State.Running == nil || cs[0].LastTerminationState.Terminated != nil {
		return "", fmt.Errorf("the kubelet's view of the survivor: %+v; want running, restartCount 0, no last termination", cs)
	}

	// The metric, with the pod's names, through the gateway.
	var got pmetric.Metrics
	if waitForErr := waitFor(ctx, 60*time.Second, "cgroup.memory.oom_kill.survived of the survivor", func() error {
		var count int64
		got, count = survivedSeries(e.srv.Metrics.AllMetrics(), id)
		if count != 1 {
			return fmt.Errorf("%s = %d, want 1", survivedMetric, count)
		}
		return nil
	}); waitForErr != nil {
		return "", waitForErr
	}
	names := got.ResourceMetrics().At(0).Resource().Attributes().AsRaw()
	if names["k8s.pod.name"] != pod.Name || names["k8s.container.name"] != "survivor" || names["k8s.pod.uid"] != string(pod.UID) {
		return "", fmt.Errorf("%s resource %v: want the survivor's pod and container names", survivedMetric, names)
	}
	killed := n.firstID // the eater's container the kernel killed (PID 1)
	if _, count := survivedSeries(e.srv.Metrics.AllMetrics(), killed); count != 0 {
		return "", fmt.Errorf("%s of the OOMKilled eater %s = %d, want none", survivedMetric, short(killed), count)
	}
	eater := oomRecords(e.srv, func(r record) bool { return r.res["container.id"] == killed })
	if len(eater) != 1 {
		return "", fmt.Errorf("%d records of the OOMKilled eater", len(eater))
	}
	if v, ok := eater[0].attrs.Get(survivedKey); !ok || v.Bool() || strings.Contains(eater[0].body, "kept running") {
		return "", fmt.Errorf("the OOMKilled eater's record: %s = %v (present %v), want false and no sentence; body: %s", survivedKey, v.AsRaw(), ok, eater[0].body)
	}

	// The alert, on Debian's Prometheus with the shipped rules, scraping
	// the distribution's Prometheus exporter fed with what the gateway
	// delivered for the two containers.
	feed := latestFor(e.srv.Metrics.AllMetrics(), id, killed)
	fired, quiet, err := e.alertOn(ctx, feed, id, killed)
	if err != nil {
		return "", err
	}

	// The Event on the pod (k8s_oom_events): action KilledWorker and the
	// sentence; the eater's Events (PID 1 killed) all say Killed.
	if err := e.survivedEvents(ctx, n, pod, r, eater[0].res["k8s.pod.uid"]); err != nil {
		return "", err
	}
	return fmt.Sprintf("container survivor %s: worker killed, kubelet: running, restartCount 0, no OOMKilled; record %s=true with the sentence; %s=1 (pod %s); %s firing (%s); Event action %s with the sentence; converse: eater %s (PID 1 killed, OOMKilled): %s=false, no metric, no alert (%s), Events action Killed; body: %q",
		short(id), survivedKey, survivedMetric, pod.Name, survivedAlert, fired, survivedAction, short(killed), survivedKey, quiet, r.body), nil
}

// groupKilled is survived on cgroup v2, where the kubelet (1.28+, unless
// singleProcessOOMKill: true) sets memory.oom.group on every container's
// cgroup: the worker's kill takes the whole container, as users of v2
// nodes see it. The container's memory.oom.group is 1; the kubelet reports
// OOMKilled; every record of the container (the worker and its main
// process, at least two) says linux.oom.group_kill true and
// linux.oom.container.survived false, without the survived sentence; no
// cgroup.memory.oom_kill.survived is exported for it; its Event says
// Killed.
func (e *env) groupKilled(ctx context.Context, n *node, pod corev1.Pod, id, path string) (string, error) {
	group, readErr := n.readFile(ctx, n.cgroupFile(path, "memory.oom.group"))
	if readErr != nil {
		return "", readErr
	}
	if strings.TrimSpace(string(group)) != "1" {
		return "", fmt.Errorf("the survivor's %s/memory.oom.group is %q: the kubelet should set 1 on cgroup v2", path, strings.TrimSpace(string(group)))
	}
	if _, err := e.kubectl(ctx, "-n", n.ns, "exec", pod.Name, "-c", "survivor", "--", "/workload", "kill", "/trigger"); err != nil {
		return "", err
	}
	// The kubelet's reason: OOMKilled, or (seen in a CI run here, the
	// pod's limit hit as the records say) Error with exit code 137, the
	// SIGKILL without the runtime's OOM flag; what oomsight tells does not
	// depend on it, and the line says which it was.
	var reason string
	if err := waitFor(ctx, 150*time.Second, "the kubelet's restart of the survivor", func() error {
		cs, csErr := e.containerStatus(ctx, n, pod.Name, "survivor")
		if csErr != nil {
			return csErr
		}
		term := cs.LastTerminationState.Terminated
		if cs.RestartCount != 1 || term == nil || cs.State.Running == nil {
			return fmt.Errorf("survivor: restarts %d, last state %+v, state %+v", cs.RestartCount, cs.LastTerminationState, cs.State)
		}
		if term.Reason != "OOMKilled" && term.ExitCode != 137 {
			return fmt.Errorf("survivor's last termination: reason %q, exit code %d; want OOMKilled or a SIGKILL", term.Reason, term.ExitCode)
		}
		if killed := trimRuntime(term.ContainerID); killed != id {
			return fmt.Errorf("the kubelet's killed container %s is not the survivor's %s", short(killed), short(id))
		}
		reason = fmt.Sprintf("%s, exit code %d", term.Reason, term.ExitCode)
		return nil
	}); err != nil {
		return "", err
	}
	byPath := func(r record) bool { return r.res["cgroup.path"] == path }
	if err := waitFor(ctx, 60*time.Second, "the group kill's records", func() error {
		if len(oomRecords(e.srv, byPath)) < 2 {
			return errNotYet
		}
		return nil
	}); err != nil {
		return "", err
	}
	time.Sleep(15 * time.Second) // a late member's record would have come
	recs := oomRecords(e.srv, byPath)
	// Every record says the container did not survive; the group kill is
	// named on the record whose report the kernel printed whole (a CI run
	// here had the main process's record from a rate-limited report, its
	// kill line alone, without it).
	var pids []string
	groups := 0
	for _, r := range recs {
		g, gok := r.attrs.Get("linux.oom.group_kill")
		sv, sok := r.attrs.Get(survivedKey)
		if !sok || sv.Bool() || strings.Contains(r.body, "kept running") {
			return "", fmt.Errorf("record of pid %d: %s %v (present %v); want false; body: %s",
				r.int("process.pid"), survivedKey, sv.AsRaw(), sok, r.body)
		}
		if gok && g.Bool() {
			groups++
		}
		if r.res["k8s.pod.name"] != pod.Name || r.res["k8s.container.name"] != "survivor" {
			return "", fmt.Errorf("record resource %v: want pod %s, container survivor", r.res, pod.Name)
		}
		pids = append(pids, fmt.Sprint(r.int("process.pid")))
	}
	if groups == 0 {
		return "", fmt.Errorf("none of the %d records of the survivor says linux.oom.group_kill: %v", len(recs), resources(recs))
	}
	if _, count := survivedSeries(e.srv.Metrics.AllMetrics(), id); count != 0 {
		return "", fmt.Errorf("%s of the group-killed survivor = %d, want none", survivedMetric, count)
	}
	var ev corev1.Event
	if err := waitFor(ctx, 60*time.Second, "the survivor's Event", func() error {
		var list corev1.EventList
		if err := e.getJSON(ctx, &list, "events", "-n", n.ns, "--field-selector", "involvedObject.uid="+string(pod.UID)); err != nil {
			return err
		}
		var ours []corev1.Event
		for i := range list.Items {
			if list.Items[i].ReportingController == eventController {
				ours = append(ours, list.Items[i])
			}
		}
		if len(ours) != 1 {
			return fmt.Errorf("%d oomsight Events on the survivor's pod", len(ours))
		}
		ev = ours[0]
		return nil
	}); err != nil {
		return "", err
	}
	if ev.Action != "Killed" || strings.Contains(ev.Message, survivedSentence) {
		return "", fmt.Errorf("the survivor's Event %s: action %q, message %q; want Killed without the survived clause", ev.Name, ev.Action, ev.Message)
	}
	return fmt.Sprintf("v2: the kubelet set %s/memory.oom.group 1; the worker's kill took the container: the kubelet's last state %s (container %s); %d records (pids %s), %d with linux.oom.group_kill=true, each %s=false, no survived sentence; no %s; one Event, action Killed, count %d; body: %q",
		path, reason, short(id), len(recs), strings.Join(pids, ", "), groups, survivedKey, survivedMetric, eventCount(ev), recs[0].body), nil
}

// survivedAction is the Event's action for a kill the container survived
// (exporter/k8seventsexporter).
const survivedAction = "KilledWorker"

// survivedEvents checks the k8s_oom_events exporter's side of the proof: the
// survivor's pod has one oomsight Event, action KilledWorker, whose
// message is the record's sentence with the survived clause; every
// oomsight Event of the eater's pod (its PID 1 killed) says Killed.
func (e *env) survivedEvents(ctx context.Context, n *node, pod corev1.Pod, r record, eaterUID string) error {
	ev, err := e.waitPodEvent(ctx, n, string(pod.UID), 1, 60*time.Second)
	if err != nil {
		return err
	}
	if ev.Action != survivedAction || ev.Message != noteOf(r) || !strings.Contains(ev.Message, survivedSentence) {
		return fmt.Errorf("the survivor's Event %s: action %q, message %q; want action %s and the record's sentence with %q", ev.Name, ev.Action, ev.Message, survivedAction, survivedSentence)
	}
	var list corev1.EventList
	if err := e.getJSON(ctx, &list, "events", "-n", n.ns, "--field-selector", "involvedObject.uid="+eaterUID); err != nil {
		return err
	}
	ours := 0
	for i := range list.Items {
		x := &list.Items[i]
		if x.ReportingController != eventController {
			continue
		}
		ours++
		if x.Action != "Killed" || strings.Contains(x.Message, survivedSentence) {
			return fmt.Errorf("the OOMKilled eater's Event %s: action %q, message %q; want Killed and no survived clause", x.Name, x.Action, x.Message)
		}
	}
	if ours == 0 {
		return fmt.Errorf("no oomsight Event on the OOMKilled eater's pod %s", eaterUID)
	}
	return nil
}

// survivorPod returns the survivor's pod and its container's id.
func (e *env) survivorPod(ctx context.Context, n *node) (corev1.Pod, string, error) {
	var pods corev1.PodList
	if err := e.getJSON(ctx, &pods, "pods", "-n", n.ns, "-l", "app=survivor"); err != nil {
		return corev1.Pod{}, "", err
	}
	if len(pods.Items) != 1 || len(pods.Items[0].Status.ContainerStatuses) != 1 {
		return corev1.Pod{}, "", fmt.Errorf("%d survivor pods", len(pods.Items))
	}
	p := pods.Items[0]
	return p, trimRuntime(p.Status.ContainerStatuses[0].ContainerID), nil
}

// survivedSeries returns the newest cgroup.memory.oom_kill.survived of
// the container id in mds, with its resource, and its value (0: none).
func survivedSeries(mds []pmetric.Metrics, id string) (pmetric.Metrics, int64) {
	out := pmetric.NewMetrics()
	var v int64
	for _, md := range mds {
		rms := md.ResourceMetrics()
		for i := range rms.Len() {
			rm := rms.At(i)
			if c, ok := rm.Resource().Attributes().Get("container.id"); !ok || c.Str() != id {
				continue
			}
			sms := rm.ScopeMetrics()
			for j := range sms.Len() {
				ms := sms.At(j).Metrics()
				for k := range ms.Len() {
					if m := ms.At(k); m.Name() == survivedMetric && m.Sum().DataPoints().Len() > 0 {
						v = m.Sum().DataPoints().At(0).IntValue()
						out = pmetric.NewMetrics()
						rm.CopyTo(out.ResourceMetrics().AppendEmpty())
					}
				}
			}
		}
	}
	return out, v
}

// latestFor returns, for each container id, the newest resource that
// carries its OOM kill counts (the records counter, and the survived one
// where there is one).
func latestFor(mds []pmetric.Metrics, ids ...string) pmetric.Metrics {
	return newestWith(mds, "cgroup.memory.oom_kill.records", ids...)
}

// newestWith returns, for each container id, the newest resource of it
// in mds that carries the metric.
func newestWith(mds []pmetric.Metrics, metric string, ids ...string) pmetric.Metrics {
	out := pmetric.NewMetrics()
	for _, id := range ids {
		var last pmetric.ResourceMetrics
		found := false
		for _, md := range mds {
			rms := md.ResourceMetrics()
			for i := range rms.Len() {
				rm := rms.At(i)
				if c, ok := rm.Resource().Attributes().Get("container.id"); !ok || c.Str() != id {
					continue
				}
				if hasMetric(rm, metric) {
					last, found = rm, true
				}
			}
		}
		if found {
			last.CopyTo(out.ResourceMetrics().AppendEmpty())
		}
	}
	return out
}

func hasMetric(rm pmetric.ResourceMetrics, name string) bool {
	sms := rm.ScopeMetrics()
	for j := range sms.Len() {
		ms := sms.At(j).Metrics()
		for k := range ms.Len() {
			if ms.At(k).Name() == name {
				return true
			}
		}
	}
	return false
}

// alertOn runs the distribution (OTLP in, its prometheus exporter out) and
// Debian's Prometheus with deploy/prometheus/oomsight-rules.yaml on the
// host, both on free ports, pushes feed to the distribution, and waits
// until ContainerOOMKillSurvived fires for container survivor and the
// OOM-kill alert (not the survived one) for container ended.
func (e *env) alertOn(ctx context.Context, feed pmetric.Metrics, survivor, ended string) (fired, quiet string, err error) {
	st, err := e.startPromStack()
	if err != nil {
		return "", "", err
	}
	defer st.close()
	promAddr := st.prom
	if waitForErr := waitFor(ctx, 30*time.Second, "the distribution's OTLP/HTTP receiver", func() error {
		return st.push(ctx, feed)
	}); waitForErr != nil {
		return "", "", waitForErr
	}
	alert := func(name, id string) (int, error) {
		q := fmt.Sprintf(`ALERTS{alertname=%q, alertstate="firing", container_id=%q}`, name, id)
		return promCount(ctx, promAddr, q)
	}
	if waitForErr := waitFor(ctx, 60*time.Second, survivedAlert+" firing", func() error {
		n, alertErr := alert(survivedAlert, survivor)
		if alertErr != nil {
			return alertErr
		}
		if n != 1 {
			return fmt.Errorf("%d firing", n)
		}
		if n, alertErr := alert("CgroupOOMKill", ended); alertErr != nil || n != 1 {
			return fmt.Errorf("CgroupOOMKill for the ended container: %d firing, %w", n, alertErr)
		}
		return nil
	}); waitForErr != nil {
		return "", "", fmt.Errorf("%w; otelcol log: %s", waitForErr, st.otelLog())
	}
	n, err := alert(survivedAlert, ended)
	if err != nil {
		return "", "", err
	}
	if n != 0 {
		return "", "", fmt.Errorf("%s fired for the OOMKilled container %s", survivedAlert, short(ended))
	}
	series, _ := promCount(ctx, promAddr, fmt.Sprintf(`cgroup_memory_oom_kill_survived_total{container_id=%q, k8s_container_name="survivor"} == 1`, survivor))
	return fmt.Sprintf("Prometheus %s: cgroup_memory_oom_kill_survived_total with k8s_container_name=survivor: %d series", promAddr, series),
		"CgroupOOMKill fires for it, " + survivedAlert + " does not", nil
}

// promCount returns how many series an instant query gives.
func promCount(ctx context.Context, addr, query string) (int, error) {
	s, err := promSamples(ctx, addr, query)
	return len(s), err
}

// freeLocal returns a free 127.0.0.1 address.
func freeLocal() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:0"
	}
	defer l.Close()
	return l.Addr().String()
}

// startLogged starts a program with its output in logFile; stop ends it.
func startLogged(logFile, name string, args ...string) (stop func(), err error) {
	out, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		_ = out.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		_ = out.Close()
	}, nil
}
