// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDeprecatedExporterTypeStillRuns: the Events exporter was renamed
// from k8s_events (contrib's name for a receiver that reads Events) to
// k8s_oom_events. For one release a config that still says k8s_events
// validates and runs the same exporter, and the collector warns with the
// new name; the new name runs without the warning. The exporter builds its
// client from a kubeconfig whose server is never contacted: no record
// carries a pod in this run.
func TestDeprecatedExporterTypeStillRuns(t *testing.T) {
	bin := distro(t)
	kubeconfig, err := filepath.Abs("../../../exporter/k8seventsexporter/testdata/kubeconfig")
	require.NoError(t, err)
	const warning = `"k8s_events" alias is deprecated; use "k8s_oom_events" instead`
	for _, tc := range []struct {
		typ  string
		warn bool
	}{
		{"k8s_events", true},
		{"k8s_oom_events", false},
		{"k8s_events/agent", true},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "config.yaml")
			require.NoError(t, os.WriteFile(cfg, []byte(`
receivers:
  cgroupmemory:
    collection_interval: 1s
    include: ["/no-such-cgroup-for-this-test/**"]
    oom:
      kmsg_path: ""
exporters:
  `+tc.typ+`:
    auth_type: kubeConfig
    kube_config_path: `+kubeconfig+`
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [cgroupmemory]
      exporters: [`+tc.typ+`]
`), 0o600))
			out, err := exec.Command(bin, "validate", "--config", cfg).CombinedOutput()
			require.NoError(t, err, "validate: %s", out)

			var logs syncBuffer
			cmd := exec.Command(bin, "--config", cfg)
			cmd.Stdout, cmd.Stderr = &logs, &logs
			require.NoError(t, cmd.Start())
			defer func() {
				_ = cmd.Process.Signal(syscall.SIGTERM)
				_ = cmd.Wait()
				if t.Failed() {
					t.Logf("otelcol-oomsight output:\n%s", logs.String())
				}
			}()
			require.Eventually(t, func() bool {
				return strings.Contains(logs.String(), "Everything is ready")
			}, 20*time.Second, 100*time.Millisecond, "the collector did not start")
			if tc.warn {
				assert.Contains(t, logs.String(), warning)
			} else {
				assert.NotContains(t, logs.String(), "alias is deprecated")
			}
		})
	}
}
