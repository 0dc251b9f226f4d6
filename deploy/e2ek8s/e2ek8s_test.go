// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package e2ek8s

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/oomsight/oomsight/deploy/kubecluster"
	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
	"github.com/oomsight/oomsight/internal/testing/otlptest"
)

const (
	runEnv = "OOMSIGHT_E2E_K8S" // "1" runs TestKubernetes (make e2e-k8s)

	workloadNS = "oomsight-e2e"
	// The eater's limit: the container the kernel kills.
	eaterLimit = 64 << 20
)

// The workload: a Burstable pod with two containers, one limited to 64 MiB
// that touches memory past it when asked (workload eat), one without a
// limit; the shared emptyDir carries the "kill now" requests across the
// eater's restarts. The pod cgroup has no limit (one container has none),
// so the kill is the container's own.
var workloadManifest = `apiVersion: v1
kind: Namespace
metadata:
  name: {{ns}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: eater
  namespace: {{ns}}
spec:
  replicas: 1
  selector:
    matchLabels: {app: eater}
  template:
    metadata:
      labels: {app: eater}
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

// forkerManifest is the restricted proof's second workload: one Burstable
// container limited to 64 MiB whose main process runs each eater as a
// child (workload fork): the kernel kills the child, the container keeps
// running and its cgroup stays, so its own oom_kill counter can be read.
var forkerManifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: forker
  namespace: {{ns}}
spec:
  replicas: 1
  selector:
    matchLabels: {app: forker}
  template:
    metadata:
      labels: {app: forker}
    spec:
      nodeSelector: {{nodeSelector}}
      terminationGracePeriodSeconds: 1
      containers:
        - name: forker
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

// TestKubernetes starts a real Kubernetes (package kubecluster) of the
// nodes NODES names (v1: the host; v2: the VM node; both), applies
// deploy/kubernetes/ as shipped and proves what oomsight tells about real
// OOMKilled containers on each node, one E2EK8S line per proof and node.
// Environment: OOMSIGHT_E2E_K8S=1 (make e2e-k8s builds what it needs
// first), NODES.
func TestKubernetes(t *testing.T) {
	if os.Getenv(runEnv) != "1" {
		cgrouptest.Unavailable(t, "the Kubernetes end-to-end test: set %s=1 to run it (make e2e-k8s builds the binaries and images it needs; root)", runEnv)
	}
	if os.Geteuid() != 0 {
		cgrouptest.Unavailable(t, "the Kubernetes end-to-end test needs root")
	}
	set, err := kubecluster.ParseNodeSet(os.Getenv("NODES"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 55*time.Minute)
	defer cancel()
	c, err := kubecluster.New(func(format string, args ...any) { fmt.Printf(format+"\n", args...) })
	if err != nil {
		t.Fatal(err)
	}
	c.NodeSet = set
	e := &env{t: t, c: c}
	for _, n := range c.Nodes() {
		e.nodes = append(e.nodes, newNode(c, n))
	}
	defer e.cleanup()
	ps := proofs(helmProof())
	if !helmProof() {
		fmt.Printf("E2EK8S helm NOT RUN: no upstream chart given (%s; make e2e-k8s OTEL_CHART=<dir or .tgz>, docs/installing.md)\n", chartEnv)
	}
	t0 := time.Now()
	if err := c.Up(ctx); err != nil {
		for _, p := range ps {
			for _, n := range e.nodes {
				if p.on(n) {
					e.result(p.name, n, fmt.Errorf("the cluster did not start: %w", err))
				}
			}
		}
		return
	}
	fmt.Printf("k8s: cluster of %d nodes (NODES=%s) up in %.0f s\n", len(e.nodes), set, time.Since(t0).Seconds())
	e.srv = otlptest.StartAt(t, kubecluster.HostIP)
	fmt.Printf("k8s: test OTLP server on %s\n", e.srv.Endpoint)

	// OOMSIGHT_E2E_K8S_ONLY (comma-separated proof names) runs a few proofs
	// for a short run by hand; each still needs those it builds on
	// (manifests, names). Empty: all.
	only := os.Getenv("OOMSIGHT_E2E_K8S_ONLY")
	// A failed proof stops the later ones on its node: they build on it.
	failed := map[*node]string{}
	for _, p := range ps {
		if only != "" && !slices.Contains(strings.Split(only, ","), p.name) {
			continue
		}
		for _, n := range e.nodes {
			if !p.on(n) {
				continue
			}
			if failed[n] != "" {
				e.result(p.name, n, fmt.Errorf("not run: %s failed on this node", failed[n]))
				continue
			}
			fmt.Printf("k8s: proving %s %s\n", p.name, n.tag())
			t1 := time.Now()
			detail, err := p.fn(e, ctx, n)
			if err != nil {
				failed[n] = p.name
				e.diagnose(ctx)
			}
			e.result(p.name, n, err, detail, fmt.Sprintf("(%.0f s)", time.Since(t1).Seconds()))
		}
	}
}

// proof is one E2EK8S line per node it runs on.
type proof struct {
	name string
	fn   func(*env, context.Context, *node) (string, error)
	on   func(*node) bool
}

func everyNode(*node) bool { return true }

// onV1 marks what runs on the host's node only: tls and netpol prove the
// cluster's network (the gateway runs on the host: kube-router, the
// NetworkPolicy enforcer, runs there only), helm replaces the agent.
func onV1(n *node) bool { return !n.v2() }

// onV2 marks what only cgroup v2 has: the last peak of a cgroup removed at
// the kill (memory.peak), the time to OOM against a kill that the kernel
// reports through memory.events, memory.high and pressure.
func onV2(n *node) bool { return n.v2() }

// proofs lists the proofs in the order they run; each runs on every node
// it is for before the next starts, since some change the whole cluster
// (netpol and restart replace agents, pod-event stops the API server,
// restricted and helm replace the DaemonSet).
func proofs(helm bool) []proof {
	ps := []proof{
		{"manifests", (*env).manifests, everyNode},
		{"tls", (*env).tlsProof, onV1},
		// netpol restarts the agent and leaves the policies as shipped.
		{"netpol", (*env).netpol, onV1},
		{"names", (*env).names, everyNode},
		{"semconv", (*env).semconv, everyNode},
		{"oomkilled", (*env).oomKilled, everyNode},
		// last-peak reads the removed cgroup of oomkilled's first kill.
		{"last-peak", (*env).lastPeak, onV2},
		{"restart", (*env).restart, everyNode},
		{"survived", (*env).survived, everyNode},
		{"cmdline", (*env).cmdline, everyNode},
		{"psi", (*env).psi, onV2},
		{"eta", (*env).eta, onV2},
		// pod-event stops the API server for 30 s: last before restricted,
		// which replaces the agent, so that no other proof depends on how
		// fast the agent's k8s_attributes recovers from that.
		{"pod-event", (*env).podEvent, everyNode},
		{"restricted", (*env).restricted, everyNode},
	}
	// helm replaces the (restricted) raw agent with the upstream chart's:
	// last. Without the chart (make e2e-k8s OTEL_CHART=…) it is not run,
	// and says so.
	if helm {
		ps = append(ps, proof{"helm", (*env).helmInstall, onV1})
	}
	return ps
}

// env is one run's cluster, OTLP server and what the proofs learnt.
type env struct {
	t     *testing.T
	c     *kubecluster.Cluster
	srv   *otlptest.Server
	nodes []*node

	applied      bool     // deploy/kubernetes/ applied (manifests)
	restrictedOn bool     // deploy/kubernetes/restricted/ applied
	agentNames   []string // agent pods seen, in order
}

// result prints the proof's line (n nil: the cluster's) and fails the test
// on an error.
func (e *env) result(name string, n *node, err error, detail ...string) {
	if n != nil {
		name += " " + n.tag()
	}
	if err != nil {
		msg := strings.ReplaceAll(err.Error(), "\n", "\n    ")
		fmt.Printf("E2EK8S %s FAIL %s\n", name, msg)
		e.t.Errorf("%s: %v", name, err)
		return
	}
	fmt.Printf("E2EK8S %s PASS %s\n", name, strings.Join(detail, " "))
}

// cleanup stops the cluster and proves nothing is left.
func (e *env) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	t0 := time.Now()
	err := e.c.Down(ctx)
	if err == nil {
		if left := kubecluster.Leftovers(); len(left) > 0 {
			err = fmt.Errorf("left behind: %s", strings.Join(left, "; "))
		}
	}
	e.result("cleanup", nil, err, fmt.Sprintf("every process, mount, cgroup, network device, iptables chain, ipset and directory of the cluster removed in %.0f s; sysctls restored", time.Since(t0).Seconds()))
}

// diagnose prints what a person would look at after a failed proof.
func (e *env) diagnose(ctx context.Context) {
	cmds := [][]string{{"get", "pods", "-A", "-o", "wide"}}
	for _, n := range e.nodes {
		if agent, err := e.agentPod(ctx, n); err == nil {
			cmds = append(cmds, []string{"-n", "oomsight", "logs", agent.Name, "--tail=30"})
		}
	}
	for _, args := range append(cmds, [][]string{
		{"-n", "oomsight", "logs", "deploy/oomsight-gateway", "--tail=15"},
		{"-n", "oomsight", "logs", "job/oomsight-tls", "--tail=5"},
		{"get", "events", "-A", "--sort-by=.lastTimestamp"},
	}...) {
		out, err := e.c.Kubectl(ctx, args...)
		if err != nil {
			out = err.Error()
		}
		fmt.Printf("k8s: kubectl %s:\n%s\n", strings.Join(args, " "), tail(out, 30))
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}

func (e *env) kubectl(ctx context.Context, args ...string) (string, error) {
	return e.c.Kubectl(ctx, args...)
}

// getJSON decodes `kubectl get -o json` into v.
func (e *env) getJSON(ctx context.Context, v any, args ...string) error {
	out, err := e.kubectl(ctx, append(append([]string{"get"}, args...), "-o", "json")...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("kubectl get %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// waitFor polls check every second until it returns nil or timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, what string, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not after %.0f s: %w", what, timeout.Seconds(), err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last: %w)", what, ctx.Err(), err)
		case <-time.After(time.Second):
		}
	}
}

func (e *env) repoPath(elem ...string) string {
	return filepath.Join(append([]string{e.c.Root}, elem...)...)
}

func ready(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// agentLogErrors returns the agent's log lines at level error.
func (e *env) agentLogErrors(ctx context.Context, pod string) ([]string, error) {
	out, err := e.kubectl(ctx, "-n", "oomsight", "logs", pod)
	if err != nil {
		return nil, err
	}
	var bad []string
	for line := range strings.SplitSeq(out, "\n") {
		if strings.Contains(line, "\terror\t") || strings.Contains(line, `"level":"error"`) || strings.Contains(line, "panic") {
			bad = append(bad, line)
		}
	}
	return bad, nil
}

var errNotYet = errors.New("not yet")
