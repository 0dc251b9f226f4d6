// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package tlsmint

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

const gatewayName = "oomsight-gateway.oomsight.svc.cluster.local"

func mint(t *testing.T) Bundle {
	t.Helper()
	b, err := Mint(rand.Reader, time.Now(), 24*time.Hour, []string{gatewayName, "oomsight-gateway.oomsight.svc"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// handshake runs one TLS handshake over loopback between a gateway
// configured as deploy/kubernetes/gateway.yaml does (its pair, agents' CA
// required) and a client; it returns the client's and the server's error.
func handshake(t *testing.T, server tls.Certificate, serverCAs *x509.CertPool, client *tls.Config) (clientErr, serverErr error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{server},
		ClientCAs:    serverCAs,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, acceptErr := ln.Accept()
		if acceptErr != nil {
			done <- acceptErr
			return
		}
		defer c.Close()
		if acceptErr = c.(*tls.Conn).Handshake(); acceptErr != nil {
			done <- acceptErr
			return
		}
		// TLS 1.3 verifies the client's certificate after the client's
		// handshake returns: the client learns of a refusal on its read.
		_, acceptErr = c.Write([]byte("ok"))
		done <- acceptErr
	}()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), client)
	if err == nil {
		_, err = io.ReadFull(c, make([]byte, 2))
		c.Close()
	}
	return err, <-done
}

func pool(t *testing.T, pemCerts []byte) *x509.CertPool {
	t.Helper()
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pemCerts) {
		t.Fatal("no certificate in the CA PEM")
	}
	return p
}

func pair(t *testing.T, certPEM, keyPEM []byte) tls.Certificate {
	t.Helper()
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestMintedPairsHandshake: the agent, with its pair and the CA, reaches
// the gateway by its Service name; a client without a certificate, with
// another CA's certificate, or naming a host the certificate does not
// cover is refused, and the agent's certificate cannot serve.
func TestMintedPairsHandshake(t *testing.T) {
	b := mint(t)
	other := mint(t)
	gw := pair(t, b.GatewayCert, b.GatewayKey)
	agent := pair(t, b.AgentCert, b.AgentKey)
	ca := pool(t, b.CA)
	tests := []struct {
		name   string
		server tls.Certificate
		client *tls.Config
		ok     bool
	}{
		{"agent", gw, &tls.Config{RootCAs: ca, ServerName: gatewayName, Certificates: []tls.Certificate{agent}}, true},
		{"second dns name", gw, &tls.Config{RootCAs: ca, ServerName: "oomsight-gateway.oomsight.svc", Certificates: []tls.Certificate{agent}}, true},
		{"no client certificate", gw, &tls.Config{RootCAs: ca, ServerName: gatewayName}, false},
		{"another CA's client", gw, &tls.Config{RootCAs: ca, ServerName: gatewayName, Certificates: []tls.Certificate{pair(t, other.AgentCert, other.AgentKey)}}, false},
		{"another CA's gateway", pair(t, other.GatewayCert, other.GatewayKey), &tls.Config{RootCAs: ca, ServerName: gatewayName, Certificates: []tls.Certificate{agent}}, false},
		{"name not covered", gw, &tls.Config{RootCAs: ca, ServerName: "evil.example", Certificates: []tls.Certificate{agent}}, false},
		{"agent certificate as server", agent, &tls.Config{RootCAs: ca, ServerName: gatewayName, Certificates: []tls.Certificate{agent}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cerr, serr := handshake(t, tt.server, ca, tt.client)
			if tt.ok && (cerr != nil || serr != nil) {
				t.Fatalf("refused: client %v, server %v", cerr, serr)
			}
			if !tt.ok && cerr == nil && serr == nil {
				t.Fatal("admitted")
			}
		})
	}
}

// TestMintCA: the CA signs only end-entity certificates, the leaves carry
// the usage their side needs, and every certificate ends at NotAfter.
func TestMintCA(t *testing.T) {
	b := mint(t)
	parse := func(p []byte) *x509.Certificate {
		blk, _ := pem.Decode(p)
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ca, gw, agent := parse(b.CA), parse(b.GatewayCert), parse(b.AgentCert)
	if !ca.IsCA || !ca.MaxPathLenZero || ca.MaxPathLen != 0 {
		t.Errorf("CA: IsCA %v MaxPathLen %d zero %v", ca.IsCA, ca.MaxPathLen, ca.MaxPathLenZero)
	}
	if gw.IsCA || agent.IsCA {
		t.Error("a leaf is a CA")
	}
	if len(gw.ExtKeyUsage) != 1 || gw.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("gateway usage %v", gw.ExtKeyUsage)
	}
	if len(agent.ExtKeyUsage) != 1 || agent.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth || agent.Subject.CommonName != AgentCommonName {
		t.Errorf("agent usage %v subject %v", agent.ExtKeyUsage, agent.Subject)
	}
	for _, c := range []*x509.Certificate{ca, gw, agent} {
		if !c.NotAfter.Equal(b.NotAfter) {
			t.Errorf("%s: NotAfter %s, want %s", c.Subject.CommonName, c.NotAfter, b.NotAfter)
		}
	}
	if got := len(b.Data()); got != 5 {
		t.Errorf("Data has %d keys, want 5", got)
	}
}

func TestMintRefuses(t *testing.T) {
	for name, call := range map[string]func() error{
		"no dns name":    func() error { _, err := Mint(rand.Reader, time.Now(), 24*time.Hour, nil); return err },
		"short validity": func() error { _, err := Mint(rand.Reader, time.Now(), time.Minute, []string{"x"}); return err },
		"broken entropy": func() error { _, err := Mint(errReader{}, time.Now(), 24*time.Hour, []string{"x"}); return err },
	} {
		if err := call(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }
