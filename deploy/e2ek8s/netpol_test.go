// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package e2ek8s

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/oomsight/oomsight/deploy/kubecluster"
)

// intruderManifest: two pods that are not agents, in the workload's
// namespace: one plain, one carrying the agents' label (what any workload
// can set on itself; the policy's podSelector only matches pods of the
// oomsight namespace).
var intruderManifest = `apiVersion: v1
kind: Namespace
metadata:
  name: ` + workloadNS + `
---
apiVersion: v1
kind: Pod
metadata:
  name: intruder
  namespace: ` + workloadNS + `
  labels: {app: intruder}
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: intruder
      image: ` + kubecluster.WorkloadImage + `
      imagePullPolicy: IfNotPresent
      command: ["/workload", "sleep"]
---
apiVersion: v1
kind: Pod
metadata:
  name: impostor
  namespace: ` + workloadNS + `
  labels: {app.kubernetes.io/name: oomsight-agent}
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: impostor
      image: ` + kubecluster.WorkloadImage + `
      imagePullPolicy: IfNotPresent
      command: ["/workload", "sleep"]
`

var intruders = []string{"intruder", "impostor"}

// netpol: deploy/kubernetes/networkpolicy.yaml as shipped, enforced by
// the node's kube-router (firewall-only): pods that are not agents are
// refused at the gateway's OTLP port (its pod address and its Service)
// and at its health port, by kube-router's REJECT rule of the gateway's
// pods (its packet counter rises); a freshly started agent, whose
// connection can only open through the policy, gets its metrics through;
// with the policies deleted the same pods reach all three addresses (so
// the refusal is the policy's, not the port's), and applied again they
// are refused again (the shipped state the later proofs run in).
func (e *env) netpol(ctx context.Context) (string, error) {
	policy := e.repoPath("deploy", "kubernetes", "networkpolicy.yaml")
	f := filepath.Join(kubecluster.StateDir, "intruders.yaml")
	if err := os.WriteFile(f, []byte(intruderManifest), 0o600); err != nil {
		return "", fmt.Errorf("intruders manifest: %w", err)
	}
	if _, err := e.kubectl(ctx, "apply", "-f", f); err != nil {
		return "", err
	}
	defer func() {
		_, _ = e.kubectl(context.Background(), "-n", workloadNS, "delete", "pod", "intruder", "impostor", "--wait=false")
	}()
	if _, err := e.kubectl(ctx, "-n", workloadNS, "wait", "--for=condition=Ready", "pod/intruder", "pod/impostor", "--timeout=120s"); err != nil {
		return "", err
	}
	gateways, targets, err := e.gatewayTargets(ctx)
	if err != nil {
		return "", err
	}

	// The policy as shipped (applied by manifests).
	refusedShipped, err := e.waitDials(ctx, targets, false)
	if err != nil {
		return "", fmt.Errorf("with networkpolicy.yaml as shipped: %w", err)
	}
	rejects, err := e.countRejects(ctx, gateways, targets)
	if err != nil {
		return "", err
	}

	// An agent started now opens its connection under the policy.
	agentDetail, err := e.freshAgentThrough(ctx)
	if err != nil {
		return "", fmt.Errorf("with networkpolicy.yaml as shipped: %w", err)
	}

	// Without the policies the same pods reach the same addresses.
	if _, err := e.kubectl(ctx, "delete", "-f", policy); err != nil {
		return "", err
	}
	t0 := time.Now()
	if _, err := e.waitDials(ctx, targets, true); err != nil {
		_, _ = e.kubectl(ctx, "apply", "-f", policy)
		return "", fmt.Errorf("with networkpolicy.yaml deleted: %w", err)
	}
	openAfter := time.Since(t0)

	// Applied again: refused again.
	if _, err := e.kubectl(ctx, "apply", "-f", policy); err != nil {
		return "", err
	}
	t0 = time.Now()
	if _, err := e.waitDials(ctx, targets, false); err != nil {
		return "", fmt.Errorf("with networkpolicy.yaml applied again: %w", err)
	}
	refusedAfter := time.Since(t0)
	return fmt.Sprintf("kube-router %s (firewall-only) enforcing deploy/kubernetes/networkpolicy.yaml: pods intruder and impostor (the agents' label, namespace %s) refused at %s (%s) by the gateway pods' REJECT rules (+%d packets for %d connections); %s; policies deleted: both reach all %d addresses within %.0f s; applied again: refused within %.0f s",
		e.kubeRouterVersion(ctx), workloadNS, strings.Join(targets, ", "), refusedShipped, rejects, len(intruders)*len(targets), agentDetail, len(targets),
		openAfter.Seconds(), refusedAfter.Seconds()), nil
}

// gatewayTargets returns the gateway pods' names and what the intruders
// dial: the OTLP port on a gateway pod and on the Service, and the pod's
// health port.
func (e *env) gatewayTargets(ctx context.Context) ([]string, []string, error) {
	var pods corev1.PodList
	if err := e.getJSON(ctx, &pods, "pods", "-n", "oomsight", "-l", "app.kubernetes.io/name=oomsight-gateway"); err != nil {
		return nil, nil, err
	}
	var names []string
	var ip string
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && ready(p) && p.Status.PodIP != "" {
			names = append(names, p.Name)
			ip = p.Status.PodIP
		}
	}
	if ip == "" {
		return nil, nil, fmt.Errorf("no Ready gateway pod among %d", len(pods.Items))
	}
	var svc corev1.Service
	if err := e.getJSON(ctx, &svc, "service", "-n", "oomsight", "oomsight-gateway"); err != nil {
		return nil, nil, err
	}
	return names, []string{
		net.JoinHostPort(ip, "4317"),
		net.JoinHostPort(svc.Spec.ClusterIP, "4317"),
		net.JoinHostPort(ip, "13133"),
	}, nil
}

// countRejects has every intruder dial every target once more and returns
// how many packets kube-router's REJECT rules of the gateway pods counted
// meanwhile: at least one per connection, or the refusal is not the
// policy's. kube-router rewrites its rules (iptables-restore, counters
// back to 0) at each sync, which any pod's change starts: a round that a
// sync interrupted is tried again.
func (e *env) countRejects(ctx context.Context, gateways, targets []string) (uint64, error) {
	want := uint64(len(intruders) * len(targets))
	var tries []string
	for range 5 {
		before, err := rejected(ctx, gateways)
		if err != nil {
			return 0, err
		}
		if _, err := e.waitDials(ctx, targets, false); err != nil {
			return 0, err
		}
		after, err := rejected(ctx, gateways)
		if err != nil {
			return 0, err
		}
		if after >= before && after-before >= want {
			return after - before, nil
		}
		tries = append(tries, fmt.Sprintf("%d then %d", before, after))
	}
	return 0, fmt.Errorf("kube-router's REJECT rules of the gateway pods did not count the %d refused connections (packets before and after each round: %s): the refusal is not the policy's", want, strings.Join(tries, ", "))
}

// waitDials has every intruder dial every target, once a second for up to
// 60 s, until all are open (wantOpen) or all closed; it returns the
// reasons of the closed ones.
func (e *env) waitDials(ctx context.Context, targets []string, wantOpen bool) (string, error) {
	var reasons []string
	err := waitFor(ctx, 60*time.Second, "every intruder's connections "+map[bool]string{true: "open", false: "refused"}[wantOpen], func() error {
		reasons = reasons[:0]
		var wrong []string
		for _, pod := range intruders {
			out, err := e.kubectl(ctx, append([]string{"-n", workloadNS, "exec", pod, "--", "/workload", "dial"}, targets...)...)
			if err != nil {
				return err
			}
			results, err := parseDials(out, targets)
			if err != nil {
				return fmt.Errorf("%s: %w", pod, err)
			}
			for _, r := range results {
				if r.open != wantOpen {
					wrong = append(wrong, pod+" → "+r.line)
				} else if !r.open {
					reasons = append(reasons, r.reason)
				}
			}
		}
		if len(wrong) > 0 {
			return errors.New(strings.Join(wrong, "; "))
		}
		return nil
	})
	return strings.Join(uniq(reasons), "; "), err
}

// dialResult is one line of `workload dial`.
type dialResult struct {
	line, reason string
	open         bool
}

// parseDials reads `workload dial`'s output: one line per target, in order.
func parseDials(out string, targets []string) ([]dialResult, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(targets) {
		return nil, fmt.Errorf("workload dial: %d lines for %d addresses: %q", len(lines), len(targets), out)
	}
	results := make([]dialResult, 0, len(lines))
	for i, line := range lines {
		switch {
		case line == targets[i]+" open":
			results = append(results, dialResult{line: line, open: true})
		case strings.HasPrefix(line, targets[i]+" closed: "):
			reason := strings.TrimPrefix(line, targets[i]+" closed: ")
			if j := strings.LastIndex(reason, ": "); j >= 0 {
				reason = reason[j+2:] // "dial tcp ...: connect: connection refused" -> "connection refused"
			}
			results = append(results, dialResult{line: line, reason: reason})
		default:
			return nil, fmt.Errorf("workload dial: line %d %q is not about %s", i+1, line, targets[i])
		}
	}
	return results, nil
}

func uniq(ss []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// freshAgentThrough deletes the agent pod and waits for its replacement's
// metrics at the test's server: points the new agent took after it became
// Ready, which it can only have sent through a connection opened while
// the policy is enforced (an established connection outlives a policy
// change: kube-router admits RELATED,ESTABLISHED first).
func (e *env) freshAgentThrough(ctx context.Context) (string, error) {
	old, err := e.agentPod(ctx)
	if err != nil {
		return "", err
	}
	if _, err := e.kubectl(ctx, "-n", "oomsight", "delete", "pod", old.Name, "--wait=true", "--timeout=90s"); err != nil {
		return "", err
	}
	var agent corev1.Pod
	if err := waitFor(ctx, 120*time.Second, "the recreated agent Ready", func() error {
		p, err := e.agentPod(ctx)
		if err != nil {
			return err
		}
		if p.Name == old.Name || !ready(p) {
			return fmt.Errorf("agent %s ready=%v", p.Name, ready(p))
		}
		agent = p
		return nil
	}); err != nil {
		return "", err
	}
	e.agentNames = append(e.agentNames, agent.Name)
	readyAt := time.Now()
	n := 0
	if err := waitFor(ctx, 90*time.Second, "the recreated agent's metrics through the gateway", func() error {
		n = 0
		for _, s := range metricSeries(e.srv) {
			if s.last.AsTime().After(readyAt) {
				n++
			}
		}
		if n == 0 {
			return errNotYet
		}
		return nil
	}); err != nil {
		gw, _ := e.kubectl(ctx, "-n", "oomsight", "logs", agent.Name, "--tail=5")
		return "", fmt.Errorf("%w; agent %s's last lines:\n%s", err, agent.Name, gw)
	}
	return fmt.Sprintf("agent %s deleted, %s started under the policy: %d series of its points at the test's server through the gateway", old.Name, agent.Name, n), nil
}

// rejected sums the packet counters of kube-router's REJECT rules of the
// gateway pods (iptables-save -c of the filter table).
func rejected(ctx context.Context, gateways []string) (uint64, error) {
	out, err := exec.CommandContext(ctx, "iptables-save", "-c", "-t", "filter").Output()
	if err != nil {
		return 0, fmt.Errorf("iptables-save: %w", err)
	}
	return rejectPackets(string(out), "oomsight", gateways)
}

// rejectPackets sums the packets of the rules kube-router v2.1.0 writes
// last in a pod's firewall chain ("rule to REJECT traffic destined for
// POD name:<pod> namespace: <ns>") for the named pods, from
// `iptables-save -c` (each rule led by [packets:bytes]).
func rejectPackets(save, namespace string, pods []string) (uint64, error) {
	var sum uint64
	found := 0
	for _, line := range strings.Split(save, "\n") {
		if !strings.HasPrefix(line, "[") || !strings.Contains(line, " -j REJECT") {
			continue
		}
		for _, pod := range pods {
			if !strings.Contains(line, `"rule to REJECT traffic destined for POD name:`+pod+` namespace: `+namespace+`"`) {
				continue
			}
			end := strings.IndexByte(line, ':')
			if end < 0 {
				return 0, fmt.Errorf("iptables-save: no counters on %q", line)
			}
			n, err := strconv.ParseUint(line[1:end], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("iptables-save: counters of %q: %w", line, err)
			}
			sum += n
			found++
		}
	}
	if found == 0 {
		return 0, fmt.Errorf("no kube-router REJECT rule for pods %v of namespace %s in the filter table: the policy is not enforced", pods, namespace)
	}
	return sum, nil
}

// kubeRouterVersion is the version make kube-router built into the binary.
func (e *env) kubeRouterVersion(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, e.repoPath("_build", "kube-router", "kube-router"), "--version").CombinedOutput()
	if err != nil {
		return "(version unknown)"
	}
	f := strings.Fields(string(out))
	for i, w := range f {
		if w == "version" && i+1 < len(f) {
			return strings.TrimSuffix(f[i+1], ",")
		}
	}
	return "(version unknown)"
}
