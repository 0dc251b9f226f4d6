// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package deploy

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml" //nolint:depguard // decodes manifests into k8s.io/api types through their json tags, which go.yaml.in/yaml ignores

	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
	"github.com/oomsight/oomsight/internal/testing/otlptest"
	"github.com/oomsight/oomsight/internal/version"
)

// agentImage is what `make image` builds and the DaemonSets name: tagged
// with the release number of builder-config.yaml.
const agentImage = "localhost/otelcol-oomsight:" + version.Version

// podman runs podman with the harness's containers.conf (see newRuntime).
type podman struct {
	conf string
	// dir is the working directory of podman and so of conmon, which
	// writes a file named "oom" into it when a container is OOM-killed.
	dir string
}

// newRuntime checks for podman and the agent image and writes the
// containers.conf this machine needs: runc (crun refuses the hybrid cgroup
// layout) and no default ulimits (the sandbox cannot raise RLIMIT_NOFILE).
// These are the test harness's workarounds, not part of what users run.
func newRuntime(t *testing.T) podman {
	t.Helper()
	if os.Geteuid() != 0 {
		cgrouptest.Unavailable(t, "podman kube play of the DaemonSet needs root")
	}
	for _, bin := range []string{"podman", "runc"} {
		if _, err := exec.LookPath(bin); err != nil {
			cgrouptest.Unavailable(t, "%s is not installed (make image installs podman, runc and catatonit): %v", bin, err)
		}
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "containers.conf")
	require.NoError(t, os.WriteFile(conf, []byte("[containers]\ndefault_ulimits = []\n[engine]\nruntime = \"runc\"\n"), 0o600))
	p := podman{conf: conf, dir: dir}
	if _, err := p.run("image", "exists", agentImage); err != nil {
		cgrouptest.Unavailable(t, "the image %s is not built (make image): %v", agentImage, err)
	}
	return p
}

func (p podman) cmd(args ...string) *exec.Cmd {
	c := exec.Command("podman", args...)
	c.Env = append(os.Environ(), "CONTAINERS_CONF="+p.conf)
	c.Dir = p.dir
	return c
}

func (p podman) run(args ...string) (string, error) {
	out, err := p.cmd(args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("podman %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

func (p podman) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := p.run(args...)
	require.NoError(t, err)
	return out
}

// harness is what the test changes in the DaemonSet's pod template, and
// why: podman kube play is not a kubelet.
type harness struct {
	otlp  string // the in-test OTLP server, on loopback
	state string // a temporary directory instead of the node's /var/lib/oomsight
}

// podYAML turns a manifest file's ConfigMap and DaemonSet into what
// `podman kube play` runs: the ConfigMap as is, and a Pod whose spec is
// the DaemonSet's pod template, with the harness's changes only.
func podYAML(t *testing.T, file string, h harness) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	objs, err := decodeAll(strictDecoder(t), b)
	require.NoError(t, err)
	var cm *corev1.ConfigMap
	var ds *appsv1.DaemonSet
	for _, o := range objs {
		switch o := o.(type) {
		case *corev1.ConfigMap:
			cm = o
		case *appsv1.DaemonSet:
			ds = o
		}
	}
	require.NotNil(t, cm, "%s: no ConfigMap", file)
	require.NotNil(t, ds, "%s: no DaemonSet", file)
	pod := corev1.Pod{
		TypeMeta:   metaPod,
		ObjectMeta: ds.Spec.Template.ObjectMeta,
		Spec:       *ds.Spec.Template.Spec.DeepCopy(),
	}
	pod.Name = ds.Name
	// The OTLP server listens on the host's loopback.
	pod.Spec.HostNetwork = true
	c := &pod.Spec.Containers[0]
	for i, e := range c.Env {
		switch {
		// podman 4.3 resolves only metadata.* field references.
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName":
			c.Env[i] = corev1.EnvVar{Name: e.Name, Value: "podman-node"}
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "status.podIP":
			c.Env[i] = corev1.EnvVar{Name: e.Name, Value: "127.0.0.1"}
		case e.Name == "OTLP_ENDPOINT":
			c.Env[i].Value = h.otlp
		// The in-test OTLP server is plaintext and there is no Secret
		// under podman: the documented opt-out (TLS is proven by e2e-k8s).
		case e.Name == "OTLP_INSECURE":
			c.Env[i].Value = "true"
		case e.Name == "OTLP_CA_FILE" || e.Name == "OTLP_CERT_FILE" || e.Name == "OTLP_KEY_FILE":
			c.Env[i].Value = ""
		}
	}
	pod.Spec.Volumes = slices.DeleteFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Secret != nil })
	c.VolumeMounts = slices.DeleteFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "tls" })
	// podman 4.3 runs an httpGet probe as curl inside the container, and
	// the image has no curl: the test requests the probe's URL itself.
	c.LivenessProbe, c.ReadinessProbe = nil, nil
	// podman refuses port mappings with the host's network; the ports are
	// only declared for the probes, which the test replaces.
	c.Ports = nil
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		if v.HostPath != nil && v.HostPath.Path == "/var/lib/oomsight" {
			pod.Spec.Volumes[i].HostPath.Path = h.state
		}
	}
	cm = cm.DeepCopy()
	cm.Data["config.yaml"] = withoutAPIServer(t, cm.Data["config.yaml"])
	cmYAML, err := yaml.Marshal(cm)
	require.NoError(t, err)
	podOut, err := yaml.Marshal(pod)
	require.NoError(t, err)
	return bytes.Join([][]byte{cmYAML, podOut}, []byte("---\n"))
}

var metaPod = metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}

// withoutAPIServer takes the components that need a Kubernetes API server
// out of a collector config and its pipelines: the k8s_attributes
// processor (it lists pods) and the k8s_oom_events exporter (it writes
// Events). Under podman there is no API server, and both would stop the
// collector at start (in-cluster configuration missing).
func withoutAPIServer(t *testing.T, config string) string {
	t.Helper()
	var cfg map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(config), &cfg))
	drop := func(kind, name string) {
		comps, _ := cfg[kind].(map[string]any)
		require.Contains(t, comps, name, "the agent config has %s %s", kind, name)
		delete(comps, name)
		pipelines, _ := cfg["service"].(map[string]any)["pipelines"].(map[string]any)
		for _, p := range pipelines {
			pl := p.(map[string]any)
			var kept []any
			for _, n := range pl[kind].([]any) {
				if n != name {
					kept = append(kept, n)
				}
			}
			pl[kind] = kept
		}
	}
	drop("processors", "k8s_attributes")
	drop("exporters", "k8s_oom_events")
	out, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	return string(out)
}

// play runs the pod file until the test ends (or down is called).
func (p podman) play(t *testing.T, yamlDoc []byte) (down func()) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "pod.yaml")
	require.NoError(t, os.WriteFile(f, yamlDoc, 0o600))
	done := false
	down = func() {
		if done {
			return
		}
		done = true
		if t.Failed() {
			out, _ := p.run("logs", "--tail", "60", "oomsight-agent-agent")
			t.Logf("agent log:\n%s", out)
		}
		_, _ = p.run("kube", "down", f)
	}
	// Registered first: a play that fails half-way leaves a pod behind.
	t.Cleanup(down)
	p.must(t, "kube", "play", "--replace", f)
	return down
}

// healthy waits until the health endpoint the DaemonSet's probes use
// answers 200.
func healthy(t *testing.T, timeout time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://127.0.0.1:13133/")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, timeout, 200*time.Millisecond, "the health endpoint of the probes never answered 200")
}

// workload is a container running memhog with a 64 MiB limit, driven
// through its stdin.
type workload struct {
	id    string
	cmd   *exec.Cmd
	stdin interface{ Write([]byte) (int, error) }
}

// startWorkload builds memhog into an image of its own and starts it in a
// container limited to 64 MiB (no swap).
func (p podman) startWorkload(t *testing.T) *workload {
	t.Helper()
	dir := t.TempDir()
	bin := cgrouptest.BuildMemhog(t)
	b, err := os.ReadFile(bin)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "memhog"), b, 0o755)) //nolint:gosec // the pod runs it: it must be executable
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Containerfile"), []byte("FROM scratch\nCOPY memhog /memhog\nENTRYPOINT [\"/memhog\"]\n"), 0o600))
	p.must(t, "build", "--quiet", "--tag", "localhost/oomsight-memhog:test", dir)
	name := fmt.Sprintf("oomsight-workload-%d", time.Now().UnixNano())
	id := p.must(t, "create", "--interactive", "--name", name, "--memory", "64m", "--memory-swap", "64m", "localhost/oomsight-memhog:test")
	w := &workload{id: id, cmd: p.cmd("start", "--attach", "--interactive", id)}
	in, err := w.cmd.StdinPipe()
	require.NoError(t, err)
	w.stdin = in
	var out bytes.Buffer
	w.cmd.Stdout, w.cmd.Stderr = &out, &out
	require.NoError(t, w.cmd.Start())
	t.Cleanup(func() {
		_ = in.Close()
		_, _ = p.run("rm", "--force", id)
		_ = w.cmd.Wait()
		if t.Failed() {
			t.Logf("workload output:\n%s", out.String())
		}
	})
	return w
}

func (w *workload) do(t *testing.T, cmd string) {
	t.Helper()
	_, err := w.stdin.Write([]byte(cmd + "\n"))
	require.NoError(t, err)
}

// workloadSeen starts the workload holding 16 MiB and waits until the
// agent exports its metrics, which must name the container by its full id
// under podman's cgroup path, with runtime podman.
func (p podman) workloadSeen(t *testing.T, srv *otlptest.Server) *workload {
	t.Helper()
	w := p.startWorkload(t)
	w.do(t, "anon 16")
	require.Eventually(t, func() bool { n, _, _ := metricsOf(srv, w.id); return n > 0 }, 45*time.Second, 250*time.Millisecond,
		"no metrics for the workload container %s", w.id)
	_, rt, path := metricsOf(srv, w.id)
	assert.Equal(t, "podman", rt)
	assert.Contains(t, path, "libpod-"+w.id)
	return w
}

// metricsOf counts the metric data points whose resource is the container.
func metricsOf(srv *otlptest.Server, containerID string) (points int, runtime, path string) {
	for _, md := range srv.Metrics.AllMetrics() {
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			rm := md.ResourceMetrics().At(i)
			a := rm.Resource().Attributes()
			if str(a, "container.id") != containerID {
				continue
			}
			runtime, path = str(a, "container.runtime.name"), str(a, "cgroup.path")
			points += rm.ScopeMetrics().Len()
		}
	}
	return points, runtime, path
}

// recordsOf returns the OOM records whose resource is the container.
func recordsOf(srv *otlptest.Server, containerID string) []map[string]any {
	var recs []map[string]any
	for _, ld := range srv.Logs.AllLogs() {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			rl := ld.ResourceLogs().At(i)
			if str(rl.Resource().Attributes(), "container.id") != containerID {
				continue
			}
			for j := 0; j < rl.ScopeLogs().Len(); j++ {
				lrs := rl.ScopeLogs().At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					recs = append(recs, lrs.At(k).Attributes().AsRaw())
				}
			}
		}
	}
	return recs
}

func str(m pcommon.Map, k string) string {
	v, ok := m.Get(k)
	if !ok {
		return ""
	}
	return v.Str()
}

// TestKubePlayAgent runs the DaemonSet's pod template and ConfigMap
// (deploy/kubernetes/agent.yaml) with podman kube play, exporting to an
// in-test OTLP server, and a real container OOM-killed at its 64 MiB
// limit: its metrics carry its full container id and runtime podman, there
// is exactly one OOM record naming the victim, the container and the
// limit, and a new agent pod (the DaemonSet replacing it) does not repeat
// the kill.
func TestKubePlayAgent(t *testing.T) {
	p := newRuntime(t)
	srv := otlptest.Start(t)
	h := harness{otlp: srv.Endpoint, state: t.TempDir()}
	doc := podYAML(t, filepath.Join("kubernetes", "agent.yaml"), h)
	down := p.play(t, doc)
	healthy(t, 60*time.Second)

	w := p.workloadSeen(t, srv)

	w.do(t, "anon 300")
	_, _ = w.cmd.Process.Wait()
	oomKilled, _ := p.run("inspect", "--format", "{{.State.OOMKilled}}", w.id)
	t.Logf("podman inspect says OOMKilled=%s", oomKilled)
	require.Eventually(t, func() bool { return len(recordsOf(srv, w.id)) > 0 }, 30*time.Second, 250*time.Millisecond,
		"no OOM record for the workload container %s", w.id)
	time.Sleep(6 * time.Second) // a batch later: still one
	recs := recordsOf(srv, w.id)
	require.Len(t, recs, 1, "exactly one record for one kill")
	r := recs[0]
	assert.Equal(t, "memhog", r["process.executable.name"])
	assert.Equal(t, int64(64<<20), r["linux.oom.memcg.limit"])
	assert.Contains(t, r["linux.oom.memcg"], "libpod-"+w.id)

	// The DaemonSet replaces the pod: same node, same state directory,
	// whose checkpoint lets the new pod skip the kill it finds in the ring.
	assert.FileExists(t, filepath.Join(h.state, "oom.checkpoint"))
	down()
	before := len(srv.Metrics.AllMetrics())
	p.play(t, doc)
	healthy(t, 60*time.Second)
	require.Eventually(t, func() bool { return len(srv.Metrics.AllMetrics()) > before }, 45*time.Second, 250*time.Millisecond,
		"the new agent pod exports nothing")
	time.Sleep(6 * time.Second)
	assert.Len(t, recordsOf(srv, w.id), 1, "the new agent pod repeated the kill")
}

// TestKubePlayRestricted runs the restricted variant
// (deploy/kubernetes/restricted/agent.yaml): a non-root user, no
// capability, no /dev/kmsg, the cgroup tree read-only. The collector
// keeps running and the workload's metrics arrive.
func TestKubePlayRestricted(t *testing.T) {
	p := newRuntime(t)
	srv := otlptest.Start(t)
	doc := podYAML(t, filepath.Join("kubernetes", "restricted", "agent.yaml"), harness{otlp: srv.Endpoint})
	p.play(t, doc)
	healthy(t, 60*time.Second)

	p.workloadSeen(t, srv)
	user := p.must(t, "top", "oomsight-agent-agent", "user")
	t.Logf("podman top: %s", user)
	assert.NotContains(t, user, "root", "the restricted agent runs as a non-root user")
	state := p.must(t, "inspect", "--format", "{{.State.Status}}", "oomsight-agent-agent")
	assert.Equal(t, "running", state)
}
