// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package e2ek8s

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// The helm proof's inputs, which make e2e-k8s passes: the helm CLI it
// built (make helm) and the upstream opentelemetry-collector chart
// (OTEL_CHART, make installers).
const (
	helmEnv  = "OOMSIGHT_HELM"
	chartEnv = "OOMSIGHT_OTEL_CHART"
	// helmRelease is the release name of the README's helm install.
	helmRelease = "oomsight-agent"
)

// helmProof reports whether make e2e-k8s gave the helm proof its chart.
func helmProof() bool { return os.Getenv(chartEnv) != "" }

// helm runs the helm CLI against the test cluster; its output is in the
// error when it fails.
func (e *env) helm(ctx context.Context, args ...string) error {
	bin := os.Getenv(helmEnv)
	if bin == "" {
		return fmt.Errorf("%s is not set (make e2e-k8s sets it to the helm of make helm)", helmEnv)
	}
	cmd := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", e.c.Kubeconfig()}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// helmAgentPod returns the Helm release's one agent pod on the node.
func (e *env) helmAgentPod(ctx context.Context, n *node) (corev1.Pod, error) {
	var pods corev1.PodList
	if err := e.getJSON(ctx, &pods, "pods", "-n", "oomsight", "-l", "app.kubernetes.io/instance="+helmRelease+",app.kubernetes.io/name=oomsight-agent"); err != nil {
		return corev1.Pod{}, err
	}
	var live []corev1.Pod
	for i := range pods.Items {
		if p := &pods.Items[i]; p.DeletionTimestamp == nil && p.Spec.NodeName == n.Name {
			live = append(live, *p)
		}
	}
	if len(live) != 1 {
		return corev1.Pod{}, fmt.Errorf("%d agent pods of the Helm release", len(live))
	}
	return live[0], nil
}

// hostPaths returns the pod's hostPath volumes by path.
func hostPaths(p corev1.Pod) map[string]bool {
	out := map[string]bool{}
	for i := range p.Spec.Volumes {
		if v := &p.Spec.Volumes[i]; v.HostPath != nil {
			out[v.HostPath.Path] = true
		}
	}
	return out
}

// helmInstall: the upstream opentelemetry-collector chart installed with
// deploy/helm/values-agent.yaml in place of the raw agent manifest (the
// gateway and the TLS Secret of deploy/kubernetes stay): the chart's
// DaemonSet runs the distribution with the host's cgroups, /dev/kmsg and
// the state directory, becomes Ready through the chart's probes, logs no
// error, names the workload's containers, and a real kill of the eater
// gives exactly one OOM record read from the kernel log (victim, limit)
// with the pod and container names from the API server. A values file
// without the volumes cannot pass: no cgroups, no metrics with names; no
// /dev/kmsg, no victim or limit on the record.
func (e *env) helmInstall(ctx context.Context, n *node) (string, error) {
	chart := os.Getenv(chartEnv)
	if _, err := os.Stat(chart); err != nil {
		return "", fmt.Errorf("the upstream chart (%s): %w", chartEnv, err)
	}
	// The raw agent goes (the DaemonSet is the restricted one by now): the
	// release names its account, ClusterRole and ConfigMap oomsight-agent
	// too, and Helm adopts no object it did not make.
	if _, err := e.kubectl(ctx, "delete", "--ignore-not-found", "--wait=true", "--timeout=120s", "-f", e.repoPath("deploy", "kubernetes", "agent.yaml")); err != nil {
		return "", err
	}
	if err := waitFor(ctx, 90*time.Second, "the raw agent gone", func() error {
		if p, err := e.agentPod(ctx, n); err == nil {
			return fmt.Errorf("agent pod %s still there", p.Name)
		}
		return nil
	}); err != nil {
		return "", err
	}
	t0 := time.Now()
	if err := e.helm(ctx, "install", helmRelease, chart, "--namespace", "oomsight",
		"-f", e.repoPath("deploy", "helm", "values-agent.yaml"), "--wait", "--timeout", "180s"); err != nil {
		return "", err
	}
	var agent corev1.Pod
	if err := waitFor(ctx, 90*time.Second, "the Helm release's agent Ready", func() error {
		p, err := e.helmAgentPod(ctx, n)
		if err != nil {
			return err
		}
		if !ready(p) {
			return fmt.Errorf("agent %s not Ready", p.Name)
		}
		agent = p
		return nil
	}); err != nil {
		return "", err
	}
	readyIn := time.Since(t0)
	if n := agent.Status.ContainerStatuses[0].RestartCount; n > 0 {
		return "", fmt.Errorf("the Helm release's agent %s restarted %d times", agent.Name, n)
	}
	paths := hostPaths(agent)
	for _, p := range []string{"/sys/fs/cgroup", "/dev/kmsg", "/var/lib/oomsight"} {
		if !paths[p] {
			return "", fmt.Errorf("the Helm release's agent %s mounts no %s (hostPaths %v)", agent.Name, p, paths)
		}
	}
	if !agent.Spec.HostPID || agent.Spec.NodeName == "" {
		return "", fmt.Errorf("the Helm release's agent %s: hostPID %v, node %q", agent.Name, agent.Spec.HostPID, agent.Spec.NodeName)
	}

	// The workload's eater, named, from the new agent.
	var cur corev1.Pod
	if err := e.getJSON(ctx, &cur, "pod", "-n", n.ns, n.pod.Name); err != nil {
		return "", err
	}
	var eaterID string
	var restarts int32
	for i := range cur.Status.ContainerStatuses {
		if cs := &cur.Status.ContainerStatuses[i]; cs.Name == "eater" {
			eaterID, restarts = trimRuntime(cs.ContainerID), cs.RestartCount
		}
	}
	readyAt := time.Now()
	if err := waitFor(ctx, 90*time.Second, "the Helm agent's metrics with names", func() error {
		for _, s := range metricSeries(e.srv) {
			if s.last.AsTime().After(readyAt) && s.attrs["container.id"] == eaterID &&
				s.attrs["k8s.container.name"] == "eater" && s.attrs["k8s.pod.name"] == n.pod.Name {
				return nil
			}
		}
		return errNotYet
	}); err != nil {
		return "", err
	}
	bad, err := e.agentLogErrors(ctx, agent.Name)
	if err != nil {
		return "", err
	}
	if len(bad) > 0 {
		return "", fmt.Errorf("the Helm release's agent %s logs errors:\n%s", agent.Name, strings.Join(bad, "\n"))
	}

	killed, _, _, err := e.killEater(ctx, n, restarts+1)
	if err != nil {
		return "", err
	}
	byID := func(r record) bool { return r.res["container.id"] == killed }
	if err := waitFor(ctx, 60*time.Second, "the OOM record", func() error {
		if len(oomRecords(e.srv, byID)) == 0 {
			return errNotYet
		}
		return nil
	}); err != nil {
		return "", err
	}
	time.Sleep(25 * time.Second) // two more exports: a repeat would have arrived
	recs := oomRecords(e.srv, byID)
	if len(recs) != 1 {
		return "", fmt.Errorf("%d OOM records for container %s, want exactly 1", len(recs), killed)
	}
	r := recs[0]
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"victim (the kernel log's)", r.str("process.executable.name"), "workload"},
		{"linux.oom.memcg.limit (the kernel log's)", r.int("linux.oom.memcg.limit"), int64(eaterLimit)},
		{"k8s.pod.name", r.res["k8s.pod.name"], n.pod.Name},
		{"k8s.namespace.name", r.res["k8s.namespace.name"], n.ns},
		{"k8s.container.name", r.res["k8s.container.name"], "eater"},
		{"k8s.pod.uid", r.res["k8s.pod.uid"], string(n.pod.UID)},
	} {
		if c.got != c.want {
			return "", fmt.Errorf("OOM record %s = %v, want %v (body: %s)", c.what, c.got, c.want, r.body)
		}
	}
	if err := e.helm(ctx, "uninstall", helmRelease, "--namespace", "oomsight", "--wait", "--timeout", "120s"); err != nil {
		return "", err
	}
	if _, err := e.helmAgentPod(ctx, n); err == nil {
		return "", fmt.Errorf("an agent pod of the Helm release is left after helm uninstall")
	}
	return fmt.Sprintf("helm install %s (chart %s) -f deploy/helm/values-agent.yaml: agent %s Ready by the chart's probes in %.0f s, hostPID, hostPaths /sys/fs/cgroup /dev/kmsg /var/lib/oomsight, no error in its log; a kill of container %s: exactly 1 OOM record (victim workload, limit 64 MiB from the kernel log; pod %s, container eater from the API server); helm uninstall leaves no agent",
		helmRelease, chartName(chart), agent.Name, readyIn.Seconds(), short(killed), n.pod.Name), nil
}

// chartName is the chart's name and version as helm prints them.
func chartName(chart string) string {
	b, err := os.ReadFile(chart + "/Chart.yaml")
	if err != nil {
		return chart
	}
	var name, version string
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "name: "); ok {
			name = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(l, "version: "); ok {
			version = strings.TrimSpace(v)
		}
	}
	return name + "-" + version
}
