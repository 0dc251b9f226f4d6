// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package e2ek8s

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
)

// gatewayName is the name the agents dial (agent.yaml's OTLP_ENDPOINT),
// which the minted certificate must carry.
const gatewayName = "oomsight-gateway.oomsight.svc.cluster.local"

// tlsProof: the Job of deploy/kubernetes/tls.yaml minted the Secret, the
// gateway's OTLP port speaks mutual TLS only: a plaintext client and a TLS
// client without the agents' certificate are refused, a client with it is
// admitted; the agents' metrics already arrive through it (manifests), so
// the agent verified the gateway and was admitted.
func (e *env) tlsProof(ctx context.Context, _ *node) (string, error) {
	var secret corev1.Secret
	if err := e.getJSON(ctx, &secret, "secret", "-n", "oomsight", "oomsight-tls"); err != nil {
		return "", err
	}
	if secret.Labels["app.kubernetes.io/managed-by"] != "oomsight-tls-secret" {
		return "", fmt.Errorf("secret oomsight-tls not made by the Job: labels %v", secret.Labels)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(secret.Data["ca.crt"]) {
		return "", errors.New("secret oomsight-tls: no CA certificate")
	}
	agentPair, err := tls.X509KeyPair(secret.Data["agent.crt"], secret.Data["agent.key"])
	if err != nil {
		return "", fmt.Errorf("secret oomsight-tls: the agents' pair: %w", err)
	}
	var pods corev1.PodList
	if err := e.getJSON(ctx, &pods, "pods", "-n", "oomsight", "-l", "app.kubernetes.io/name=oomsight-gateway"); err != nil {
		return "", err
	}
	var addr string
	for i := range pods.Items {
		p := &pods.Items[i]
		if ready(*p) && p.Status.PodIP != "" {
			addr = net.JoinHostPort(p.Status.PodIP, "4317")
			break
		}
	}
	if addr == "" {
		return "", fmt.Errorf("no Ready gateway pod among %d", len(pods.Items))
	}
	tlsTo := func(certs ...tls.Certificate) credentials.TransportCredentials {
		return credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: gatewayName, Certificates: certs, MinVersion: tls.VersionTLS13})
	}
	plainErr := export(ctx, addr, insecure.NewCredentials())
	if plainErr == nil {
		return "", fmt.Errorf("gateway %s accepted a plaintext OTLP export", addr)
	}
	anonErr := export(ctx, addr, tlsTo())
	if anonErr == nil {
		return "", fmt.Errorf("gateway %s accepted a TLS export without a client certificate", addr)
	}
	if err := export(ctx, addr, tlsTo(agentPair)); err != nil {
		return "", fmt.Errorf("gateway %s refused the agents' certificate: %w", addr, err)
	}
	return fmt.Sprintf("Job-minted Secret oomsight-tls; gateway %s refused plaintext (%s) and TLS without a client certificate (%s), admitted the agents' certificate verified as %s; the agent's metrics arrived through it (manifests)",
		addr, grpcReason(plainErr), grpcReason(anonErr), gatewayName), nil
}

// export sends one empty OTLP logs request to addr with creds.
func export(ctx context.Context, addr string, creds credentials.TransportCredentials) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = plogotlp.NewGRPCClient(conn).Export(ctx, plogotlp.NewExportRequest())
	return err
}

// grpcReason is the last part of a gRPC error, for a one-line proof.
func grpcReason(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, "desc = "); i >= 0 {
		s = s[i+len("desc = "):]
	}
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return s
}
