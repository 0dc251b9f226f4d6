// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml" //nolint:depguard // decodes manifests into k8s.io/api types through their json tags, which go.yaml.in/yaml ignores
)

// operatorCR is the spec of deploy/operator/agent.yaml's
// OpenTelemetryCollector that the test compares (opentelemetry.io/v1beta1
// field names; the Operator's CRD schema checks the whole CR in make
// installers, deploy/operator).
type operatorCR struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Spec struct {
		Mode                          string                      `json:"mode"`
		Image                         string                      `json:"image"`
		ImagePullPolicy               corev1.PullPolicy           `json:"imagePullPolicy"`
		ServiceAccount                string                      `json:"serviceAccount"`
		HostPID                       bool                        `json:"hostPID"`
		Tolerations                   []corev1.Toleration         `json:"tolerations"`
		TerminationGracePeriodSeconds *int64                      `json:"terminationGracePeriodSeconds"`
		Env                           []corev1.EnvVar             `json:"env"`
		Resources                     corev1.ResourceRequirements `json:"resources"`
		SecurityContext               *corev1.SecurityContext     `json:"securityContext"`
		PodSecurityContext            *corev1.PodSecurityContext  `json:"podSecurityContext"`
		VolumeMounts                  []corev1.VolumeMount        `json:"volumeMounts"`
		Volumes                       []corev1.Volume             `json:"volumes"`
		Config                        map[string]any              `json:"config"`
	} `json:"spec"`
}

// operatorObjects splits deploy/operator/agent.yaml into its CR (decoded
// into operatorCR, unknown fields refused) and the RBAC objects (decoded
// strictly into the Kubernetes types).
func operatorObjects(t *testing.T) (cr operatorCR, sa *corev1.ServiceAccount, role *rbacv1.ClusterRole, binding *rbacv1.ClusterRoleBinding) {
	t.Helper()
	b, err := os.ReadFile("operator/agent.yaml")
	require.NoError(t, err)
	dec := strictDecoder(t)
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	crs := 0
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		var head struct {
			Kind string `json:"kind"`
		}
		require.NoError(t, yaml.Unmarshal(doc, &head))
		if head.Kind == "OpenTelemetryCollector" {
			cr = as[operatorCR](t, yamlMap(t, doc), "the OpenTelemetryCollector")
			crs++
			continue
		}
		obj, _, err := dec.Decode(doc, nil, nil)
		require.NoError(t, err)
		switch o := obj.(type) {
		case *corev1.ServiceAccount:
			sa = o
		case *rbacv1.ClusterRole:
			role = o
		case *rbacv1.ClusterRoleBinding:
			binding = o
		default:
			t.Fatalf("operator/agent.yaml: unexpected %T", obj)
		}
	}
	require.Equal(t, 1, crs, "one OpenTelemetryCollector")
	require.NotNil(t, sa, "a ServiceAccount")
	require.NotNil(t, role, "a ClusterRole")
	require.NotNil(t, binding, "a ClusterRoleBinding")
	return cr, sa, role, binding
}

// TestOperatorCollectorInstallsTheRawAgent: the Operator's
// OpenTelemetryCollector (v1beta1, mode daemonset) runs what
// deploy/kubernetes/agent.yaml runs: its image, privileges, tolerations,
// resources, environment, every volume and mount but the config's (the
// Operator mounts its own ConfigMap), and its collector config, which
// passes `otelcol-oomsight validate`; the RBAC the Operator does not
// generate (the events exporter's create and patch, k8s_attributes' pods
// list and watch) is the raw agent's, bound to the account the CR names.
func TestOperatorCollectorInstallsTheRawAgent(t *testing.T) {
	a := rawAgentOf(t, "kubernetes/agent.yaml")
	c := a.container(t)
	pod := a.ds.Spec.Template.Spec
	cr, sa, role, binding := operatorObjects(t)

	assert.Equal(t, "opentelemetry.io/v1beta1", cr.APIVersion)
	assert.Equal(t, "OpenTelemetryCollector", cr.Kind)
	assert.Equal(t, a.ds.Namespace, cr.Metadata.Namespace)
	s := cr.Spec
	assert.Equal(t, "daemonset", s.Mode)
	assert.Equal(t, c.Image, s.Image)
	assert.Equal(t, c.ImagePullPolicy, s.ImagePullPolicy)
	assert.Equal(t, pod.HostPID, s.HostPID, "hostPID")
	semantic(t, pod.Tolerations, s.Tolerations, "tolerations")
	semantic(t, pod.TerminationGracePeriodSeconds, s.TerminationGracePeriodSeconds, "terminationGracePeriodSeconds")
	semantic(t, c.Env, s.Env, "env")
	semantic(t, c.Resources, s.Resources, "resources")
	semantic(t, c.SecurityContext, s.SecurityContext, "securityContext")
	semantic(t, pod.SecurityContext, s.PodSecurityContext, "podSecurityContext")
	semantic(t, a.volumesBut("config"), s.Volumes, "volumes")
	semantic(t, a.mountsBut(t, "config"), s.VolumeMounts, "volumeMounts")

	assert.Equal(t, a.config, s.Config, "the collector config")
	config, err := yaml.Marshal(s.Config)
	require.NoError(t, err)
	validateConfig(t, config, "operator/agent.yaml spec.config")

	assert.Equal(t, s.ServiceAccount, sa.Name, "the CR runs under the shipped account")
	assert.Equal(t, cr.Metadata.Namespace, sa.Namespace)
	semantic(t, a.rules, role.Rules, "the ClusterRole grants what the raw agent's does")
	assert.Equal(t, role.Name, binding.RoleRef.Name)
	require.Len(t, binding.Subjects, 1)
	assert.Equal(t, rbacv1.Subject{Kind: "ServiceAccount", Name: sa.Name, Namespace: sa.Namespace}, binding.Subjects[0])
}
