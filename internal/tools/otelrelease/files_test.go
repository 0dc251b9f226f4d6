// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"reflect"
	"strings"
	"testing"
)

const builderYAML = `# comment about v0.155.0 stays
receivers:
  - gomod: github.com/oomsight/oomsight v0.0.0
    import: github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver
  - gomod: go.opentelemetry.io/collector/receiver/otlpreceiver v0.155.0
processors:
  - gomod: github.com/open-telemetry/opentelemetry-collector-contrib/processor/k8sattributesprocessor v0.155.0 # trailing
providers:
  - gomod: go.opentelemetry.io/collector/confmap/provider/envprovider v1.61.0
replaces:
  - github.com/oomsight/oomsight => ../
  - github.com/open-telemetry/opentelemetry-collector-contrib/pkg/xk8stest v0.155.0 => github.com/open-telemetry/opentelemetry-collector-contrib/pkg/xk8stest v0.149.0
`

func TestBuilderRequirements(t *testing.T) {
	got := BuilderRequirements("b.yaml", []byte(builderYAML))
	want := []Requirement{
		{File: "b.yaml", Path: "go.opentelemetry.io/collector/receiver/otlpreceiver", Version: "v0.155.0"},
		{File: "b.yaml", Path: "github.com/open-telemetry/opentelemetry-collector-contrib/processor/k8sattributesprocessor", Version: "v0.155.0"},
		{File: "b.yaml", Path: "go.opentelemetry.io/collector/confmap/provider/envprovider", Version: "v1.61.0"},
		{File: "b.yaml", Path: "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/xk8stest", Version: "v0.149.0", Replace: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("BuilderRequirements =\n%+v\nwant\n%+v", got, want)
	}
}

func TestRewriteBuilder(t *testing.T) {
	r := Release{
		Core: "v0.165.0", CoreStable: "v1.71.0", Contrib: "v0.165.1", ContribStable: "v1.4.1",
		Moved: map[string]string{"github.com/open-telemetry/opentelemetry-collector-contrib/processor/k8sattributesprocessor": "v1.4.1"},
	}
	got := string(RewriteBuilder([]byte(builderYAML), r))
	want := strings.NewReplacer(
		"otlpreceiver v0.155.0", "otlpreceiver v0.165.0",
		"k8sattributesprocessor v0.155.0 # trailing", "k8sattributesprocessor v1.4.1 # trailing",
		"envprovider v1.61.0", "envprovider v1.71.0",
	).Replace(builderYAML)
	if got != want {
		t.Errorf("RewriteBuilder =\n%s\nwant\n%s", got, want)
	}
}

const goMod = `module example.com/m

go 1.26.8

require (
	go.opentelemetry.io/collector/component v1.61.0
	go.opentelemetry.io/collector/config/configgrpc v0.155.0 // indirect
	go.opentelemetry.io/otel v1.44.0
	github.com/open-telemetry/opentelemetry-collector-contrib/pkg/xk8stest v0.155.0 // indirect
)

replace go.opentelemetry.io/collector/pdata => go.opentelemetry.io/collector/pdata v1.60.0
`

func TestGoModRequirements(t *testing.T) {
	got, err := GoModRequirements("go.mod", []byte(goMod))
	if err != nil {
		t.Fatal(err)
	}
	want := []Requirement{
		{File: "go.mod", Path: "go.opentelemetry.io/collector/component", Version: "v1.61.0"},
		{File: "go.mod", Path: "go.opentelemetry.io/collector/config/configgrpc", Version: "v0.155.0"},
		{File: "go.mod", Path: "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/xk8stest", Version: "v0.155.0"},
		{File: "go.mod", Path: "go.opentelemetry.io/collector/pdata", Version: "v1.60.0", Replace: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("GoModRequirements =\n%+v\nwant\n%+v", got, want)
	}
	if _, err := GoModRequirements("go.mod", []byte("module\nrequire (")); err == nil {
		t.Error("a broken go.mod parsed")
	}
}

func TestRewriteGoMod(t *testing.T) {
	r := Release{
		Core: "v0.159.0", CoreStable: "v1.65.0", Contrib: "v0.159.0",
		Moved: map[string]string{"go.opentelemetry.io/collector/config/configgrpc": "v1.65.0"},
	}
	got, err := RewriteGoMod("go.mod", []byte(goMod), r)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.NewReplacer(
		"component v1.61.0", "component v1.65.0",
		"configgrpc v0.155.0 // indirect", "configgrpc v1.65.0 // indirect",
		"xk8stest v0.155.0", "xk8stest v0.159.0",
	).Replace(goMod)
	if string(got) != want {
		t.Errorf("RewriteGoMod =\n%s\nwant\n%s", got, want)
	}
}
