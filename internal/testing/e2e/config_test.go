// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestShippedConfigsValidate: every example configuration in deploy/config
// (the ones the README tells users to run) is accepted by the built
// distribution.
func TestShippedConfigsValidate(t *testing.T) {
	bin := distro(t)
	files, err := filepath.Glob("../../../deploy/config/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cmd := exec.Command(bin, "validate", "--config", f)
			cmd.Env = append(os.Environ(), "OTLP_ENDPOINT=127.0.0.1:4317")
			out, err := cmd.CombinedOutput()
			assert.NoError(t, err, "%s", out)
		})
	}
}

// TestBadConfigNamesTheKey: the distribution refuses a bad receiver
// configuration with a message that names the key.
func TestBadConfigNamesTheKey(t *testing.T) {
	bin := distro(t)
	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown key":   {"root_pth: /sys/fs/cgroup", "root_pth"},
		"bad glob":      {"include: ['/kubepods/[a']", "include[0]: bad glob"},
		"unrooted glob": {"exclude: ['system.slice/**']", `exclude[0]: glob "system.slice/**" matches no cgroup`},
		"too frequent":  {"collection_interval: 1ms", "collection_interval: 1ms is below the minimum"},
	} {
		t.Run(name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "config.yaml")
			require.NoError(t, os.WriteFile(f, []byte(`
receivers:
  cgroupmemory:
    `+tc.yaml+`
exporters:
  debug: {}
service:
  pipelines:
    metrics:
      receivers: [cgroupmemory]
      exporters: [debug]
`), 0o600))
			out, err := exec.Command(bin, "validate", "--config", f).CombinedOutput()
			require.Error(t, err)
			assert.Contains(t, string(out), tc.want)
		})
	}
}
