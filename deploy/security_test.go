// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package deploy

import (
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml" //nolint:depguard // decodes manifests into k8s.io/api types through their json tags, which go.yaml.in/yaml ignores
)

// rule is a PolicyRule in a comparable, order-free form.
func rule(groups, resources, verbs, names []string) string {
	norm := func(s []string) string {
		s = slices.Clone(s)
		slices.Sort(s)
		return strings.Join(s, ",")
	}
	return "groups=" + norm(groups) + " resources=" + norm(resources) + " verbs=" + norm(verbs) + " names=" + norm(names)
}

// grants maps each oomsight/<account> to the rules of every role bound to
// it, in any file, as rule strings.
func grants(t *testing.T) map[string][]string {
	t.Helper()
	clusterRoles := map[string][]rbacv1.PolicyRule{}
	roles := map[string][]rbacv1.PolicyRule{}
	type binding struct {
		subjects []rbacv1.Subject
		ref      rbacv1.RoleRef
	}
	var bindings []binding
	for _, m := range manifests(t) {
		switch o := m.obj.(type) {
		case *rbacv1.ClusterRole:
			clusterRoles[o.Name] = o.Rules
		case *rbacv1.Role:
			roles[o.Namespace+"/"+o.Name] = o.Rules
		case *rbacv1.ClusterRoleBinding:
			bindings = append(bindings, binding{o.Subjects, o.RoleRef})
		case *rbacv1.RoleBinding:
			ref := o.RoleRef
			if ref.Kind == "Role" {
				ref.Name = o.Namespace + "/" + ref.Name
			}
			bindings = append(bindings, binding{o.Subjects, ref})
		}
	}
	out := map[string][]string{}
	for _, b := range bindings {
		var rules []rbacv1.PolicyRule
		var ok bool
		if b.ref.Kind == "Role" {
			rules, ok = roles[b.ref.Name]
		} else {
			rules, ok = clusterRoles[b.ref.Name]
		}
		require.True(t, ok, "binding to a %s %s that no manifest defines", b.ref.Kind, b.ref.Name)
		for _, s := range b.subjects {
			require.Equal(t, "ServiceAccount", s.Kind, "only service accounts are bound")
			for _, r := range rules {
				out[s.Namespace+"/"+s.Name] = append(out[s.Namespace+"/"+s.Name], rule(r.APIGroups, r.Resources, r.Verbs, r.ResourceNames))
			}
		}
	}
	return out
}

// TestRBACIsExact: each account holds exactly what its components use,
// nothing more (docs/security.md lists why each is needed), and each
// agent variant runs with its own account.
func TestRBACIsExact(t *testing.T) {
	agentRules := []string{
		// k8s_attributes: an informer on the node's pods (list, watch).
		rule([]string{""}, []string{"pods"}, []string{"list", "watch"}, nil),
		// k8s_oom_events: an Event per OOM record, the series of repeats.
		rule([]string{"events.k8s.io"}, []string{"events"}, []string{"create", "patch"}, nil),
	}
	want := map[string][]string{
		"oomsight/oomsight-agent":            agentRules,
		"oomsight/oomsight-agent-restricted": agentRules,
		"oomsight/oomsight-gateway": {
			rule([]string{""}, []string{"pods", "namespaces"}, []string{"get", "list", "watch"}, nil),
			rule([]string{"apps"}, []string{"replicasets"}, []string{"get", "list", "watch"}, nil),
		},
		// The TLS Job: create its Secret, and read that one only.
		"oomsight/oomsight-tls": {
			rule([]string{""}, []string{"secrets"}, []string{"create"}, nil),
			rule([]string{""}, []string{"secrets"}, []string{"get"}, []string{"oomsight-tls"}),
		},
	}
	got := grants(t)
	require.Len(t, got, len(want), "the accounts with rights: %v", got)
	for account, rules := range want {
		assert.ElementsMatch(t, rules, got[account], account)
	}
	accounts := map[string]string{}
	for file, ds := range daemonSets(t) {
		accounts[file] = ds.Spec.Template.Spec.ServiceAccountName
	}
	assert.Equal(t, map[string]string{
		"kubernetes/agent.yaml":            "oomsight-agent",
		"kubernetes/restricted/agent.yaml": "oomsight-agent-restricted",
	}, accounts)
}

// objects returns the decoded manifests of type T.
func objects[T any](t *testing.T) []T {
	t.Helper()
	var out []T
	for _, m := range manifests(t) {
		if o, ok := m.obj.(T); ok {
			out = append(out, o)
		}
	}
	return out
}

// secretItems returns the keys a pod spec mounts from the Secret name at
// the mount path, and that path.
func secretItems(t *testing.T, spec corev1.PodSpec, name string) (keys []string, mountPath string) {
	t.Helper()
	for i := range spec.Volumes {
		v := &spec.Volumes[i]
		if v.Secret == nil || v.Secret.SecretName != name {
			continue
		}
		require.NotNil(t, v.Secret.DefaultMode)
		assert.Equal(t, int32(0o440), *v.Secret.DefaultMode, "the key is not world-readable")
		for _, it := range v.Secret.Items {
			keys = append(keys, it.Key)
			assert.Equal(t, it.Key, it.Path)
		}
		for _, vm := range spec.Containers[0].VolumeMounts {
			if vm.Name == v.Name {
				assert.True(t, vm.ReadOnly)
				mountPath = vm.MountPath
			}
		}
	}
	return keys, mountPath
}

// TestTLSWiring: out of the box, the gateway serves OTLP with the minted
// pair and requires the agents' client certificate; each agent verifies
// the gateway against the CA under the name it dials, presents its
// certificate, and mounts only its own key; the Job mints a certificate
// for that name.
func TestTLSWiring(t *testing.T) {
	jobs := objects[*batchv1.Job](t)
	require.Len(t, jobs, 1)
	job := jobs[0].Spec.Template.Spec
	assert.Equal(t, "oomsight-tls", job.ServiceAccountName)
	var dnsNames []string
	for _, a := range job.Containers[0].Command {
		if v, ok := strings.CutPrefix(a, "--dns="); ok {
			dnsNames = strings.Split(v, ",")
		}
	}
	assert.Contains(t, job.Containers[0].Command, "--secret=oomsight-tls")
	jsc := job.Containers[0].SecurityContext
	assert.True(t, *jsc.ReadOnlyRootFilesystem && !*jsc.AllowPrivilegeEscalation && *job.SecurityContext.RunAsNonRoot)
	assert.Equal(t, []corev1.Capability{"ALL"}, jsc.Capabilities.Drop)

	var gw *appsv1.Deployment
	for _, d := range objects[*appsv1.Deployment](t) {
		if d.Name == "oomsight-gateway" {
			gw = d
		}
	}
	require.NotNil(t, gw)
	keys, dir := secretItems(t, gw.Spec.Template.Spec, "oomsight-tls")
	assert.ElementsMatch(t, []string{"ca.crt", "gateway.crt", "gateway.key"}, keys, "the gateway mounts its pair and the CA only")
	var gwCfg struct {
		Receivers struct {
			OTLP struct {
				Protocols map[string]struct {
					TLS map[string]string `json:"tls"`
				} `json:"protocols"`
			} `json:"otlp"`
		} `json:"receivers"`
	}
	for _, cm := range objects[*corev1.ConfigMap](t) {
		if cm.Name == "oomsight-gateway" {
			require.NoError(t, yaml.Unmarshal([]byte(cm.Data["config.yaml"]), &gwCfg))
		}
	}
	require.NotEmpty(t, gwCfg.Receivers.OTLP.Protocols, "the gateway's otlp receiver")
	for proto, p := range gwCfg.Receivers.OTLP.Protocols {
		assert.Equal(t, map[string]string{
			"cert_file": dir + "/gateway.crt", "key_file": dir + "/gateway.key",
			"client_ca_file": dir + "/ca.crt", "min_version": "1.3",
		}, p.TLS, "otlp %s: mutual TLS", proto)
	}

	for file, ds := range daemonSets(t) {
		spec := ds.Spec.Template.Spec
		keys, dir := secretItems(t, spec, "oomsight-tls")
		assert.ElementsMatch(t, []string{"ca.crt", "agent.crt", "agent.key"}, keys, "%s: the agent mounts its pair and the CA only", file)
		env := map[string]string{}
		for _, e := range spec.Containers[0].Env {
			env[e.Name] = e.Value
		}
		assert.Equal(t, map[string]string{"OTLP_INSECURE": "false", "OTLP_CA_FILE": dir + "/ca.crt", "OTLP_CERT_FILE": dir + "/agent.crt", "OTLP_KEY_FILE": dir + "/agent.key"},
			map[string]string{"OTLP_INSECURE": env["OTLP_INSECURE"], "OTLP_CA_FILE": env["OTLP_CA_FILE"], "OTLP_CERT_FILE": env["OTLP_CERT_FILE"], "OTLP_KEY_FILE": env["OTLP_KEY_FILE"]}, file)
		host, _, err := net.SplitHostPort(env["OTLP_ENDPOINT"])
		require.NoError(t, err, file)
		assert.Contains(t, dnsNames, host, "%s: the gateway certificate names the host the agent dials", file)
	}
	for _, cm := range objects[*corev1.ConfigMap](t) {
		if cm.Name == "oomsight-agent" {
			assert.Contains(t, cm.Data["config.yaml"], `
    tls:
      insecure: ${env:OTLP_INSECURE:-false}
      ca_file: ${env:OTLP_CA_FILE:-}
      cert_file: ${env:OTLP_CERT_FILE:-}
      key_file: ${env:OTLP_KEY_FILE:-}
      min_version: "1.3"
`)
		}
	}
}

// TestNetworkPolicy: nothing may connect to oomsight's pods but the
// agents to the gateway's OTLP port; both agent variants carry the label
// the policy admits.
func TestNetworkPolicy(t *testing.T) {
	pols := map[string]*networkingv1.NetworkPolicy{}
	for _, p := range objects[*networkingv1.NetworkPolicy](t) {
		pols[p.Name] = p
	}
	require.Len(t, pols, 2)
	deny := pols["oomsight-deny-ingress"]
	require.NotNil(t, deny)
	assert.Empty(t, deny.Spec.PodSelector.MatchLabels, "every pod of the namespace")
	assert.Equal(t, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}, deny.Spec.PolicyTypes)
	assert.Empty(t, deny.Spec.Ingress)

	gw := pols["oomsight-gateway"]
	require.NotNil(t, gw)
	assert.Equal(t, map[string]string{"app.kubernetes.io/name": "oomsight-gateway"}, gw.Spec.PodSelector.MatchLabels)
	require.Len(t, gw.Spec.Ingress, 1)
	in := gw.Spec.Ingress[0]
	require.Len(t, in.From, 1)
	assert.Nil(t, in.From[0].NamespaceSelector, "this namespace only")
	assert.Nil(t, in.From[0].IPBlock)
	from := in.From[0].PodSelector.MatchLabels
	tcp := corev1.ProtocolTCP
	assert.Equal(t, []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: new(intstr.FromInt32(4317))}}, in.Ports)
	for file, ds := range daemonSets(t) {
		for k, v := range from {
			assert.Equal(t, v, ds.Spec.Template.Labels[k], "%s: the agent pods carry %s", file, k)
		}
	}
	for _, d := range objects[*appsv1.Deployment](t) {
		for _, p := range d.Spec.Template.Spec.Containers[0].Ports {
			if p.Name == "otlp-grpc" {
				assert.Equal(t, int32(4317), p.ContainerPort)
			}
		}
	}
}
