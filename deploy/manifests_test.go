package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

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
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, rbacv1.AddToScheme} {
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
	for _, l := range bytes.Split(b, []byte("\n")) {
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
		b, err := os.ReadFile(path)
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
	for _, k := range []string{"Namespace", "ServiceAccount", "ConfigMap", "DaemonSet", "Deployment", "Service", "ClusterRole", "ClusterRoleBinding"} {
		assert.Positive(t, kinds[k], "no %s among the manifests", k)
	}
	_, err := decodeAll(strictDecoder(t), []byte("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: x}\nautomountServiceAcountToken: false\n"))
	require.Error(t, err, "a misspelled field must fail")
	assert.Contains(t, err.Error(), "automountServiceAcountToken")
}

// TestAgentConfigsValidate: the collector config of each agent ConfigMap
// passes `otelcol-oomsight validate` (the distribution `make build` made).
func TestAgentConfigsValidate(t *testing.T) {
	bin, err := filepath.Abs(filepath.Join("..", "_build", "otelcol-oomsight"))
	require.NoError(t, err)
	if _, err := os.Stat(bin); err != nil {
		cgrouptest.Unavailable(t, "the distribution is not built (make build): %v", err)
	}
	n := 0
	for _, m := range manifests(t) {
		cm, ok := m.obj.(*corev1.ConfigMap)
		if !ok || cm.Name != "oomsight-agent" {
			continue
		}
		n++
		cfg := filepath.Join(t.TempDir(), "config.yaml")
		require.NoError(t, os.WriteFile(cfg, []byte(cm.Data["config.yaml"]), 0o600))
		cmd := exec.Command(bin, "validate", "--config="+cfg)
		cmd.Env = append(os.Environ(), "OTLP_ENDPOINT=gateway:4317", "POD_IP=127.0.0.1", "K8S_NODE_NAME=node-1")
		out, err := cmd.CombinedOutput()
		assert.NoError(t, err, "%s: otelcol-oomsight validate:\n%s", m.file, out)
	}
	assert.Equal(t, 2, n, "the default and the restricted agent config")
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
}

// TestAgentPrivileges: the default agent is privileged (for /dev/kmsg)
// and shares the host's pid namespace (process snapshots); the restricted
// one has neither, no privilege, no device, no capability, a
// read-only cgroup tree and a non-root user. Both run on every node, with
// a read-only root filesystem, RuntimeDefault seccomp and probes.
func TestAgentPrivileges(t *testing.T) {
	sets := daemonSets(t)
	require.Len(t, sets, 2)
	for file, ds := range sets {
		spec := ds.Spec.Template.Spec
		c := spec.Containers[0]
		sc := c.SecurityContext
		require.NotNil(t, sc, file)
		assert.True(t, *sc.ReadOnlyRootFilesystem, file)
		assert.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, sc.SeccompProfile.Type, file)
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
		} else {
			assert.True(t, spec.HostPID, "%s: process snapshots read other containers' /proc", file)
			assert.True(t, *sc.Privileged, file)
			assert.Equal(t, 1, charDevs, "%s: /dev/kmsg", file)
			assert.Contains(t, mounts, "/dev/kmsg", file)
			assert.Contains(t, mounts, "/var/lib/oomsight", "%s: checkpoint", file)
		}
	}
}

// TestAgentWritesPodEvents: both agents export their OOM records to
// k8s_events in the logs pipeline, and the agent's account may create
// and patch events.k8s.io Events, nothing more on events.
func TestAgentWritesPodEvents(t *testing.T) {
	roles := map[string]*rbacv1.ClusterRole{}
	var bindings []*rbacv1.ClusterRoleBinding
	agents := 0
	for _, m := range manifests(t) {
		switch o := m.obj.(type) {
		case *rbacv1.ClusterRole:
			roles[o.Name] = o
		case *rbacv1.ClusterRoleBinding:
			bindings = append(bindings, o)
		case *corev1.ConfigMap:
			if o.Name != "oomsight-agent" {
				continue
			}
			agents++
			cfg := o.Data["config.yaml"]
			assert.Contains(t, cfg, "\n  k8s_events:\n    auth_type: serviceAccount\n", m.file)
			assert.Contains(t, cfg, "exporters: [otlp_grpc, k8s_events]", "%s: the logs pipeline", m.file)
		}
	}
	assert.Equal(t, 2, agents)
	var eventRules []rbacv1.PolicyRule
	for _, b := range bindings {
		for _, s := range b.Subjects {
			if s.Kind == "ServiceAccount" && s.Name == "oomsight-agent" && s.Namespace == "oomsight" && roles[b.RoleRef.Name] != nil {
				for _, r := range roles[b.RoleRef.Name].Rules {
					if slices.Contains(r.Resources, "events") || slices.Contains(r.Resources, "*") {
						eventRules = append(eventRules, r)
					}
				}
			}
		}
	}
	require.Len(t, eventRules, 1, "one rule on events")
	assert.Equal(t, []string{"events.k8s.io"}, eventRules[0].APIGroups)
	assert.Equal(t, []string{"events"}, eventRules[0].Resources)
	assert.ElementsMatch(t, []string{"create", "patch"}, eventRules[0].Verbs)
}

// TestAgentCanReadItsPods: k8s_attributes in the agents lists and watches
// the pods of its own node, so the agent's service account is bound to a
// ClusterRole granting get, list and watch on pods, its token is mounted,
// and K8S_NODE_NAME (the node filter) comes from spec.nodeName.
func TestAgentCanReadItsPods(t *testing.T) {
	roles := map[string]*rbacv1.ClusterRole{}
	var bindings []*rbacv1.ClusterRoleBinding
	for _, m := range manifests(t) {
		switch o := m.obj.(type) {
		case *rbacv1.ClusterRole:
			roles[o.Name] = o
		case *rbacv1.ClusterRoleBinding:
			bindings = append(bindings, o)
		}
	}
	canReadPods := false
	for _, b := range bindings {
		for _, s := range b.Subjects {
			if s.Kind != "ServiceAccount" || s.Name != "oomsight-agent" || s.Namespace != "oomsight" {
				continue
			}
			role := roles[b.RoleRef.Name]
			require.NotNil(t, role, "ClusterRoleBinding %s: no ClusterRole %s", b.Name, b.RoleRef.Name)
			for _, r := range role.Rules {
				if assert.ObjectsAreEqual([]string{""}, r.APIGroups) && assert.ObjectsAreEqual([]string{"pods"}, r.Resources) {
					assert.ElementsMatch(t, []string{"get", "list", "watch"}, r.Verbs, "ClusterRole %s", role.Name)
					canReadPods = true
				}
			}
		}
	}
	assert.True(t, canReadPods, "no ClusterRole bound to oomsight/oomsight-agent grants pods")
	for file, ds := range daemonSets(t) {
		spec := ds.Spec.Template.Spec
		assert.Equal(t, "oomsight-agent", spec.ServiceAccountName, file)
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
