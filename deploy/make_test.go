// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package deploy

import (
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMakeRunInstallsOnlyWhatRunningNeeds: `make run` (the distribution on
// the console config) installs no Debian package: Prometheus and
// node_exporter are for the tests, and a person who only wants to run the
// collector should not get them. The rules check still installs
// Prometheus, so the dry runs below tell the two apart. `make -n` prints
// the recipes with DEB_TOOLS expanded (recursive makes run with -n too).
func TestMakeRunInstallsOnlyWhatRunningNeeds(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatalf("make is not installed: %v", err)
	}
	dry := func(target string) string {
		out, err := exec.Command("make", "-n", "-C", "..", target).CombinedOutput()
		require.NoError(t, err, "make -n %s: %s", target, out)
		return string(out)
	}
	run := dry("run")
	require.Contains(t, run, "otelcol-oomsight --config deploy/config/console.yaml", "the dry run did not reach the run recipe")
	for _, pkg := range []string{"prometheus", "node-exporter", "gcc"} {
		assert.NotContains(t, run, pkg, "make run must not install %s", pkg)
	}
	rules := dry("rules")
	assert.Contains(t, rules, "promtool:prometheus", "make rules no longer installs Prometheus:\n%s", rules)
}
