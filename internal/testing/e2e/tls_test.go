// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
	"github.com/oomsight/oomsight/internal/testing/otlptest"
	"github.com/oomsight/oomsight/internal/tlsmint"
)

// TestMutualTLSAgentToGateway runs the distribution twice, as the
// manifests do: a gateway whose otlp receiver has deploy/kubernetes/
// gateway.yaml's tls block and an agent whose otlp_grpc exporter has
// agent.yaml's, both on certificates `oomsight tls-secret` mints
// (package tlsmint). The agent's metrics reach the backend through the
// gateway; a plaintext client and a TLS client without a certificate are
// refused.
func TestMutualTLSAgentToGateway(t *testing.T) {
	bin := distro(t)
	env := cgrouptest.Require(t)
	cg := env.NewCgroup(t, fmt.Sprintf("oomsight-e2e-tls-%d/kubepods/burstable/pod%s/%s", os.Getpid(), podUID, containerID))

	b, err := tlsmint.Mint(rand.Reader, time.Now(), 24*time.Hour, []string{"localhost"})
	require.NoError(t, err)
	dir := t.TempDir()
	for k, v := range b.Data() {
		require.NoError(t, os.WriteFile(filepath.Join(dir, k), v, 0o600))
	}
	backend := otlptest.Start(t)
	gw := fmt.Sprintf("localhost:%d", freePort(t))
	runDistro(t, bin, fmt.Sprintf(`
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %s
        tls:
          cert_file: %[2]s/gateway.crt
          key_file: %[2]s/gateway.key
          client_ca_file: %[2]s/ca.crt
          min_version: "1.3"
exporters:
  otlp_grpc:
    endpoint: %s
    tls:
      insecure: true
service:
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [otlp_grpc]
    logs:
      receivers: [otlp]
      exporters: [otlp_grpc]
  telemetry:
    metrics:
      level: none
`, gw, dir, backend.Endpoint))
	runDistro(t, bin, fmt.Sprintf(`
receivers:
  cgroupmemory:
    collection_interval: 200ms
    include: [%q]
exporters:
  otlp_grpc:
    endpoint: %s
    tls:
      insecure: false
      ca_file: %[3]s/ca.crt
      cert_file: %[3]s/agent.crt
      key_file: %[3]s/agent.key
      min_version: "1.3"
service:
  pipelines:
    metrics:
      receivers: [cgroupmemory]
      exporters: [otlp_grpc]
  telemetry:
    metrics:
      level: none
`, cg.Path, gw, dir))

	require.Eventually(t, func() bool {
		for _, md := range backend.Metrics.AllMetrics() {
			rms := md.ResourceMetrics()
			for i := range rms.Len() {
				if v, ok := rms.At(i).Resource().Attributes().Get("cgroup.path"); ok && v.Str() == cg.Path {
					return true
				}
			}
		}
		return false
	}, 30*time.Second, 100*time.Millisecond, "the agent's metrics never reached the backend through the TLS gateway")

	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(b.CA))
	export := func(creds credentials.TransportCredentials) error {
		conn, exportErr := grpc.NewClient(gw, grpc.WithTransportCredentials(creds))
		require.NoError(t, exportErr)
		defer conn.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		_, exportErr = plogotlp.NewGRPCClient(conn).Export(ctx, plogotlp.NewExportRequest())
		return exportErr
	}
	require.Error(t, export(insecure.NewCredentials()), "a plaintext client was admitted")
	require.Error(t, export(credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: "localhost", MinVersion: tls.VersionTLS13})),
		"a TLS client without a certificate was admitted")
	agent, err := tls.X509KeyPair(b.AgentCert, b.AgentKey)
	require.NoError(t, err)
	require.NoError(t, export(credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: "localhost", Certificates: []tls.Certificate{agent}, MinVersion: tls.VersionTLS13})),
		"the agents' certificate was refused")
}
