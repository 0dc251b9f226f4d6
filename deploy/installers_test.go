// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package deploy

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml" //nolint:depguard // decodes manifests into k8s.io/api types through their json tags, which go.yaml.in/yaml ignores

	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
)

// The Helm values and the Operator's CR install the agent of a raw
// manifest by other means; these helpers give what the raw manifest runs,
// so that the tests can hold the installers to it.

// rawAgent is what a raw agent manifest (deploy/kubernetes) runs.
type rawAgent struct {
	ds     *appsv1.DaemonSet
	rules  []rbacv1.PolicyRule
	config map[string]any
}

// rawAgentOf decodes the agent's DaemonSet, ClusterRole and collector
// config from a file under deploy/kubernetes.
func rawAgentOf(t *testing.T, file string) rawAgent {
	t.Helper()
	var a rawAgent
	for _, m := range manifests(t) {
		if m.file != file {
			continue
		}
		switch o := m.obj.(type) {
		case *appsv1.DaemonSet:
			a.ds = o
		case *rbacv1.ClusterRole:
			a.rules = o.Rules
		case *corev1.ConfigMap:
			a.config = yamlMap(t, []byte(o.Data["config.yaml"]))
		}
	}
	require.NotNil(t, a.ds, "%s: no DaemonSet", file)
	require.NotEmpty(t, a.rules, "%s: no ClusterRole", file)
	require.NotEmpty(t, a.config, "%s: no collector config", file)
	return a
}

// container is the agent's one container.
func (a rawAgent) container(t *testing.T) corev1.Container {
	t.Helper()
	require.Len(t, a.ds.Spec.Template.Spec.Containers, 1)
	return a.ds.Spec.Template.Spec.Containers[0]
}

// volumesBut returns the DaemonSet's volumes without the config
// ConfigMap's (the installers bring the config their own way).
func (a rawAgent) volumesBut(config string) []corev1.Volume {
	var out []corev1.Volume
	for i := range a.ds.Spec.Template.Spec.Volumes {
		if v := &a.ds.Spec.Template.Spec.Volumes[i]; v.Name != config {
			out = append(out, *v)
		}
	}
	return out
}

// mountsBut returns the container's mounts without the config's.
func (a rawAgent) mountsBut(t *testing.T, config string) []corev1.VolumeMount {
	t.Helper()
	var out []corev1.VolumeMount
	for _, m := range a.container(t).VolumeMounts {
		if m.Name != config {
			out = append(out, m)
		}
	}
	return out
}

// yamlMap parses a YAML object.
func yamlMap(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, yaml.Unmarshal(b, &m))
	return m
}

// as converts a generic YAML value into a Kubernetes type through JSON,
// refusing unknown fields, so that a misspelled field in a values file or
// CR fails instead of vanishing.
func as[T any](t *testing.T, v any, what string) T {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err, what)
	var out T
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&out), "%s: %s", what, b)
	return out
}

// withoutNulls drops the keys whose value is null, recursively: what Helm
// does with a null in user values (it removes the chart's default key).
func withoutNulls(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if e != nil {
				out[k] = withoutNulls(e)
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = withoutNulls(e)
		}
		return out
	default:
		return v
	}
}

// validateConfig runs `otelcol-oomsight validate` on a collector config,
// with the variables the agent's pod sets.
func validateConfig(t *testing.T, config []byte, what string) {
	t.Helper()
	bin, err := filepath.Abs(filepath.Join("..", "_build", "otelcol-oomsight"))
	require.NoError(t, err)
	if _, serr := os.Stat(bin); serr != nil {
		cgrouptest.Unavailable(t, "the distribution is not built (make build): %v", serr)
	}
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(cfg, config, 0o600))
	cmd := exec.Command(bin, "validate", "--config="+cfg)
	cmd.Env = append(os.Environ(), "OTLP_ENDPOINT=gateway:4317", "POD_IP=127.0.0.1", "K8S_NODE_NAME=node-1",
		"OTLP_CA_FILE=/tls/ca.crt", "OTLP_CERT_FILE=/tls/agent.crt", "OTLP_KEY_FILE=/tls/agent.key")
	out, err := cmd.CombinedOutput()
	assert.NoError(t, err, "%s: otelcol-oomsight validate:\n%s", what, out)
}
