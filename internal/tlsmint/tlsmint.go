// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package tlsmint mints the certificates that secure OTLP between the
// oomsight agents and their gateway when no certificate manager is
// installed: a private CA, a serving certificate for the gateway's Service
// names and one client certificate that every agent presents (mutual TLS:
// the gateway admits only agents).
//
// The CA's private key is used once, to sign the two certificates, and is
// never returned: nothing in the cluster can mint another certificate the
// gateway or the agents trust. Renewal is minting a new set (the Job of
// deploy/kubernetes/tls.yaml, after the Secret is deleted).
package tlsmint // import "github.com/oomsight/oomsight/internal/tlsmint"

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"
)

// Secret keys of a Bundle, as the manifests mount them.
const (
	KeyCA          = "ca.crt"
	KeyGatewayCert = "gateway.crt"
	KeyGatewayKey  = "gateway.key"
	KeyAgentCert   = "agent.crt"
	KeyAgentKey    = "agent.key"
)

// AgentCommonName is the subject of the agents' client certificate.
const AgentCommonName = "oomsight-agent"

// Bundle is one minted set, PEM encoded: the CA certificate (which both
// sides verify against), the gateway's serving pair and the agents'
// client pair.
type Bundle struct {
	CA                      []byte
	GatewayCert, GatewayKey []byte
	AgentCert, AgentKey     []byte
	NotAfter                time.Time
}

// Data is the bundle as a Secret's data, by the Key* names.
func (b Bundle) Data() map[string][]byte {
	return map[string][]byte{
		KeyCA: b.CA, KeyGatewayCert: b.GatewayCert, KeyGatewayKey: b.GatewayKey,
		KeyAgentCert: b.AgentCert, KeyAgentKey: b.AgentKey,
	}
}

// Mint makes a bundle valid from now (less a minute of clock skew) for
// validity, with the gateway's certificate valid for dnsNames. Keys are
// ECDSA P-256, which every TLS stack the collector uses accepts. random is
// the entropy source (crypto/rand.Reader outside tests).
func Mint(random io.Reader, now time.Time, validity time.Duration, dnsNames []string) (Bundle, error) {
	if len(dnsNames) == 0 {
		return Bundle{}, errors.New("tlsmint: the gateway certificate needs at least one DNS name")
	}
	if validity < time.Hour {
		return Bundle{}, fmt.Errorf("tlsmint: validity %s is shorter than an hour", validity)
	}
	if random == nil {
		random = rand.Reader
	}
	notBefore, notAfter := now.Add(-time.Minute).UTC(), now.Add(validity).UTC().Truncate(time.Second)

	caKey, err := ecdsa.GenerateKey(elliptic.P256(), random)
	if err != nil {
		return Bundle{}, fmt.Errorf("tlsmint: CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "oomsight OTLP CA"},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// It signs the two leaves below and nothing else.
		MaxPathLenZero: true,
	}
	caDER, ca, err := sign(random, caTmpl, nil, &caKey.PublicKey, caKey)
	if err != nil {
		return Bundle{}, fmt.Errorf("tlsmint: CA certificate: %w", err)
	}
	leaf := func(cn string, usage x509.ExtKeyUsage, dns []string) (certPEM, keyPEM []byte, err error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), random)
		if err != nil {
			return nil, nil, err
		}
		der, _, err := sign(random, &x509.Certificate{
			Subject:     pkix.Name{CommonName: cn},
			DNSNames:    dns,
			NotBefore:   notBefore,
			NotAfter:    notAfter,
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}, ca, &key.PublicKey, caKey)
		if err != nil {
			return nil, nil, err
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, nil, err
		}
		return pemBlock("CERTIFICATE", der), pemBlock("PRIVATE KEY", keyDER), nil
	}
	b := Bundle{CA: pemBlock("CERTIFICATE", caDER), NotAfter: notAfter}
	if b.GatewayCert, b.GatewayKey, err = leaf(dnsNames[0], x509.ExtKeyUsageServerAuth, dnsNames); err != nil {
		return Bundle{}, fmt.Errorf("tlsmint: gateway certificate: %w", err)
	}
	if b.AgentCert, b.AgentKey, err = leaf(AgentCommonName, x509.ExtKeyUsageClientAuth, nil); err != nil {
		return Bundle{}, fmt.Errorf("tlsmint: agent certificate: %w", err)
	}
	return b, nil
}

// sign issues tmpl (a random 128-bit serial) signed by parent's key, or
// self-signed when parent is nil.
func sign(random io.Reader, tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, signer *ecdsa.PrivateKey) ([]byte, *x509.Certificate, error) {
	serial, err := rand.Int(random, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(random, tmpl, parent, pub, signer)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return der, cert, err
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
