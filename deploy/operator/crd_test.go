// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package operator

import (
	"context"
	"os"
	"strings"
	"testing"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"
)

// crdChecker validates custom resources as the API server does for a
// CRD's version: unknown fields (which the API server would prune, and
// kubectl --validate=strict refuses), the OpenAPI schema (types, enums,
// required fields) and the CEL rules (x-kubernetes-validations).
type crdChecker struct {
	structural *structuralschema.Structural
	schema     validation.SchemaValidator
	cel        *cel.Validator
}

// newCRDChecker reads a CRD and builds the checker of one of its versions.
func newCRDChecker(t *testing.T, file, version string) crdChecker {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("the Operator's CRD: %v", err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(b, &crd); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if crd.Spec.Group != "opentelemetry.io" || crd.Spec.Names.Kind != "OpenTelemetryCollector" {
		t.Fatalf("%s is the CRD of %s/%s, not of opentelemetry.io/OpenTelemetryCollector", file, crd.Spec.Group, crd.Spec.Names.Kind)
	}
	for _, v := range crd.Spec.Versions {
		if v.Name != version {
			continue
		}
		var internal apiextensions.JSONSchemaProps
		if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v.Schema.OpenAPIV3Schema, &internal, nil); err != nil {
			t.Fatalf("%s %s: the schema: %v", file, version, err)
		}
		ss, err := structuralschema.NewStructural(&internal)
		if err != nil {
			t.Fatalf("%s %s: not a structural schema: %v", file, version, err)
		}
		sv, _, err := validation.NewSchemaValidator(&internal)
		if err != nil {
			t.Fatalf("%s %s: the schema validator: %v", file, version, err)
		}
		return crdChecker{structural: ss, schema: sv, cel: cel.NewValidator(ss, true, celconfig.PerCallLimit)}
	}
	t.Fatalf("%s has no version %s", file, version)
	return crdChecker{}
}

// check returns every problem the API server would find in obj.
func (c crdChecker) check(obj map[string]any) []string {
	var problems []string
	opts := structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true}
	for _, p := range pruning.PruneWithOptions(runtime.DeepCopyJSON(obj), c.structural, true, opts) {
		problems = append(problems, "unknown field "+p)
	}
	for _, e := range validation.ValidateCustomResource(nil, obj, c.schema) {
		problems = append(problems, e.Error())
	}
	errs, _ := c.cel.Validate(context.Background(), nil, c.structural, obj, nil, celconfig.RuntimeCELCostBudget)
	for _, e := range errs {
		problems = append(problems, e.Error())
	}
	return problems
}

// collectorCR reads agent.yaml's OpenTelemetryCollector as the API server
// would receive it (JSON numbers as int64 where integral).
func collectorCR(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile("agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(b), "\n---\n") {
		j, err := utilyaml.ToJSON([]byte(doc))
		if err != nil {
			t.Fatalf("agent.yaml: %v", err)
		}
		var u unstructured.Unstructured
		if err := u.UnmarshalJSON(j); err != nil {
			continue // a comment-only document
		}
		if u.GetKind() == "OpenTelemetryCollector" {
			return u.Object
		}
	}
	t.Fatal("agent.yaml: no OpenTelemetryCollector")
	return nil
}

// TestUpstreamOperatorCRD (make installers): agent.yaml's
// OpenTelemetryCollector passes the Operator's CRD (v1beta1) as the API
// server applies it: no unknown field, the schema and its CEL rules. The
// CRD is the one OOMSIGHT_OPERATOR_CRD names (make installers
// OTEL_OPERATOR_CRD=…). Broken copies of the CR must fail, so that a
// checker that accepts everything cannot pass.
func TestUpstreamOperatorCRD(t *testing.T) {
	crd := os.Getenv("OOMSIGHT_OPERATOR_CRD")
	if crd == "" {
		t.Fatal("OOMSIGHT_OPERATOR_CRD is not set: run make installers OTEL_OPERATOR_CRD=<opentelemetry.io_opentelemetrycollectors.yaml>")
	}
	c := newCRDChecker(t, crd, "v1beta1")
	cr := collectorCR(t)
	if problems := c.check(cr); len(problems) > 0 {
		t.Errorf("agent.yaml's OpenTelemetryCollector does not pass the CRD:\n%s", strings.Join(problems, "\n"))
	}

	for name, tc := range map[string]struct {
		edit func(spec map[string]any)
		want string
	}{
		"unknown field": {func(s map[string]any) { s["hostPid"] = true }, "unknown field spec.hostPid"},
		"bad mode":      {func(s map[string]any) { s["mode"] = "agent" }, `spec.mode: Unsupported value: "agent"`},
		"no config":     {func(s map[string]any) { delete(s, "config") }, "spec.config: Required value"},
		"sidecar rule":  {func(s map[string]any) { s["mode"] = "sidecar" }, "does not support the attribute 'tolerations'"},
	} {
		t.Run(name, func(t *testing.T) {
			broken := runtime.DeepCopyJSON(cr)
			tc.edit(broken["spec"].(map[string]any))
			problems := strings.Join(c.check(broken), "\n")
			if !strings.Contains(problems, tc.want) {
				t.Errorf("want a problem with %q, got:\n%s", tc.want, problems)
			}
		})
	}
}
