// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReceiverInAFreshDistribution adds the receiver to someone else's ocb
// manifest as an outside module would (gomod, and a replace to this
// checkout instead of a published version) next to a core exporter only,
// builds it with the project's pinned ocb, and checks that the binary has
// the component. It also proves the receiver's module does not need the
// project's tools: they live in internal/tools, a module of their own.
func TestReceiverInAFreshDistribution(t *testing.T) {
	repo, err := filepath.Abs("../../..")
	require.NoError(t, err)
	dir := t.TempDir()
	manifest := filepath.Join(dir, "manifest.yaml")
	require.NoError(t, os.WriteFile(manifest, []byte(fmt.Sprintf(`dist:
  module: example.com/mycollector
  name: mycollector
  output_path: %s
receivers:
  - gomod: github.com/oomsight/oomsight v0.0.0
    import: github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver
exporters:
  - gomod: go.opentelemetry.io/collector/exporter/debugexporter v0.155.0
providers:
  - gomod: go.opentelemetry.io/collector/confmap/provider/fileprovider v1.61.0
replaces:
  - github.com/oomsight/oomsight => %s
`, filepath.Join(dir, "out"), repo)), 0o600))

	build := exec.Command("go", "tool", "-modfile="+filepath.Join(repo, "internal/tools/go.mod"), "builder", "--config", manifest) //nolint:gosec // the repository's pinned ocb on the test's manifest
	build.Dir = repo
	out, err := build.CombinedOutput()
	require.NoError(t, err, "ocb:\n%s", out)

	list, err := exec.Command(filepath.Join(dir, "out", "mycollector"), "components").CombinedOutput() //nolint:gosec // the collector this test just built
	require.NoError(t, err, "%s", list)
	assert.Contains(t, string(list), "cgroupmemory")

	// What importers inherit is the receiver module's go.mod: no tool
	// directive and no requirement on the tools.
	gomod, err := os.ReadFile(filepath.Join(repo, "go.mod"))
	require.NoError(t, err)
	assert.NotContains(t, string(gomod), "\ntool ")
	for _, tool := range []string{"go.opentelemetry.io/collector/cmd/mdatagen", "go.opentelemetry.io/collector/cmd/builder", "golangci-lint"} {
		assert.NotContains(t, string(gomod), tool, "go.mod requires %s", tool)
	}
}
