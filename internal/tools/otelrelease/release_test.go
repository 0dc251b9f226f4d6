// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package main

import "testing"

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		path, version string
		want          Set
		ok            bool
	}{
		{"go.opentelemetry.io/collector/component", "v1.65.0", CoreStable, true},
		{"go.opentelemetry.io/collector/component/componenttest", "v0.159.0", CoreUnstable, true},
		{"go.opentelemetry.io/collector", "v0.159.0", CoreUnstable, true},
		{"go.opentelemetry.io/collector/cmd/builder", "v0.159.0", CoreUnstable, true},
		{"go.opentelemetry.io/collector/config/configgrpc", "v1.65.0", CoreStable, true},
		{"github.com/open-telemetry/opentelemetry-collector-contrib/processor/resourceprocessor", "v0.159.0", ContribUnstable, true},
		{"github.com/open-telemetry/opentelemetry-collector-contrib/processor/k8sattributesprocessor", "v1.4.1", ContribStable, true},
		// Not the collector's releases.
		{"go.opentelemetry.io/otel", "v1.44.0", 0, false},
		{"go.opentelemetry.io/otel/sdk/metric", "v1.44.0", 0, false},
		{"go.opentelemetry.io/collectorx", "v0.1.0", 0, false},
		{"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp", "v0.70.0", 0, false},
		{"github.com/open-telemetry/opentelemetry-collector-contribx/a", "v0.1.0", 0, false},
		{"github.com/oomsight/oomsight", "v0.0.0", 0, false},
	} {
		got, ok := Classify(tc.path, tc.version)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Classify(%s, %s) = %v, %v; want %v, %v", tc.path, tc.version, got, ok, tc.want, tc.ok)
		}
	}
}

func TestNewRelease(t *testing.T) {
	for _, tc := range []struct {
		name                                 string
		core, stable, contrib, contribStable string
		want                                 Release
		wantErr                              bool
	}{
		{
			name: "before contrib's stable series", core: "v0.159.0", stable: "v1.65.0",
			want: Release{Core: "v0.159.0", CoreStable: "v1.65.0", Contrib: "v0.159.0"},
		},
		{
			name: "contrib stable derived", core: "v0.165.0", stable: "v1.71.0",
			want: Release{Core: "v0.165.0", CoreStable: "v1.71.0", Contrib: "v0.165.0", ContribStable: "v1.4.0"},
		},
		{
			name: "contrib patch release given", core: "v0.165.0", stable: "v1.71.0", contrib: "v0.165.1", contribStable: "v1.4.1",
			want: Release{Core: "v0.165.0", CoreStable: "v1.71.0", Contrib: "v0.165.1", ContribStable: "v1.4.1"},
		},
		{
			name: "first contrib stable", core: "v0.161.0", stable: "v1.67.0",
			want: Release{Core: "v0.161.0", CoreStable: "v1.67.0", Contrib: "v0.161.0", ContribStable: "v1.0.0"},
		},
		{name: "v1 given as VERSION", core: "v1.65.0", stable: "v1.65.0", wantErr: true},
		{name: "no v", core: "0.159.0", stable: "v1.65.0", wantErr: true},
		{name: "not canonical", core: "v0.159", stable: "v1.65.0", wantErr: true},
		{name: "stable not v1", core: "v0.159.0", stable: "v0.65.0", wantErr: true},
		{name: "contrib of another release", core: "v0.159.0", stable: "v1.65.0", contrib: "v0.158.0", wantErr: true},
		{name: "contrib stable not v1", core: "v0.165.0", stable: "v1.71.0", contribStable: "v0.4.0", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NewRelease(tc.core, tc.stable, tc.contrib, tc.contribStable)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tc.wantErr)
			}
			if err == nil && (got.Core != tc.want.Core || got.CoreStable != tc.want.CoreStable ||
				got.Contrib != tc.want.Contrib || got.ContribStable != tc.want.ContribStable) {
				t.Errorf("NewRelease = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestTarget(t *testing.T) {
	r := Release{
		Core: "v0.165.0", CoreStable: "v1.71.0", Contrib: "v0.165.1", ContribStable: "v1.4.1",
		Moved: map[string]string{
			"go.opentelemetry.io/collector/config/confighttp":                                            "v1.71.0",
			"github.com/open-telemetry/opentelemetry-collector-contrib/processor/k8sattributesprocessor": "v1.4.1",
		},
	}
	noContribStable := Release{Core: "v0.159.0", CoreStable: "v1.65.0", Contrib: "v0.159.0"}
	for _, tc := range []struct {
		r             Release
		path, current string
		want          string
		ok            bool
	}{
		{r, "go.opentelemetry.io/collector/component", "v1.61.0", "v1.71.0", true},
		{r, "go.opentelemetry.io/collector/cmd/mdatagen", "v0.155.0", "v0.165.0", true},
		{r, "go.opentelemetry.io/collector/config/confighttp", "v0.155.0", "v1.71.0", true},
		{r, "github.com/open-telemetry/opentelemetry-collector-contrib/processor/k8sattributesprocessor", "v0.159.0", "v1.4.1", true},
		{r, "github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusexporter", "v0.159.0", "v0.165.1", true},
		{r, "go.opentelemetry.io/otel", "v1.44.0", "", false},
		{noContribStable, "github.com/open-telemetry/opentelemetry-collector-contrib/processor/k8sattributesprocessor", "v1.0.0", "", false},
	} {
		got, ok := tc.r.Target(tc.path, tc.current)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Target(%s, %s) = %q, %v; want %q, %v", tc.path, tc.current, got, ok, tc.want, tc.ok)
		}
	}
}
