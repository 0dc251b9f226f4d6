// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
)

// helmValues maps each values file for the upstream chart
// (open-telemetry/opentelemetry-collector) to the raw manifest whose
// agent it installs.
var helmValues = map[string]string{
	"helm/values-agent.yaml":      "kubernetes/agent.yaml",
	"helm/values-restricted.yaml": "kubernetes/restricted/agent.yaml",
}

// semantic fails the test unless want and got are semantically equal
// (resource quantities by value).
func semantic(t *testing.T, want, got any, format string, args ...any) {
	t.Helper()
	if !equality.Semantic.DeepEqual(want, got) {
		assert.Fail(t, fmt.Sprintf(format, args...), "want %+v\ngot  %+v", want, got)
	}
}

// TestHelmValuesInstallTheRawAgent: each values file asks the chart for
// what its raw manifest runs: the image, hostPID, tolerations, the
// container's and the pod's security context, resources, every volume
// and mount but the config's (the chart mounts its own ConfigMap), the
// environment (the chart sets GOMEMLIMIT itself from limits.memory), the
// ClusterRole's rules, and the collector config once Helm has removed the
// chart defaults the values null out. A missing volume or a drifted
// config fails here without a chart; TestUpstreamHelmChart renders it.
func TestHelmValuesInstallTheRawAgent(t *testing.T) {
	for values, raw := range helmValues {
		t.Run(values, func(t *testing.T) {
			b, err := os.ReadFile(values)
			require.NoError(t, err)
			v := yamlMap(t, b)
			a := rawAgentOf(t, raw)
			c := a.container(t)
			pod := a.ds.Spec.Template.Spec

			assert.Equal(t, "daemonset", v["mode"])
			img := as[struct {
				Repository string `json:"repository"`
				Tag        string `json:"tag"`
				PullPolicy string `json:"pullPolicy"`
			}](t, v["image"], "image")
			assert.Equal(t, c.Image, img.Repository+":"+img.Tag, "image")
			assert.Equal(t, string(c.ImagePullPolicy), img.PullPolicy, "image.pullPolicy")
			assert.Equal(t, map[string]any{"name": "otelcol-oomsight"}, v["command"], "the distribution's binary in the image")
			assert.Equal(t, pod.HostPID, v["hostPID"], "hostPID")
			semantic(t, pod.Tolerations, as[[]corev1.Toleration](t, v["tolerations"], "tolerations"), "tolerations")
			semantic(t, c.SecurityContext, as[*corev1.SecurityContext](t, v["securityContext"], "securityContext"), "securityContext")
			semantic(t, pod.SecurityContext, as[*corev1.PodSecurityContext](t, v["podSecurityContext"], "podSecurityContext"), "podSecurityContext")
			semantic(t, c.Resources, as[corev1.ResourceRequirements](t, v["resources"], "resources"), "resources")
			semantic(t, a.volumesBut("config"), as[[]corev1.Volume](t, v["extraVolumes"], "extraVolumes"), "extraVolumes")
			semantic(t, a.mountsBut(t, "config"), as[[]corev1.VolumeMount](t, v["extraVolumeMounts"], "extraVolumeMounts"), "extraVolumeMounts")
			var env []corev1.EnvVar
			for _, e := range c.Env {
				if e.Name != "GOMEMLIMIT" {
					env = append(env, e)
				}
			}
			semantic(t, env, as[[]corev1.EnvVar](t, v["extraEnvs"], "extraEnvs"), "extraEnvs")
			assert.True(t, v["useGOMEMLIMIT"] == nil || v["useGOMEMLIMIT"] == true, "the chart's GOMEMLIMIT (80 %% of limits.memory)")

			role := as[struct {
				Create bool                `json:"create"`
				Rules  []rbacv1.PolicyRule `json:"rules"`
			}](t, v["clusterRole"], "clusterRole")
			assert.True(t, role.Create, "clusterRole.create")
			semantic(t, a.rules, role.Rules, "clusterRole.rules")

			assert.Equal(t, a.config, withoutNulls(v["config"]), "the collector config, the chart's defaults removed")
		})
	}
}

// helmTool returns the helm binary and the chart make installers passes
// (OOMSIGHT_HELM, OOMSIGHT_OTEL_CHART), or stops the test (failing under
// CI=true).
func helmTool(t *testing.T) (helm, chart string) {
	t.Helper()
	helm, chart = os.Getenv("OOMSIGHT_HELM"), os.Getenv("OOMSIGHT_OTEL_CHART")
	if helm == "" || chart == "" {
		cgrouptest.Unavailable(t, "OOMSIGHT_HELM and OOMSIGHT_OTEL_CHART are not set: run make installers OTEL_CHART=<the opentelemetry-collector chart, directory or .tgz>")
	}
	for _, p := range []string{helm, chart} {
		if _, err := os.Stat(p); err != nil { //nolint:gosec // G703: the test's own build and chart paths
			t.Fatalf("%v", err)
		}
	}
	return helm, chart
}

// helmRun runs helm and returns its standard output.
func helmRun(t *testing.T, helm string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(helm, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "helm %s:\n%s%s", strings.Join(args, " "), out, stderr.String())
	return out
}

// rendered is what `helm template` made of the chart and a values file.
type rendered struct {
	ds     *appsv1.DaemonSet
	relay  string
	rules  []rbacv1.PolicyRule
	binder *rbacv1.ClusterRoleBinding
	sa     *corev1.ServiceAccount
}

// renderChart runs helm lint and helm template on the chart with a values
// file and decodes every object strictly.
func renderChart(t *testing.T, helm, chart, values string) rendered {
	t.Helper()
	helmRun(t, helm, "lint", chart, "--namespace", "oomsight", "-f", values)
	out := helmRun(t, helm, "template", "oomsight-agent", chart, "--namespace", "oomsight", "-f", values)
	objs, err := decodeAll(strictDecoder(t), out)
	require.NoError(t, err, "the rendered chart:\n%s", out)
	var r rendered
	for _, o := range objs {
		switch x := o.(type) {
		case *appsv1.DaemonSet:
			require.Nil(t, r.ds, "two DaemonSets")
			r.ds = x
		case *corev1.ConfigMap:
			if relay, ok := x.Data["relay"]; ok {
				r.relay = relay
			}
		case *rbacv1.ClusterRole:
			r.rules = x.Rules
		case *rbacv1.ClusterRoleBinding:
			r.binder = x
		case *corev1.ServiceAccount:
			r.sa = x
		}
	}
	require.NotNil(t, r.ds, "no DaemonSet rendered")
	require.NotEmpty(t, r.relay, "no collector config rendered")
	require.NotNil(t, r.binder, "no ClusterRoleBinding rendered")
	require.NotNil(t, r.sa, "no ServiceAccount rendered")
	return r
}

// TestUpstreamHelmChart (make installers): the upstream chart lints and
// renders with each values file; the rendered collector config is the raw
// manifest's and passes `otelcol-oomsight validate` (the chart's defaults
// alone do not: 'receivers' unknown type: "zipkin"); the DaemonSet runs
// the distribution with the raw agent's image, privileges, volumes,
// mounts and GOMEMLIMIT, under an account bound to the raw agent's rules.
func TestUpstreamHelmChart(t *testing.T) {
	helm, chart := helmTool(t)
	for values, raw := range helmValues {
		t.Run(values, func(t *testing.T) {
			a := rawAgentOf(t, raw)
			c := a.container(t)
			r := renderChart(t, helm, chart, values)

			assert.Equal(t, a.config, yamlMap(t, []byte(r.relay)), "the rendered collector config")
			validateConfig(t, []byte(r.relay), values+" rendered")

			pod := r.ds.Spec.Template.Spec
			require.Len(t, pod.Containers, 1)
			got := pod.Containers[0]
			assert.Equal(t, []string{"/otelcol-oomsight"}, got.Command)
			assert.Equal(t, []string{"--config=/conf/relay.yaml"}, got.Args)
			assert.Equal(t, c.Image, got.Image)
			assert.Equal(t, a.ds.Spec.Template.Spec.HostPID, pod.HostPID, "hostPID")
			semantic(t, c.SecurityContext, got.SecurityContext, "securityContext")
			semantic(t, c.Resources, got.Resources, "resources")
			semantic(t, a.ds.Spec.Template.Spec.Tolerations, pod.Tolerations, "tolerations")
			volumes := map[string]corev1.Volume{}
			for _, v := range pod.Volumes {
				volumes[v.Name] = v
			}
			for _, v := range a.volumesBut("config") {
				semantic(t, v, volumes[v.Name], "volume %s", v.Name)
			}
			mounts := map[string]corev1.VolumeMount{}
			for _, m := range got.VolumeMounts {
				mounts[m.Name] = m
			}
			for _, m := range a.mountsBut(t, "config") {
				semantic(t, m, mounts[m.Name], "volume mount %s", m.Name)
			}
			env := map[string]corev1.EnvVar{}
			for _, e := range got.Env {
				env[e.Name] = e
			}
			for _, e := range c.Env {
				semantic(t, e, env[e.Name], "env %s", e.Name)
			}

			assert.Equal(t, a.ds.Spec.Template.Labels["app.kubernetes.io/name"], r.ds.Spec.Template.Labels["app.kubernetes.io/name"],
				"the pods' name label, which the gateway's NetworkPolicy admits")
			assert.Equal(t, r.sa.Name, pod.ServiceAccountName)
			require.Len(t, r.binder.Subjects, 1)
			assert.Equal(t, r.sa.Name, r.binder.Subjects[0].Name)
			semantic(t, a.rules, r.rules, "ClusterRole rules")
		})
	}
}
