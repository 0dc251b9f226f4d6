// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package e2ek8s

import (
	"context"
	"fmt"
	"net"
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
  name: {{ns}}
---
apiVersion: v1
kind: Pod
metadata:
  name: intruder
  namespace: {{ns}}
  labels: {app: intruder}
spec:
  nodeSelector: {{nodeSelector}}
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
  namespace: {{ns}}
  labels: {app.kubernetes.io/name: oomsight-agent}
spec:
  nodeSelector: {{nodeSelector}}
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
func (e *env) netpol(ctx context.Context, n *node) (string, error) {
	policy := e.repoPath("deploy", "kubernetes", "networkpolicy.yaml")
	if _, err := n.apply(ctx, "intruders", intruderManifest); err != nil {
		return "", err
	}
	defer func() {
		_, _ = e.kubectl(context.Background(), "-n", n.ns, "delete", "pod", "intruder", "impostor", "--wait=false")
	}()
	if _, err := e.kubectl(ctx, "-n", n.ns, "wait", "--for=condition=Ready", "pod/intruder", "pod/impostor", "--timeout=120s"); err != nil {
		return "", err
	}
	gateways, targets, err := e.gatewayTargets(ctx)
	if err != nil {
		return "", err
	}

	// The policy as shipped (applied by manifests).
	refusedShipped, err := e.waitDials(ctx, n, targets, false)
	if err != nil {
		return "", fmt.Errorf("with networkpolicy.yaml as shipped: %w", err)
	}
	rejects, err := e.countRejects(ctx, n, gateways, targets)
	if err != nil {
		return "", err
	}

	// An agent started now opens its connection under the policy.
	agentDetail, err := e.freshAgentThrough(ctx, n)
	if err != nil {
		return "", fmt.Errorf("with networkpolicy.yaml as shipped: %w", err)
	}

	// Without the policies the same pods reach the same addresses.
	if _, err := e.kubectl(ctx, "delete", "-f", policy); err != nil {
		return "", err
	}
	t0 := time.Now()
	if _, err := e.waitDials(ctx, n, targets, true); err != nil {
		_, _ = e.kubectl(ctx, "apply", "-f", policy)
		return "", fmt.Errorf("with networkpolicy.yaml deleted: %w", err)
	}
	openAfter := time.Since(t0)

	// Applied again: refused again.
	if _, err := e.kubectl(ctx, "apply", "-f", policy); err != nil {
		return "", err
	}
	t0 = time.Now()
	if _, err := e.waitDials(ctx, n, targets, false); err != nil {
		return "", fmt.Errorf("with networkpolicy.yaml applied again: %w", err)
	}
	refusedAfter := time.Since(t0)
	return fmt.Sprintf("kube-router %s (firewall-only) enforcing deploy/kubernetes/networkpolicy.yaml: pods intruder and impostor (the agents' label, namespace %s) refused at %s (%s) by the gateway pods' REJECT rules (+%d packets for %d connections); %s; policies deleted: both reach all %d addresses within %.0f s; applied again: refused within %.0f s",
		e.kubeRouterVersion(ctx), n.ns, strings.Join(targets, ", "), refusedShipped, rejects, len(intruders)*len(targets), agentDetail, len(targets),
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
	for i := range pods.Items {
		if p := &pods.Items[i]; p.DeletionTimestamp == nil && ready(*p) && p.Status.PodIP != "" {
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

// freshAgentThrough deletes the agent pod and waits for its replacement's
// metrics at the test's server: points the new agent took after it became
// Ready, which it can only have sent through a connection opened while
// the policy is enforced (an established connection outlives a policy
// change: kube-router admits RELATED,ESTABLISHED first).
func (e *env) freshAgentThrough(ctx context.Context, n *node) (string, error) {
	old, err := e.agentPod(ctx, n)
	if err != nil {
		return "", err
	}
	if _, err := e.kubectl(ctx, "-n", "oomsight", "delete", "pod", old.Name, "--wait=true", "--timeout=90s"); err != nil {
		return "", err
	}
	var agent corev1.Pod
	if err := waitFor(ctx, 120*time.Second, "the recreated agent Ready", func() error {
		p, err := e.agentPod(ctx, n)
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
	count := 0
	if err := waitFor(ctx, 90*time.Second, "the recreated agent's metrics through the gateway", func() error {
		count = 0
		for _, s := range metricSeries(e.srv) {
			if s.last.AsTime().After(readyAt) && s.attrs["k8s.node.name"] == n.Name {
				count++
			}
		}
		if count == 0 {
			return errNotYet
		}
		return nil
	}); err != nil {
		gw, _ := e.kubectl(ctx, "-n", "oomsight", "logs", agent.Name, "--tail=5")
		return "", fmt.Errorf("%w; agent %s's last lines:\n%s", err, agent.Name, gw)
	}
	return fmt.Sprintf("agent %s deleted, %s started under the policy: %d series of its points at the test's server through the gateway", old.Name, agent.Name, count), nil
}
