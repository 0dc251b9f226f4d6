// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml" //nolint:depguard // decodes the agent's config through json tags, as the other deploy tests do

	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
)

// manifest is one YAML document of a file under deploy/kubernetes.
type manifest struct {
	file string
	obj  runtime.Object
}

// strictDecoder decodes the kinds the manifests use and fails on unknown
// or duplicate fields, as `kubectl apply --validate=strict` does.
func strictDecoder(t *testing.T) runtime.Decoder {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, rbacv1.AddToScheme, batchv1.AddToScheme, networkingv1.AddToScheme} {
		require.NoError(t, add(scheme))
	}
	return serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
}

// decodeAll splits a multi-document YAML file and decodes every document.
func decodeAll(dec runtime.Decoder, b []byte) ([]runtime.Object, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	var objs []runtime.Object
	for {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(stripComments(raw))) == 0 {
			continue
		}
		obj, _, err := dec.Decode(raw, nil, nil)
		if err != nil {
			return nil, err
		}
		objs = append(objs, obj)
	}
}

// stripComments drops comment-only lines, so that a document made of
// comments alone (a file's header) is recognized as empty.
func stripComments(b []byte) []byte {
	var out [][]byte
	for l := range bytes.SplitSeq(b, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(l), []byte("#")) {
			out = append(out, l)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

// manifests decodes every file under kubernetes/.
func manifests(t *testing.T) []manifest {
	t.Helper()
	dec := strictDecoder(t)
	var all []manifest
	err := filepath.WalkDir("kubernetes", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".yaml" {
			return err
		}
		b, err := os.ReadFile(path) //nolint:gosec // the repository's own deploy/kubernetes tree
		if err != nil {
			return err
		}
		objs, err := decodeAll(dec, b)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return nil
		}
		if len(objs) == 0 {
			t.Errorf("%s: no Kubernetes object", path)
		}
		for _, o := range objs {
			all = append(all, manifest{file: path, obj: o})
		}
		return nil
	})
	require.NoError(t, err)
	return all
}

// daemonSets returns the agent DaemonSets by file.
func daemonSets(t *testing.T) map[string]*appsv1.DaemonSet {
	t.Helper()
	out := map[string]*appsv1.DaemonSet{}
	for _, m := range manifests(t) {
		if ds, ok := m.obj.(*appsv1.DaemonSet); ok {
			out[m.file] = ds
		}
	}
	return out
}

// TestManifestsDecodeStrictly: every document under deploy/kubernetes is a
// Kubernetes object of a known kind with no unknown field; the decoder
// itself refuses a misspelled field.
func TestManifestsDecodeStrictly(t *testing.T) {
	kinds := map[string]int{}
	for _, m := range manifests(t) {
		kinds[m.obj.GetObjectKind().GroupVersionKind().Kind]++
	}
	for _, k := range []string{"Namespace", "ServiceAccount", "ConfigMap", "DaemonSet", "Deployment", "Service", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Job", "NetworkPolicy"} {
		assert.Positive(t, kinds[k], "no %s among the manifests", k)
	}
	_, err := decodeAll(strictDecoder(t), []byte("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: x}\nautomountServiceAcountToken: false\n"))
	require.Error(t, err, "a misspelled field must fail")
	assert.Contains(t, err.Error(), "automountServiceAcountToken")
}

// TestAgentConfigsValidate: the collector config of each agent ConfigMap
// and of the gateway's passes `otelcol-oomsight validate` (the
// distribution `make build` made, which e2e-k8s also runs as the gateway).
func TestAgentConfigsValidate(t *testing.T) {
	bin, err := filepath.Abs(filepath.Join("..", "_build", "otelcol-oomsight"))
	require.NoError(t, err)
	if _, err := os.Stat(bin); err != nil {
		cgrouptest.Unavailable(t, "the distribution is not built (make build): %v", err)
	}
	n := map[string]int{}
	for _, m := range manifests(t) {
		cm, ok := m.obj.(*corev1.ConfigMap)
		if !ok || cm.Name != "oomsight-agent" && cm.Name != "oomsight-gateway" {
			continue
		}
		n[cm.Name]++
		cfg := filepath.Join(t.TempDir(), "config.yaml")
		require.NoError(t, os.WriteFile(cfg, []byte(cm.Data["config.yaml"]), 0o600))
		cmd := exec.Command(bin, "validate", "--config="+cfg)
		cmd.Env = append(os.Environ(), "OTLP_ENDPOINT=gateway:4317", "POD_IP=127.0.0.1", "K8S_NODE_NAME=node-1",
			"OTLP_CA_FILE=/tls/ca.crt", "OTLP_CERT_FILE=/tls/agent.crt", "OTLP_KEY_FILE=/tls/agent.key", "BACKEND_ENDPOINT=backend:4317")
		out, err := cmd.CombinedOutput()
		assert.NoError(t, err, "%s: otelcol-oomsight validate:\n%s", m.file, out)
	}
	assert.Equal(t, map[string]int{"oomsight-agent": 2, "oomsight-gateway": 1}, n, "the default and the restricted agent config, the gateway's")
}

// TestGOMEMLIMITFollowsTheLimit: each agent's GOMEMLIMIT is 80 % of its
// memory limit, so the Go runtime collects harder before the kernel would
// OOM-kill the agent (and memory_limiter's 80 % agrees).
func TestGOMEMLIMITFollowsTheLimit(t *testing.T) {
	for file, ds := range daemonSets(t) {
		c := ds.Spec.Template.Spec.Containers[0]
		limit := c.Resources.Limits.Memory()
		require.False(t, limit.IsZero(), "%s: no memory limit", file)
		var gomem string
		for _, e := range c.Env {
			if e.Name == "GOMEMLIMIT" {
				gomem = e.Value
			}
		}
		require.NotEmpty(t, gomem, "%s: no GOMEMLIMIT", file)
		q, err := resource.ParseQuantity(strings.TrimSuffix(gomem, "B"))
		require.NoError(t, err, "%s: GOMEMLIMIT %q", file, gomem)
		assert.Equal(t, limit.Value()*8/10, q.Value(), "%s: GOMEMLIMIT %s is not 80 %% of the %s limit", file, gomem, limit)
		assert.False(t, c.Resources.Requests.Memory().IsZero(), "%s: no memory request", file)
		assert.False(t, c.Resources.Requests.Cpu().IsZero(), "%s: no CPU request", file)
	}
}

// TestAgentImageIsTheRelease: both agents run the image `make image` tags
// with builder-config.yaml's dist.version, so that a release bump that
// forgets the manifests fails here instead of deploying the old image.
func TestAgentImageIsTheRelease(t *testing.T) {
	sets := daemonSets(t)
	require.Len(t, sets, 2)
	for file, ds := range sets {
		for _, c := range ds.Spec.Template.Spec.Containers {
			assert.Equal(t, agentImage, c.Image, "%s: container %s", file, c.Name)
		}
	}
	jobs := 0
	for _, m := range manifests(t) {
		if j, ok := m.obj.(*batchv1.Job); ok {
			jobs++
			for _, c := range j.Spec.Template.Spec.Containers {
				assert.Equal(t, agentImage, c.Image, "%s: Job %s container %s (the CLI is in the agent's image)", m.file, j.Name, c.Name)
			}
		}
	}
	assert.Equal(t, 1, jobs, "the TLS Job")
}

// TestAgentPrivileges: the default agent is privileged (for /dev/kmsg)
// and shares the host's pid namespace (process snapshots); the restricted
// one has neither, no privilege, no device, no capability, a
// read-only cgroup tree, a non-root user and RuntimeDefault seccomp (which
// a privileged container does not get, so the default one does not claim
// it). Both run on every node, with a read-only root filesystem and probes.
func TestAgentPrivileges(t *testing.T) {
	sets := daemonSets(t)
	require.Len(t, sets, 2)
	for file, ds := range sets {
		spec := ds.Spec.Template.Spec
		c := spec.Containers[0]
		sc := c.SecurityContext
		require.NotNil(t, sc, file)
		assert.True(t, *sc.ReadOnlyRootFilesystem, file)
		assert.Contains(t, spec.Tolerations, corev1.Toleration{Operator: corev1.TolerationOpExists}, "%s: runs on every node", file)
		require.NotNil(t, c.LivenessProbe, file)
		require.NotNil(t, c.ReadinessProbe, file)
		mounts := map[string]corev1.VolumeMount{}
		for _, vm := range c.VolumeMounts {
			mounts[vm.MountPath] = vm
		}
		cg, ok := mounts["/host/sys/fs/cgroup"]
		require.True(t, ok, "%s: host cgroup root", file)
		var charDevs int
		for _, v := range spec.Volumes {
			if v.HostPath != nil && v.HostPath.Type != nil && *v.HostPath.Type == corev1.HostPathCharDev {
				charDevs++
			}
		}
		if strings.Contains(file, "restricted") {
			assert.Nil(t, sc.Privileged, file)
			assert.True(t, *sc.RunAsNonRoot, file)
			assert.False(t, *sc.AllowPrivilegeEscalation, file)
			assert.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop, file)
			assert.Empty(t, sc.Capabilities.Add, file)
			assert.True(t, cg.ReadOnly, "%s: cgroup root read-only", file)
			assert.Zero(t, charDevs, "%s: no device", file)
			assert.NotContains(t, mounts, "/dev/kmsg", file)
			assert.False(t, spec.HostPID, "%s: no host pid namespace", file)
			require.NotNil(t, sc.SeccompProfile, file)
			assert.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, sc.SeccompProfile.Type, file)
		} else {
			// Runtimes apply no seccomp profile to a privileged container:
			// the manifest claims none (docs/security.md).
			assert.Nil(t, sc.SeccompProfile, "%s: a seccomp profile on a privileged container is ignored", file)
			assert.Nil(t, spec.SecurityContext, "%s: nor on its pod", file)
			assert.True(t, spec.HostPID, "%s: process snapshots read other containers' /proc", file)
			assert.True(t, *sc.Privileged, file)
			assert.Equal(t, 1, charDevs, "%s: /dev/kmsg", file)
			assert.Contains(t, mounts, "/dev/kmsg", file)
			assert.Contains(t, mounts, "/var/lib/oomsight", "%s: checkpoint", file)
		}
	}
}

// TestAgentWritesPodEvents: both agents export their OOM records to
// k8s_oom_events in the logs pipeline (TestRBACIsExact: their accounts may
// create and patch events.k8s.io Events).
func TestAgentWritesPodEvents(t *testing.T) {
	for file, cfg := range agentConfigs(t) {
		assert.Contains(t, cfg, "\n  k8s_oom_events:\n    auth_type: serviceAccount\n", file)
		assert.Contains(t, cfg, "exporters: [otlp_grpc/records, k8s_oom_events]", "%s: the logs pipeline", file)
		assert.Contains(t, cfg, "\n  k8s_attributes:\n    auth_type: serviceAccount\n", file)
	}
}

// agentConfigs returns the config.yaml of each oomsight-agent ConfigMap
// under deploy/kubernetes by file: the default and the restricted agent.
func agentConfigs(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range manifests(t) {
		if o, ok := m.obj.(*corev1.ConfigMap); ok && o.Name == "oomsight-agent" {
			out[m.file] = o.Data["config.yaml"]
		}
	}
	require.Len(t, out, 2, "the default and the restricted agent")
	return out
}

// TestAgentQueues: in each agent the metrics go to the gateway through a
// queue in memory bounded in data points, the OOM records through a queue
// on disk (file_storage). Metrics are sent again at every collection; a
// queue on disk made every collection a bbolt write and cost tens of MB of
// resident memory at 1000 cgroups (docs/performance.md), which only the
// records, once lost never sent again, are worth.
func TestAgentQueues(t *testing.T) {
	type exporter struct {
		SendingQueue map[string]any `json:"sending_queue"`
	}
	type config struct {
		Exporters map[string]exporter
		Service   struct {
			Pipelines map[string]struct{ Exporters []string }
		}
	}
	for file, raw := range agentConfigs(t) {
		var cfg config
		require.NoError(t, yaml.Unmarshal([]byte(raw), &cfg), file)
		otlpOf := func(pipeline string) exporter {
			for _, name := range cfg.Service.Pipelines[pipeline].Exporters {
				if typ, _, _ := strings.Cut(name, "/"); typ == "otlp_grpc" {
					return cfg.Exporters[name]
				}
			}
			t.Fatalf("%s: the %s pipeline has no otlp_grpc exporter", file, pipeline)
			return exporter{}
		}
		metrics, logs := otlpOf("metrics"), otlpOf("logs")
		assert.Nil(t, metrics.SendingQueue["storage"], "%s: the metrics' queue is in memory", file)
		assert.Equal(t, "items", metrics.SendingQueue["sizer"], "%s: the metrics' queue is bounded in data points", file)
		assert.InDelta(t, 100000, metrics.SendingQueue["queue_size"], 0, "%s: the metrics' queue size", file)
		assert.Equal(t, "file_storage", logs.SendingQueue["storage"], "%s: the records' queue is on disk", file)
	}
}

// TestAgentCanReadItsPods: k8s_attributes in the agents lists and watches
// the pods of its own node: the token is mounted and K8S_NODE_NAME (the
// node filter) comes from spec.nodeName.
func TestAgentCanReadItsPods(t *testing.T) {
	for file, ds := range daemonSets(t) {
		spec := ds.Spec.Template.Spec
		assert.True(t, spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken, "%s: k8s_attributes needs the token", file)
		var node *corev1.EnvVar
		for i, e := range spec.Containers[0].Env {
			if e.Name == "K8S_NODE_NAME" {
				node = &spec.Containers[0].Env[i]
			}
		}
		require.NotNil(t, node, "%s: no K8S_NODE_NAME", file)
		require.NotNil(t, node.ValueFrom, file)
		assert.Equal(t, "spec.nodeName", node.ValueFrom.FieldRef.FieldPath, file)
	}
}
