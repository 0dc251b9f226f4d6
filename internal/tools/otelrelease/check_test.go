// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const (
	component = "go.opentelemetry.io/collector/component"
	otlprecv  = "go.opentelemetry.io/collector/receiver/otlpreceiver"
	builder   = "go.opentelemetry.io/collector/cmd/builder"
	resproc   = "github.com/open-telemetry/opentelemetry-collector-contrib/processor/resourceprocessor"
	k8sattr   = "github.com/open-telemetry/opentelemetry-collector-contrib/processor/k8sattributesprocessor"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		reqs []Requirement
		want []string // "file path version" of each skew
	}{
		{name: "one release", reqs: []Requirement{
			{File: "go.mod", Path: component, Version: "v1.65.0"},
			{File: "go.mod", Path: otlprecv, Version: "v0.159.0"},
			{File: "internal/tools/go.mod", Path: builder, Version: "v0.159.0"},
			{File: "builder-config.yaml", Path: resproc, Version: "v0.159.0"},
			{File: "go.mod", Path: "go.opentelemetry.io/otel", Version: "v1.44.0"},
		}},
		{name: "contrib patch release", reqs: []Requirement{
			{File: "go.mod", Path: otlprecv, Version: "v0.165.0"},
			{File: "builder-config.yaml", Path: resproc, Version: "v0.165.1"},
			{File: "builder-config.yaml", Path: k8sattr, Version: "v1.4.1"},
		}},
		{name: "one v0 module behind", reqs: []Requirement{
			{File: "go.mod", Path: otlprecv, Version: "v0.159.0"},
			{File: "deploy/go.mod", Path: otlprecv, Version: "v0.155.0"},
			{File: "internal/tools/go.mod", Path: builder, Version: "v0.159.0"},
		}, want: []string{"deploy/go.mod " + otlprecv + " v0.155.0"}},
		{name: "v1 set split", reqs: []Requirement{
			{File: "go.mod", Path: component, Version: "v1.65.0"},
			{File: "deploy/go.mod", Path: component, Version: "v1.65.0"},
			{File: "builder-config.yaml", Path: "go.opentelemetry.io/collector/confmap/provider/envprovider", Version: "v1.61.0"},
		}, want: []string{"builder-config.yaml go.opentelemetry.io/collector/confmap/provider/envprovider v1.61.0"}},
		{name: "contrib on another release than core", reqs: []Requirement{
			{File: "go.mod", Path: otlprecv, Version: "v0.159.0"},
			{File: "builder-config.yaml", Path: resproc, Version: "v0.155.0"},
		}, want: []string{"builder-config.yaml " + resproc + " v0.155.0"}},
		{name: "pinned by a replace", reqs: []Requirement{
			{File: "builder-config.yaml", Path: resproc, Version: "v0.159.0"},
			{File: "builder-config.yaml", Path: "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/xk8stest", Version: "v0.149.0", Replace: true},
		}, want: []string{"builder-config.yaml github.com/open-telemetry/opentelemetry-collector-contrib/pkg/xk8stest v0.149.0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, s := range Check(tc.reqs) {
				got = append(got, s.File+" "+s.Path+" "+s.Version)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Check = %q, want %q", got, tc.want)
			}
		})
	}
}

// copyRepo copies the repository's four files that name collector modules
// into a temporary root, for check to run on as it runs in make test.
func copyRepo(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, name := range append(append([]string{}, goModFiles...), builderFile) {
		data, err := os.ReadFile(filepath.Join("..", "..", "..", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestCheckRepository runs check on the repository's own files, then on
// copies skewed one way each: a v0 module of deploy/go.mod, a v1 provider
// of builder-config.yaml, ocb in internal/tools/go.mod.
func TestCheckRepository(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"check", "-root", copyRepo(t)}, &out); err != nil {
		t.Fatalf("check on the repository: %v\n%s", err, out.String())
	}
	for _, tc := range []struct {
		file, from, to string
	}{
		{"deploy/go.mod", "go.opentelemetry.io/collector/pdata v1.", "go.opentelemetry.io/collector/pdata v1.6"},
		{"builder-config.yaml", "confmap/provider/envprovider v1.", "confmap/provider/envprovider v1.1"},
		{"internal/tools/go.mod", "go.opentelemetry.io/collector/cmd/builder v0.", "go.opentelemetry.io/collector/cmd/builder v0.1"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			root := copyRepo(t)
			path := filepath.Join(root, tc.file)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(data, []byte(tc.from)) {
				t.Fatalf("%s has no %q to skew", tc.file, tc.from)
			}
			if werr := os.WriteFile(path, bytes.Replace(data, []byte(tc.from), []byte(tc.to), 1), 0o644); werr != nil {
				t.Fatal(werr)
			}
			var out bytes.Buffer
			err = run([]string{"check", "-root", root}, &out)
			if err == nil {
				t.Fatalf("check passed on a skewed %s:\n%s", tc.file, out.String())
			}
			if !strings.HasPrefix(out.String(), tc.file+": ") || strings.Count(out.String(), "\n") != 1 {
				t.Errorf("want exactly the skewed line of %s listed, got:\n%s", tc.file, out.String())
			}
		})
	}
}
