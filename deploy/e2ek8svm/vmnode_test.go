// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package e2ek8svm proves the VM node of `make k8s-up NODES=both` (make
// e2e-k8s-vm): the VM's Node Ready, cgroup v2 with the kubelet's systemd
// layout inside the VM, and pods on each node reaching pods and Services
// on the other.
package e2ek8svm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/oomsight/oomsight/deploy/kubecluster"
	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
)

const (
	runEnv = "OOMSIGHT_E2E_K8S_VM" // "1" runs TestVMNode (make e2e-k8s-vm)
	ns     = "oomsight-vm-e2e"
)

// servers: on each node a CoreDNS without a Corefile (it then answers
// whoami on port 53, TCP and UDP) behind a Service of its own; Burstable,
// so that its container's cgroup is the one issue 25 names.
func serversManifest() string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n", ns)
	for _, g := range []kubecluster.Generation{kubecluster.V1, kubecluster.V2} {
		fmt.Fprintf(&b, `---
apiVersion: v1
kind: Pod
metadata:
  name: srv-%[1]s
  namespace: %[2]s
  labels: {app: srv-%[1]s}
spec:
  nodeSelector: {%[3]s: %[1]s}
  terminationGracePeriodSeconds: 1
  containers:
    - name: srv
      image: %[4]s
      imagePullPolicy: IfNotPresent
      resources:
        requests: {cpu: 10m, memory: 16Mi}
        limits: {memory: 64Mi}
---
apiVersion: v1
kind: Service
metadata:
  name: srv-%[1]s
  namespace: %[2]s
spec:
  selector: {app: srv-%[1]s}
  ports: [{name: dns-tcp, port: 53, protocol: TCP}]
`, g, ns, kubecluster.NodeLabel, kubecluster.CoreDNSImage)
	}
	return b.String()
}

// dialerManifest: a pod on node g that dials every address once (workload
// dial) and exits.
func dialerManifest(g kubecluster.Generation, addrs []string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: dial-%[1]s
  namespace: %[2]s
spec:
  nodeSelector: {%[3]s: %[1]s}
  restartPolicy: Never
  containers:
    - name: dial
      image: %[4]s
      imagePullPolicy: IfNotPresent
      command: ["/workload", "dial", "%[5]s"]
`, g, ns, kubecluster.NodeLabel, kubecluster.WorkloadImage, strings.Join(addrs, `", "`))
}

func TestVMNode(t *testing.T) {
	if os.Getenv(runEnv) != "1" {
		cgrouptest.Unavailable(t, "the VM node's end-to-end test: set %s=1 to run it (make e2e-k8s-vm builds what it needs; root)", runEnv)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 25*time.Minute)
	defer cancel()
	c, err := kubecluster.New(func(format string, args ...any) { t.Logf(format, args...) })
	if err != nil {
		t.Fatal(err)
	}
	c.NodeSet = kubecluster.Both
	t.Cleanup(func() {
		// t.Context() is canceled before cleanups run.
		if derr := c.Down(context.WithoutCancel(t.Context())); derr != nil {
			t.Errorf("down: %v", derr)
		}
	})
	t0 := time.Now()
	if err = c.Up(ctx); err != nil {
		t.Fatalf("up: %v", err)
	}
	t.Logf("E2EK8SVM up in %.0f s", time.Since(t0).Seconds())

	kubectl := func(args ...string) string {
		t.Helper()
		out, kerr := c.Kubectl(ctx, args...)
		if kerr != nil {
			t.Fatal(kerr)
		}
		return strings.TrimSpace(out)
	}
	apply := func(name, manifest string) {
		t.Helper()
		f := filepath.Join(t.TempDir(), name+".yaml")
		if werr := os.WriteFile(f, []byte(manifest), 0o600); werr != nil {
			t.Fatal(werr)
		}
		kubectl("apply", "-f", f)
	}

	// cgroup v2, unified, inside the VM.
	fs, err := c.VMExec(ctx, "stat -fc %T /sys/fs/cgroup")
	if err != nil || strings.TrimSpace(fs) != "cgroup2fs" {
		t.Fatalf("E2EK8SVM cgroup FAIL: /sys/fs/cgroup in the VM is %q (%v), want cgroup2fs", fs, err)
	}
	t.Logf("E2EK8SVM cgroup PASS node=v2 /sys/fs/cgroup is cgroup2fs")

	apply("servers", serversManifest())
	kubectl("-n", ns, "wait", "--for=condition=Ready", "pod/srv-v1", "pod/srv-v2", "--timeout=240s")
	var addrs []string
	for _, g := range []string{"v1", "v2"} {
		podIP := kubectl("-n", ns, "get", "pod", "srv-"+g, "-o", "jsonpath={.status.podIP}")
		svcIP := kubectl("-n", ns, "get", "service", "srv-"+g, "-o", "jsonpath={.spec.clusterIP}")
		addrs = append(addrs, podIP+":53", svcIP+":53")
	}

	// The systemd layout: the VM server's container in its pod's slice.
	uid := kubectl("-n", ns, "get", "pod", "srv-v2", "-o", "jsonpath={.metadata.uid}")
	cid := strings.TrimPrefix(kubectl("-n", ns, "get", "pod", "srv-v2", "-o", "jsonpath={.status.containerStatuses[0].containerID}"), "containerd://")
	want := fmt.Sprintf("/sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod%s.slice/cri-containerd-%s.scope",
		strings.ReplaceAll(uid, "-", "_"), cid)
	found, err := c.VMExec(ctx, "find /sys/fs/cgroup/kubepods.slice -type d -name 'cri-containerd-"+cid+".scope'")
	if err != nil || strings.TrimSpace(found) != want {
		t.Fatalf("E2EK8SVM systemd-layout FAIL: container %s's cgroup in the VM is %q (%v), want %s", cid, found, err, want)
	}
	files, err := c.VMExec(ctx, "cd "+want+" && ls memory.events memory.peak memory.stat memory.max memory.oom.group")
	if err != nil {
		t.Fatalf("E2EK8SVM systemd-layout FAIL: %v", err)
	}
	t.Logf("E2EK8SVM systemd-layout PASS node=v2 %s (%s)", strings.TrimPrefix(want, "/sys/fs/cgroup/"), strings.Join(strings.Fields(files), " "))

	// Both ways: each node's dialer reaches both servers' pods and Services
	// (through kube-proxy on its own node); kubectl logs of the VM's pod
	// is the API server reaching the VM's kubelet.
	for _, g := range []kubecluster.Generation{kubecluster.V1, kubecluster.V2} {
		apply("dial-"+string(g), dialerManifest(g, addrs))
	}
	for _, g := range []string{"v1", "v2"} {
		kubectl("-n", ns, "wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/dial-"+g, "--timeout=180s")
		logs := kubectl("-n", ns, "logs", "dial-"+g)
		for _, a := range addrs {
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(a) + ` open$`).MatchString(logs) {
				t.Errorf("E2EK8SVM network FAIL node=%s: %s not reached:\n%s", g, a, logs)
			}
		}
		if !t.Failed() {
			t.Logf("E2EK8SVM network PASS node=%s reached %s", g, strings.Join(addrs, " "))
		}
	}
}
