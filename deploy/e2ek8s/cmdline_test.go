// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package e2ek8s

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/oomsight/oomsight/deploy/kubecluster"
)

// pairManifest is the cmdline proof's workload: one Burstable container
// limited to 64 MiB whose main process keeps two workers of its own
// executable (workload pair): an idle one, and on request one that grows
// 1 MiB every 100 ms until the kernel kills it. The kernel's task table
// names both "workload"; only their command lines tell them apart.
var pairManifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: pair
  namespace: {{ns}}
spec:
  replicas: 1
  selector:
    matchLabels: {app: pair}
  template:
    metadata:
      labels: {app: pair}
    spec:
      nodeSelector: {{nodeSelector}}
      terminationGracePeriodSeconds: 1
      containers:
        - name: pair
          image: ` + kubecluster.WorkloadImage + `
          imagePullPolicy: IfNotPresent
          command: ["/workload", "pair", "/trigger", "200"]
          resources:
            requests: {cpu: 10m, memory: 32Mi}
            limits: {memory: 64Mi}
          volumeMounts: [{name: trigger, mountPath: /trigger}]
      volumes:
        - name: trigger
          emptyDir: {}
`

// The pair's workers as the agent must show them (workload pair).
const (
	pairGrowerCmdline = "/workload grow 200 100 --worker=thumbnailer --queue=images"
	pairIdleCmdline   = "/workload hold 8 --worker=report-builder --queue=nightly --db-password=***"
	pairIdleSecret    = "hunter2"
)

// cmdline: two workers of the same executable in one container, one
// OOM-killed: the record names the killed one by its command line, from
// the process snapshot the agent (hostPID) took when the container neared
// its limit, and lists the other with its password redacted.
func (e *env) cmdline(ctx context.Context, n *node) (string, error) {
	f, applyErr := n.apply(ctx, "pair", pairManifest)
	if applyErr != nil {
		return "", applyErr
	}
	defer func() { _, _ = e.kubectl(ctx, "delete", "-f", f, "--wait=false") }()
	if _, err := e.kubectl(ctx, "-n", n.ns, "rollout", "status", "deployment/pair", "--timeout=180s"); err != nil {
		return "", err
	}
	var pods corev1.PodList
	if err := e.getJSON(ctx, &pods, "pods", "-n", n.ns, "-l", "app=pair"); err != nil {
		return "", err
	}
	if len(pods.Items) != 1 || len(pods.Items[0].Status.ContainerStatuses) != 1 {
		return "", fmt.Errorf("%d pair pods", len(pods.Items))
	}
	pod := pods.Items[0]
	id := trimRuntime(pod.Status.ContainerStatuses[0].ContainerID)
	// The agent samples the container (its limit known) before the kill.
	if err := waitFor(ctx, 60*time.Second, "the pair container's metrics", func() error {
		for _, s := range metricSeries(e.srv) {
			if s.attrs["container.id"] == id {
				return nil
			}
		}
		return errNotYet
	}); err != nil {
		return "", err
	}
	if _, err := e.kubectl(ctx, "-n", n.ns, "exec", pod.Name, "-c", "pair", "--", "/workload", "kill", "/trigger"); err != nil {
		return "", err
	}
	byID := func(r record) bool { return r.res["container.id"] == id }
	var r record
	if err := waitFor(ctx, 90*time.Second, "the pair's OOM record", func() error {
		recs := oomRecords(e.srv, byID)
		if len(recs) == 0 {
			return errNotYet
		}
		// On cgroup v2 the kubelet's memory.oom.group takes the whole
		// container: the kernel's own choice is the record with the task
		// table (the group's other members' records have none).
		for _, c := range recs {
			if _, ok := c.attrs.Get("linux.oom.tasks"); ok {
				r = c
				return nil
			}
		}
		return fmt.Errorf("%d records, none with the task table", len(recs))
	}); err != nil {
		return "", err
	}
	raw, err := json.Marshal(map[string]any{"body": r.body, "attributes": r.attrs.AsRaw()})
	if err != nil {
		return "", err
	}
	if strings.Contains(string(raw), pairIdleSecret) {
		return "", fmt.Errorf("the idle worker's password leaked into the record: %s", raw)
	}
	if got := r.str("process.executable.name"); got != "workload" {
		return "", fmt.Errorf("victim named %q by the kernel, want workload; record %s", got, raw)
	}
	if got := r.str("linux.oom.victim.cmdline"); got != pairGrowerCmdline {
		return "", fmt.Errorf("linux.oom.victim.cmdline %q, want %q; record %s", got, pairGrowerCmdline, raw)
	}
	if !strings.Contains(r.body, `Its command line was "`+pairGrowerCmdline+`"`) {
		return "", fmt.Errorf("the body does not name the victim's command line: %q", r.body)
	}
	procs, ok := r.attrs.Get("linux.oom.processes")
	if !ok {
		return "", fmt.Errorf("no linux.oom.processes; record %s", raw)
	}
	var idle, grower bool
	for _, v := range procs.Slice().AsRaw() {
		m, _ := v.(map[string]any)
		switch m["cmdline"] {
		case pairIdleCmdline:
			idle = m["name"] == "workload"
		case pairGrowerCmdline:
			grower = m["pid"] == r.int("process.pid")
		}
	}
	if !idle || !grower {
		return "", fmt.Errorf("linux.oom.processes lacks the idle worker (%v) or the killed one by its pid (%v): %v", idle, grower, procs.AsRaw())
	}
	before := r.int("linux.kmsg.seq") // present: the kernel's report was read
	snapAt := time.UnixMilli(r.int("linux.oom.processes.time"))
	return fmt.Sprintf("pod %s/%s: two \"workload\" processes in one 64 MiB container; the record of the killed one (pid %d, kmsg seq %d) names %q (snapshot at %s, of %s) and lists the other as %q; body: %q",
		n.ns, pod.Name, r.int("process.pid"), before, pairGrowerCmdline, snapAt.UTC().Format("15:04:05.000"), r.str("linux.oom.processes.cgroup"), pairIdleCmdline, r.body), nil
}
