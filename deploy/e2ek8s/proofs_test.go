// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package e2ek8s

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/oomsight/oomsight/deploy/kubecluster"
)

// manifests: deploy/kubernetes/ applied as shipped (once, for every node);
// on the node, the agent becomes Ready through its own probes, its
// metrics reach the test's server through the gateway's Service (from the
// VM: across nodes), and it logs no error; the gateway Deployment becomes
// available. The gateway's image and backend are the two values a user
// sets (no registry here: the distribution's image, which holds every
// component the gateway's config names; the test's OTLP server); the test
// also pins the gateway to the host's node, where kube-router enforces
// its NetworkPolicy (netpol).
func (e *env) manifests(ctx context.Context, n *node) (string, error) {
	if !e.applied {
		if err := e.applyShipped(ctx); err != nil {
			return "", err
		}
		e.applied = true
	}
	agent, err := e.agentPod(ctx, n)
	if err != nil {
		return "", err
	}
	if !ready(agent) {
		return "", fmt.Errorf("agent pod %s on %s not Ready", agent.Name, agent.Spec.NodeName)
	}
	e.agentNames = append(e.agentNames, agent.Name)
	// The agent has exported through the gateway once its node's metrics
	// arrive.
	if waitForErr := waitFor(ctx, 120*time.Second, "metrics of "+n.Name+" through the gateway", func() error {
		for _, s := range metricSeries(e.srv) {
			if s.attrs["k8s.node.name"] == n.Name {
				return nil
			}
		}
		return errNotYet
	}); waitForErr != nil {
		return "", waitForErr
	}
	bad, err := e.agentLogErrors(ctx, agent.Name)
	if err != nil {
		return "", err
	}
	if len(bad) > 0 {
		return "", fmt.Errorf("agent %s logs errors:\n%s", agent.Name, strings.Join(bad, "\n"))
	}
	gw, err := e.gatewayNodes(ctx)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("kubectl apply -f deploy/kubernetes/: DaemonSet of %d pods; agent %s Ready by its probes on %s, its metrics (k8s.node.name %s) at the test's server through the gateway Service (gateway 2/2 available on %s), no error in the agent's log",
		len(e.nodes), agent.Name, agent.Spec.NodeName, n.Name, gw), nil
}

// applyShipped applies deploy/kubernetes/ and waits for the DaemonSet's
// pod on every node and the gateway.
func (e *env) applyShipped(ctx context.Context) error {
	if _, err := e.kubectl(ctx, "apply", "-f", e.repoPath("deploy", "kubernetes")+"/"); err != nil {
		return err
	}
	if _, err := e.kubectl(ctx, "-n", "oomsight", "set", "image", "deployment/oomsight-gateway", "gateway="+kubecluster.AgentImage); err != nil {
		return err
	}
	if _, err := e.kubectl(ctx, "-n", "oomsight", "set", "env", "deployment/oomsight-gateway",
		"BACKEND_ENDPOINT="+e.srv.Endpoint, "BACKEND_INSECURE=true"); err != nil {
		return err
	}
	pin := fmt.Sprintf(`{"spec":{"template":{"spec":{"nodeSelector":{%q:%q}}}}}`, kubecluster.NodeLabel, e.nodes[0].Generation)
	if _, err := e.kubectl(ctx, "-n", "oomsight", "patch", "deployment/oomsight-gateway", "-p", pin); err != nil {
		return err
	}
	if _, err := e.kubectl(ctx, "-n", "oomsight", "rollout", "status", "daemonset/oomsight-agent", "--timeout=300s"); err != nil {
		return err
	}
	if _, err := e.kubectl(ctx, "-n", "oomsight", "rollout", "status", "deployment/oomsight-gateway", "--timeout=180s"); err != nil {
		return err
	}
	var ds appsv1.DaemonSet
	if err := e.getJSON(ctx, &ds, "daemonset", "-n", "oomsight", "oomsight-agent"); err != nil {
		return err
	}
	if int(ds.Status.NumberReady) != len(e.nodes) {
		return fmt.Errorf("DaemonSet oomsight-agent: %d pods Ready, want one on each of %d nodes", ds.Status.NumberReady, len(e.nodes))
	}
	return nil
}

// gatewayNodes names the nodes the gateway's pods run on.
func (e *env) gatewayNodes(ctx context.Context) (string, error) {
	var pods corev1.PodList
	if err := e.getJSON(ctx, &pods, "pods", "-n", "oomsight", "-l", "app.kubernetes.io/name=oomsight-gateway"); err != nil {
		return "", err
	}
	var on []string
	for i := range pods.Items {
		if p := &pods.Items[i]; p.DeletionTimestamp == nil && ready(*p) && !slices.Contains(on, p.Spec.NodeName) {
			on = append(on, p.Spec.NodeName)
		}
	}
	if len(on) == 0 {
		return "", errors.New("no gateway pod Ready")
	}
	return strings.Join(on, ", "), nil
}

// names: the workload's pod and container cgroups arrive with the names
// k8s_attributes read from the API server and the identity the agent read
// from the kubelet's cgroup paths.
func (e *env) names(ctx context.Context, n *node) (string, error) {
	if _, err := n.apply(ctx, "workload", workloadManifest); err != nil {
		return "", err
	}
	if _, err := e.kubectl(ctx, "-n", n.ns, "rollout", "status", "deployment/eater", "--timeout=180s"); err != nil {
		return "", err
	}
	var pods corev1.PodList
	if err := e.getJSON(ctx, &pods, "pods", "-n", n.ns, "-l", "app=eater"); err != nil {
		return "", err
	}
	if len(pods.Items) != 1 {
		return "", fmt.Errorf("%d eater pods", len(pods.Items))
	}
	n.pod = pods.Items[0]
	if n.pod.Status.QOSClass != corev1.PodQOSBurstable {
		return "", fmt.Errorf("pod QoS %q, want Burstable", n.pod.Status.QOSClass)
	}
	uid := string(n.pod.UID)
	ids := map[string]string{}
	for i := range n.pod.Status.ContainerStatuses {
		cs := &n.pod.Status.ContainerStatuses[i]
		ids[cs.Name] = trimRuntime(cs.ContainerID)
	}
	n.firstID = ids["eater"]
	want := []struct {
		what, path, container, id string
	}{
		{"pod cgroup", n.podPath(uid), "", ""},
		{"eater", n.containerPath(uid, ids["eater"]), "eater", ids["eater"]},
		{"sidecar", n.containerPath(uid, ids["sidecar"]), "sidecar", ids["sidecar"]},
	}
	var found []string
	err := waitFor(ctx, 90*time.Second, "the workload's metrics with names", func() error {
		found = found[:0]
		all := metricSeries(e.srv)
		for _, w := range want {
			var last map[string]string
			ok := false
			for _, s := range all {
				if s.attrs["cgroup.path"] != w.path {
					continue
				}
				last = s.attrs
				if s.attrs["k8s.pod.uid"] == uid && s.attrs["k8s.pod.name"] == n.pod.Name &&
					s.attrs["k8s.namespace.name"] == n.ns && s.attrs["k8s.deployment.name"] == "eater" &&
					s.attrs["k8s.pod.qos_class"] == "Burstable" && s.attrs["k8s.node.name"] == n.Name &&
					s.attrs["container.id"] == w.id && s.attrs["k8s.container.name"] == w.container {
					ok = true
					break
				}
			}
			if !ok {
				return fmt.Errorf("%s %s: last resource seen %v", w.what, w.path, last)
			}
			found = append(found, w.what)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("pod %s/%s (uid %s, Burstable): metrics of %s with k8s.pod.name, k8s.namespace.name, k8s.deployment.name, k8s.container.name from the API server and k8s.pod.uid, container.id, k8s.pod.qos_class, k8s.node.name %s from %s",
		n.ns, n.pod.Name, uid, strings.Join(found, ", "), n.Name, n.containerPath("<uid>", "<id>")), nil
}

// killEater asks the eater for one more kill and waits until the kubelet
// reports it: the new restart count, the kill (node.killReason), and the
// killed instance's container id.
func (e *env) killEater(ctx context.Context, n *node, wantRestarts int32) (killedID, newID, reason string, err error) {
	if _, kubectlErr := e.kubectl(ctx, "-n", n.ns, "exec", n.pod.Name, "-c", "sidecar", "--", "/workload", "kill", "/trigger"); kubectlErr != nil {
		return "", "", "", kubectlErr
	}
	err = waitFor(ctx, 120*time.Second, "the kubelet's OOMKilled", func() error {
		cs, csErr := e.containerStatus(ctx, n, n.pod.Name, "eater")
		if csErr != nil {
			return csErr
		}
		term := cs.LastTerminationState.Terminated
		if cs.RestartCount != wantRestarts || term == nil || cs.State.Running == nil {
			return fmt.Errorf("eater: restarts %d, last state %+v, state %+v", cs.RestartCount, cs.LastTerminationState, cs.State)
		}
		var reasonErr error
		if reason, reasonErr = n.killReason(term); reasonErr != nil {
			return fmt.Errorf("eater's %w", reasonErr)
		}
		killedID, newID = trimRuntime(term.ContainerID), trimRuntime(cs.ContainerID)
		return nil
	})
	return killedID, newID, reason, err
}

// oomKilled: a real OOM kill of the 64 MiB container, told once, by the
// kubelet's container id.
func (e *env) oomKilled(ctx context.Context, n *node) (string, error) {
	killed, newID, reason, err := e.killEater(ctx, n, 1)
	if err != nil {
		return "", err
	}
	if killed != n.firstID {
		return "", fmt.Errorf("the kubelet's killed container %s is not the eater's first %s", killed, n.firstID)
	}
	n.secondID = newID
	byID := func(r record) bool { return r.res["container.id"] == killed }
	if err := waitFor(ctx, 60*time.Second, "the OOM record", func() error {
		if len(oomRecords(e.srv, byID)) == 0 {
			return errNotYet
		}
		return nil
	}); err != nil {
		return "", err
	}
	// Two more exports: a repeat would have arrived.
	time.Sleep(25 * time.Second)
	recs := oomRecords(e.srv, byID)
	if len(recs) != 1 {
		return "", fmt.Errorf("%d OOM records for container %s, want exactly 1", len(recs), killed)
	}
	r := recs[0]
	uid := string(n.pod.UID)
	checks := []struct {
		what      string
		got, want any
	}{
		{"victim", r.str("process.executable.name"), "workload"},
		{"k8s.pod.name", r.res["k8s.pod.name"], n.pod.Name},
		{"k8s.namespace.name", r.res["k8s.namespace.name"], n.ns},
		{"k8s.container.name", r.res["k8s.container.name"], "eater"},
		{"k8s.pod.uid", r.res["k8s.pod.uid"], uid},
		{"linux.oom.memcg", r.str("linux.oom.memcg"), n.containerPath(uid, killed)},
		{"linux.oom.memcg.limit", r.int("linux.oom.memcg.limit"), int64(eaterLimit)},
	}
	for _, c := range checks {
		if c.got != c.want {
			return "", fmt.Errorf("OOM record %s = %v, want %v (body: %s)", c.what, c.got, c.want, r.body)
		}
	}
	hist, ok := r.attrs.Get("cgroup.memory.history")
	if !ok {
		return "", fmt.Errorf("OOM record without the climb (body: %s)", r.body)
	}
	usage, ok := hist.Map().Get("usage")
	if !ok || usage.Slice().Len() < 3 {
		return "", fmt.Errorf("OOM record's climb has too few samples: %v", hist.AsRaw())
	}
	// The restarted container is a new series.
	var oldStart, newStart int64
	if err := waitFor(ctx, 60*time.Second, "the restarted container's metrics", func() error {
		oldStart, newStart = 0, 0
		for _, s := range metricSeries(e.srv) {
			switch s.attrs["container.id"] {
			case killed:
				oldStart = int64(s.start)
			case newID:
				if s.attrs["k8s.container.name"] == "eater" {
					newStart = int64(s.start)
				}
			}
		}
		if newStart == 0 {
			return fmt.Errorf("no metrics for the restarted eater %s", newID)
		}
		return nil
	}); err != nil {
		return "", err
	}
	if oldStart == 0 || newStart <= oldStart {
		return "", fmt.Errorf("restarted eater's series starts at %d, the killed one's at %d: not a new series", newStart, oldStart)
	}
	return fmt.Sprintf("kubelet: %s, restartCount 1, containerID %s; exactly 1 OOM record: victim workload, pod %s, container eater, container.id = the kubelet's, limit 64 MiB, a climb of %d samples; restarted container %s is a new series (start %s later); body: %q",
		reason, short(killed), n.pod.Name, usage.Slice().Len(), short(newID), time.Duration(newStart-oldStart).Round(time.Second), r.body), nil
}

// restart: the agent pod deleted and recreated by its DaemonSet repeats no
// record (the checkpoint on the hostPath), and a second kill gives exactly
// one new record.
func (e *env) restart(ctx context.Context, n *node) (string, error) {
	old, err := e.agentPod(ctx, n)
	if err != nil {
		return "", err
	}
	if _, kubectlErr := e.kubectl(ctx, "-n", "oomsight", "delete", "pod", old.Name, "--wait=true", "--timeout=90s"); kubectlErr != nil {
		return "", kubectlErr
	}
	var agent corev1.Pod
	if waitForErr := waitFor(ctx, 120*time.Second, "the recreated agent Ready", func() error {
		p, agentPodErr := e.agentPod(ctx, n)
		if agentPodErr != nil {
			return agentPodErr
		}
		if p.Name == old.Name || !ready(p) {
			return fmt.Errorf("agent %s ready=%v", p.Name, ready(p))
		}
		agent = p
		return nil
	}); waitForErr != nil {
		return "", waitForErr
	}
	if agent.Spec.NodeName != old.Spec.NodeName {
		return "", fmt.Errorf("recreated agent on %q, the old one was on %q", agent.Spec.NodeName, old.Spec.NodeName)
	}
	e.agentNames = append(e.agentNames, agent.Name)
	// The new agent's exports arrive (it read the kernel log's backlog
	// before its first collection); give it two collections more.
	readyAt := time.Now()
	if waitForErr := waitFor(ctx, 60*time.Second, "the recreated agent's metrics", func() error {
		for _, s := range metricSeries(e.srv) {
			if s.attrs["container.id"] == n.secondID && s.last.AsTime().After(readyAt) {
				return nil
			}
		}
		return errNotYet
	}); waitForErr != nil {
		return "", waitForErr
	}
	time.Sleep(20 * time.Second)
	first := oomRecords(e.srv, func(r record) bool { return r.res["container.id"] == n.firstID })
	if len(first) != 1 {
		return "", fmt.Errorf("after the agent's restart: %d OOM records for the first kill, want still 1", len(first))
	}
	killed, _, _, err := e.killEater(ctx, n, 2)
	if err != nil {
		return "", err
	}
	if killed != n.secondID {
		return "", fmt.Errorf("the kubelet's killed container %s is not the eater's second %s", killed, n.secondID)
	}
	byID := func(r record) bool { return r.res["container.id"] == killed }
	if err := waitFor(ctx, 60*time.Second, "the second OOM record", func() error {
		if len(oomRecords(e.srv, byID)) == 0 {
			return errNotYet
		}
		return nil
	}); err != nil {
		return "", err
	}
	time.Sleep(25 * time.Second)
	second := oomRecords(e.srv, byID)
	first = oomRecords(e.srv, func(r record) bool { return r.res["container.id"] == n.firstID })
	if len(second) != 1 || len(first) != 1 {
		return "", fmt.Errorf("%d records for the second kill and %d for the first, want 1 and 1", len(second), len(first))
	}
	return fmt.Sprintf("agent %s deleted, %s recreated on %s: the first kill still has 1 record; a second kill (container %s) has exactly 1",
		old.Name, agent.Name, agent.Spec.NodeName, short(killed)), nil
}

// restricted: deploy/kubernetes/restricted/ in place of the default agent
// runs with its securityContext under the real kubelet; names on metrics;
// a worker process OOM-killed in a container that survives it gives
// exactly one counter-based record on that container; and the OOMKilled
// container's kill (its cgroup removed at once) gives a record on cgroup
// v2 and, on cgroup v1, none, and no wrong one.
func (e *env) restricted(ctx context.Context, n *node) (string, error) {
	if !e.restrictedOn {
		// The forkers start while the agents are replaced; not on v2, where
		// the kubelet's memory.oom.group makes every worker's kill the
		// container's (survived).
		for _, m := range e.nodes {
			if m.v2() {
				continue
			}
			if _, err := m.apply(ctx, "forker", forkerManifest); err != nil {
				return "", err
			}
		}
		if _, kubectlErr := e.kubectl(ctx, "apply", "-f", e.repoPath("deploy", "kubernetes", "restricted")+"/"); kubectlErr != nil {
			return "", kubectlErr
		}
		if _, kubectlErr := e.kubectl(ctx, "-n", "oomsight", "rollout", "status", "daemonset/oomsight-agent", "--timeout=300s"); kubectlErr != nil {
			return "", kubectlErr
		}
		e.restrictedOn = true
	}
	var agent corev1.Pod
	if waitForErr := waitFor(ctx, 120*time.Second, "the restricted agent Ready", func() error {
		p, agentPodErr := e.agentPod(ctx, n)
		if agentPodErr != nil {
			return agentPodErr
		}
		if p.Spec.ServiceAccountName != "oomsight-agent-restricted" || !ready(p) {
			return fmt.Errorf("agent %s (service account %s) ready=%v", p.Name, p.Spec.ServiceAccountName, ready(p))
		}
		agent = p
		return nil
	}); waitForErr != nil {
		return "", waitForErr
	}
	if agent.Spec.ServiceAccountName != "oomsight-agent-restricted" {
		return "", fmt.Errorf("restricted agent runs as service account %q, not its own", agent.Spec.ServiceAccountName)
	}
	sc := agent.Spec.Containers[0].SecurityContext
	psc := agent.Spec.SecurityContext
	if sc == nil || psc == nil || psc.RunAsUser == nil || *psc.RunAsUser != 65532 || sc.Privileged != nil && *sc.Privileged ||
		sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		return "", fmt.Errorf("restricted agent's securityContext: pod %+v container %+v", psc, sc)
	}
	// What the kernel says about the agent's process.
	proc, err := processOf(ctx, n, agent)
	if err != nil {
		return "", err
	}
	if restarts := agent.Status.ContainerStatuses[0].RestartCount; restarts > 0 {
		prev, _ := e.kubectl(ctx, "-n", "oomsight", "logs", agent.Name, "--previous", "--tail=20")
		return "", fmt.Errorf("restricted agent %s restarted %d times; its previous log:\n%s", agent.Name, restarts, prev)
	}
	readyAt := time.Now()
	uid := string(n.pod.UID)
	var cur corev1.Pod
	if getJSONErr := e.getJSON(ctx, &cur, "pod", "-n", n.ns, n.pod.Name); getJSONErr != nil {
		return "", getJSONErr
	}
	var eaterID string
	for i := range cur.Status.ContainerStatuses {
		cs := &cur.Status.ContainerStatuses[i]
		if cs.Name == "eater" {
			eaterID = trimRuntime(cs.ContainerID)
		}
	}
	// The node's counter-based records.
	counted := func(r record) bool {
		_, ok := r.attrs.Get("linux.oom.counted_kills")
		return ok && r.res["k8s.node.name"] == n.Name
	}
	var detail, forkerPath string
	if n.v2() {
		// Metrics with names after the agent started: it has read the
		// eater's counters, so a kill from now on is a rise.
		if namedErr := e.namedAfter(ctx, readyAt, map[string]string{eaterID: n.pod.Name + "/eater"}); namedErr != nil {
			return "", namedErr
		}
		if recs := oomRecords(e.srv, counted); len(recs) != 0 {
			return "", fmt.Errorf("%d counter-based records before any kill under the restricted agent: %v", len(recs), recs[0].res)
		}
		detail = fmt.Sprintf("restricted agent %s Ready (%s); metrics with names (no forker: on v2 a worker's kill is its container's, see survived)", agent.Name, proc)
	} else {
		detail, forkerPath, err = e.restrictedWorker(ctx, n, agent.Name, proc, readyAt, eaterID, counted)
		if err != nil {
			return "", err
		}
	}

	// An OOMKilled container: its cgroup is removed at once.
	killed, _, _, err := e.killEater(ctx, n, 3)
	if err != nil {
		return "", err
	}
	others := func(r record) bool { return counted(r) && r.res["cgroup.path"] != forkerPath }
	if n.v2() {
		// memory.events changes at the kill and the agent reads the counters
		// then, before the runtime removes the cgroup.
		if err := waitFor(ctx, 60*time.Second, "the counter-based record of the OOMKilled container", func() error {
			if len(oomRecords(e.srv, others)) == 0 {
				return errNotYet
			}
			return nil
		}); err != nil {
			return "", err
		}
		time.Sleep(25 * time.Second)
		recs := oomRecords(e.srv, others)
		if len(recs) != 1 || recs[0].res["k8s.pod.uid"] != uid || recs[0].res["k8s.pod.name"] != n.pod.Name {
			return "", fmt.Errorf("%d counter-based records for the OOMKilled container %s, want 1 with the pod's names: %v", len(recs), short(killed), resources(recs))
		}
		return detail + fmt.Sprintf("; v2: OOMKilled container %s gives 1 counter-based record on %s (container.id %s, linux.oom.counted_kills %d); body: %q",
			short(killed), recs[0].res["cgroup.path"], short(recs[0].res["container.id"]), recs[0].int("linux.oom.counted_kills"), recs[0].body), nil
	}
	// cgroup v1: the kill is counted only in the container's own cgroup,
	// which the runtime removes before the next collection; no record, and
	// no wrong one (booked on another cgroup).
	time.Sleep(35 * time.Second) // three collections
	if recs := oomRecords(e.srv, others); len(recs) != 0 {
		return "", fmt.Errorf("after the OOMKilled kill of %s on cgroup v1: %d counter-based records on other cgroups, want none: %v", short(killed), len(recs), resources(recs))
	}
	if count := len(oomRecords(e.srv, counted)); count != 1 {
		return "", fmt.Errorf("after the OOMKilled kill of %s: %d counter-based records, want still the worker's 1", short(killed), count)
	}
	return detail + fmt.Sprintf("; v1: OOMKilled container's kill not visible to counters (documented): container %s killed, no other record (%s)",
		short(killed), killCounters(ctx, n, uid, killed)), nil
}

// namedAfter waits for metrics taken after t of each container id in want
// ("pod/container" names).
func (e *env) namedAfter(ctx context.Context, t time.Time, want map[string]string) error {
	return waitFor(ctx, 60*time.Second, "the restricted agent's metrics with names", func() error {
		seen := map[string]bool{}
		for _, s := range metricSeries(e.srv) {
			id := s.attrs["container.id"]
			if w, ok := want[id]; ok && s.last.AsTime().After(t) && s.attrs["k8s.pod.name"]+"/"+s.attrs["k8s.container.name"] == w {
				seen[id] = true
			}
		}
		if len(seen) < len(want) {
			return fmt.Errorf("%d of %d containers", len(seen), len(want))
		}
		return nil
	})
}

// restrictedWorker is restricted's cgroup v1 part: a worker killed in a
// container that survives it (forker) gives exactly one counter-based
// record on that container. It returns the proof's detail so far and the
// forker's cgroup path.
func (e *env) restrictedWorker(ctx context.Context, n *node, agentName, proc string, readyAt time.Time, eaterID string, counted func(record) bool) (detail, forkerPath string, err error) {
	if _, kubectlErr := e.kubectl(ctx, "-n", n.ns, "rollout", "status", "deployment/forker", "--timeout=180s"); kubectlErr != nil {
		return "", "", kubectlErr
	}
	forker, forkerID, err := e.forkerPod(ctx, n)
	if err != nil {
		return "", "", err
	}
	// Metrics with names for both containers after the agent started: the
	// agent has read their counters, so a kill from now on is a rise.
	if err := e.namedAfter(ctx, readyAt, map[string]string{eaterID: n.pod.Name + "/eater", forkerID: forker.Name + "/forker"}); err != nil {
		return "", "", err
	}
	if recs := oomRecords(e.srv, counted); len(recs) != 0 {
		return "", "", fmt.Errorf("%d counter-based records before any kill under the restricted agent: %v", len(recs), recs[0].res)
	}

	// A worker killed in a container that survives it.
	if _, kubectlErr := e.kubectl(ctx, "-n", n.ns, "exec", forker.Name, "-c", "forker", "--", "/workload", "kill", "/trigger"); kubectlErr != nil {
		return "", "", kubectlErr
	}
	forkerPath = n.containerPath(string(forker.UID), forkerID)
	if waitForErr := waitFor(ctx, 60*time.Second, "the counter-based record of the worker's kill", func() error {
		if len(oomRecords(e.srv, counted)) == 0 {
			return errNotYet
		}
		return nil
	}); waitForErr != nil {
		return "", "", fmt.Errorf("restricted agent %s Ready (%s), metrics with names; but %w; the forker's oom_kill counter: %s", agentName, proc, waitForErr, oomKillCounter(ctx, n, forkerPath))
	}
	time.Sleep(25 * time.Second) // two more collections: a repeat would have arrived
	recs := oomRecords(e.srv, counted)
	if len(recs) != 1 {
		return "", "", fmt.Errorf("%d counter-based records after the worker's kill, want exactly 1: %v", len(recs), resources(recs))
	}
	r := recs[0]
	checks := []struct {
		what      string
		got, want any
	}{
		{"cgroup.path", r.res["cgroup.path"], forkerPath},
		{"container.id", r.res["container.id"], forkerID},
		{"k8s.pod.name", r.res["k8s.pod.name"], forker.Name},
		{"k8s.namespace.name", r.res["k8s.namespace.name"], n.ns},
		{"k8s.container.name", r.res["k8s.container.name"], "forker"},
		{"linux.oom.counted_kills", r.int("linux.oom.counted_kills"), int64(1)},
	}
	for _, c := range checks {
		if c.got != c.want {
			return "", "", fmt.Errorf("counter-based record %s = %v, want %v (resource %v, body %q)", c.what, c.got, c.want, r.res, r.body)
		}
	}
	var after corev1.Pod
	if getJSONErr := e.getJSON(ctx, &after, "pod", "-n", n.ns, forker.Name); getJSONErr != nil {
		return "", "", getJSONErr
	}
	if restarts := after.Status.ContainerStatuses[0].RestartCount; restarts != 0 {
		return "", "", fmt.Errorf("the forker restarted %d times: its main process should survive the worker's kill", restarts)
	}
	detail = fmt.Sprintf("restricted agent %s Ready (%s); metrics with names; a worker killed in container forker %s (restartCount 0) gives exactly 1 counter-based record on %s with its names; body: %q",
		agentName, proc, short(forkerID), forkerPath, r.body)
	return detail, forkerPath, nil
}

// forkerPod returns the forker's pod and its container's id.
func (e *env) forkerPod(ctx context.Context, n *node) (corev1.Pod, string, error) {
	var pods corev1.PodList
	if err := e.getJSON(ctx, &pods, "pods", "-n", n.ns, "-l", "app=forker"); err != nil {
		return corev1.Pod{}, "", err
	}
	if len(pods.Items) != 1 || len(pods.Items[0].Status.ContainerStatuses) != 1 {
		return corev1.Pod{}, "", fmt.Errorf("%d forker pods", len(pods.Items))
	}
	p := pods.Items[0]
	if p.Status.QOSClass != corev1.PodQOSBurstable {
		return corev1.Pod{}, "", fmt.Errorf("forker pod QoS %q, want Burstable", p.Status.QOSClass)
	}
	return p, trimRuntime(p.Status.ContainerStatuses[0].ContainerID), nil
}

// resources lists records' resources, for an error message.
func resources(recs []record) []map[string]string {
	out := make([]map[string]string, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.res)
	}
	return out
}

// oomKillCounter reads a cgroup's own oom_kill counter on its node.
func oomKillCounter(ctx context.Context, n *node, path string) string {
	file := "memory.oom_control"
	if n.v2() {
		file = "memory.events.local"
	}
	b, err := n.readFile(ctx, n.cgroupFile(path, file))
	if err != nil {
		return err.Error()
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "oom_kill" {
			return f[1]
		}
	}
	return "no oom_kill line in " + file
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// processOf checks, on the agent's node, the agent container's process as
// the kernel sees it: user, effective capabilities and the cgroup mount.
func processOf(ctx context.Context, n *node, agent corev1.Pod) (string, error) {
	if len(agent.Status.ContainerStatuses) != 1 {
		return "", fmt.Errorf("agent %s: %d container statuses", agent.Name, len(agent.Status.ContainerStatuses))
	}
	id := trimRuntime(agent.Status.ContainerStatuses[0].ContainerID)
	qos := strings.ToLower(string(agent.Status.QOSClass))
	procs := n.cgroupFile(n.qosContainerPath(qos, string(agent.UID), id), "cgroup.procs")
	b, err := n.readFile(ctx, procs)
	if err != nil {
		return "", fmt.Errorf("agent's cgroup: %w", err)
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return "", fmt.Errorf("no process in %s", procs)
	}
	pid := fields[0]
	status, err := n.readFile(ctx, "/proc/"+pid+"/status")
	if err != nil {
		return "", fmt.Errorf("agent process: %w", err)
	}
	var uid, capEff string
	for line := range strings.SplitSeq(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 {
			switch f[0] {
			case "Uid:":
				uid = f[1]
			case "CapEff:":
				capEff = f[1]
			}
		}
	}
	if uid != "65532" || strings.Trim(capEff, "0") != "" {
		return "", fmt.Errorf("agent process %s: uid %s, CapEff %s; want 65532 and none", pid, uid, capEff)
	}
	mounts, err := n.readFile(ctx, "/proc/"+pid+"/mountinfo")
	if err != nil {
		return "", fmt.Errorf("agent process: %w", err)
	}
	// The volume is a recursive bind of the node's tree; readOnly makes its
	// top read-only, and the hierarchies below it (v1) are what the kernel
	// and runtime make of that (containerd 1.x: no recursive read-only), so
	// their flags are reported, not required.
	opts := map[string]string{}
	for line := range strings.SplitSeq(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) >= 6 && strings.HasPrefix(f[4], "/host/sys/fs/cgroup") {
			opts[f[4]] = strings.Split(f[5], ",")[0]
		}
	}
	if opts["/host/sys/fs/cgroup"] != "ro" {
		return "", fmt.Errorf("agent process %s: /host/sys/fs/cgroup mounted %v, want ro", pid, opts)
	}
	below := "its memory hierarchy " + opts["/host/sys/fs/cgroup/memory"]
	if n.v2() {
		below = "the unified hierarchy itself"
	}
	return fmt.Sprintf("process %s: uid 65532, CapEff %s, /host/sys/fs/cgroup %s, %s", pid, capEff,
		opts["/host/sys/fs/cgroup"], below), nil
}

// killCounters tells what cgroup v1 kept of a container's kill: the pod
// cgroup's own oom_kill counter and whether the killed container's cgroup
// is still there to be read.
func killCounters(ctx context.Context, n *node, podUID, containerID string) string {
	var podKills string
	if b, err := n.readFile(ctx, n.cgroupFile(n.podPath(podUID), "memory.oom_control")); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "oom_kill" {
				podKills = f[1]
			}
		}
	}
	gone := !n.exists(ctx, n.cgroupFile(n.containerPath(podUID, containerID), ""))
	return fmt.Sprintf("the pod cgroup's oom_kill %q after three kills of its container, the killed container's cgroup exists: %v",
		podKills, !gone)
}
