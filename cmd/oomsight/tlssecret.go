// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/oomsight/oomsight/internal/tlsmint"
)

// saDir is where the kubelet mounts a pod's service account token, the
// API server's CA and the pod's namespace.
const saDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// tlsSecret runs `oomsight tls-secret`: inside the cluster (the Job of
// deploy/kubernetes/tls.yaml), it mints the agents' and the gateway's
// certificates (package tlsmint) into one Secret, unless that Secret
// exists already (a previous run, or one a certificate manager keeps): it
// never reads, replaces or deletes an existing Secret, so its account
// needs only create, and get on that one name.
func tlsSecret(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tls-secret", flag.ContinueOnError)
	fs.SetOutput(stderr)
	namespace := fs.String("namespace", "", "the Secret's namespace (default: the pod's own)")
	name := fs.String("secret", "oomsight-tls", "the Secret's name")
	dns := fs.String("dns", "", "comma-separated DNS names of the gateway certificate, first as its subject (required)")
	validity := fs.Duration("validity", 2*365*24*time.Hour, "how long the certificates are valid")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	names := splitNames(*dns)
	if len(names) == 0 || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: oomsight tls-secret --dns NAME[,NAME...] [--namespace NS] [--secret NAME] [--validity DURATION]")
		return 2
	}
	api, err := inCluster(saDir, os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT"))
	if err != nil {
		fmt.Fprintf(stderr, "oomsight tls-secret: %v\n", err)
		return 1
	}
	if *namespace == "" {
		*namespace = api.namespace
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	msg, err := api.ensureSecret(ctx, *namespace, *name, func() (tlsmint.Bundle, error) {
		return tlsmint.Mint(rand.Reader, time.Now(), *validity, names)
	})
	if err != nil {
		fmt.Fprintf(stderr, "oomsight tls-secret: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, msg)
	return 0
}

func splitNames(s string) []string {
	var out []string
	for n := range strings.SplitSeq(s, ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// kubeAPI is the little of the Kubernetes API tls-secret uses, over HTTPS
// with the pod's service account token (no client library: two requests).
type kubeAPI struct {
	base      string // https://host:port
	token     string
	namespace string // the pod's, from the service account mount
	client    *http.Client
}

// inCluster reads the service account mount in dir and the API server's
// address as the kubelet gives it to every pod.
func inCluster(dir, host, port string) (*kubeAPI, error) {
	if host == "" || port == "" {
		return nil, errors.New("not in a Kubernetes pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set")
	}
	// The service account's files, read through a root at their folder:
	// nothing but those three names can be opened.
	sa, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("service account folder: %w", err)
	}
	defer sa.Close()
	token, err := sa.ReadFile("token")
	if err != nil {
		return nil, fmt.Errorf("service account token: %w", err)
	}
	caPEM, err := sa.ReadFile("ca.crt")
	if err != nil {
		return nil, fmt.Errorf("API server CA: %w", err)
	}
	ns, err := sa.ReadFile("namespace")
	if err != nil {
		return nil, fmt.Errorf("pod namespace: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("API server CA %s: no certificate", filepath.Join(dir, "ca.crt"))
	}
	return &kubeAPI{
		base:      "https://" + net.JoinHostPort(host, port),
		token:     strings.TrimSpace(string(token)),
		namespace: strings.TrimSpace(string(ns)),
		client: &http.Client{
			Timeout:   20 * time.Second,
			Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}},
		},
	}, nil
}

// ensureSecret creates the Secret ns/name from mint's bundle unless it
// exists; it says which happened.
func (k *kubeAPI) ensureSecret(ctx context.Context, ns, name string, mint func() (tlsmint.Bundle, error)) (string, error) {
	path := "/api/v1/namespaces/" + url.PathEscape(ns) + "/secrets"
	status, body, err := k.do(ctx, http.MethodGet, path+"/"+url.PathEscape(name), nil)
	switch {
	case err != nil:
		return "", err
	case status == http.StatusOK:
		return fmt.Sprintf("secret %s/%s exists: kept as it is (delete it and run again to mint new certificates)", ns, name), nil
	case status != http.StatusNotFound:
		return "", fmt.Errorf("get secret %s/%s: %s", ns, name, apiError(status, body))
	}
	b, err := mint()
	if err != nil {
		return "", err
	}
	obj, err := json.Marshal(map[string]any{
		"apiVersion": "v1",
		"kind":       "Secret",
		"metadata": map[string]any{
			"name":      name,
			"namespace": ns,
			"labels":    map[string]string{"app.kubernetes.io/part-of": "oomsight", "app.kubernetes.io/managed-by": "oomsight-tls-secret"},
			"annotations": map[string]string{
				"oomsight.io/not-after": b.NotAfter.Format(time.RFC3339),
			},
		},
		"type": "Opaque",
		"data": b.Data(), // []byte values marshal as base64, as the API wants
	})
	if err != nil {
		return "", fmt.Errorf("secret %s/%s: %w", ns, name, err)
	}
	status, body, err = k.do(ctx, http.MethodPost, path, obj)
	switch {
	case err != nil:
		return "", err
	case status == http.StatusCreated:
		return fmt.Sprintf("secret %s/%s created: CA, gateway and agent certificates valid until %s", ns, name, b.NotAfter.Format(time.RFC3339)), nil
	case status == http.StatusConflict:
		return fmt.Sprintf("secret %s/%s was created meanwhile by another run: kept as it is", ns, name), nil
	}
	return "", fmt.Errorf("create secret %s/%s: %s", ns, name, apiError(status, body))
}

func (k *kubeAPI) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	// k.base is the in-cluster API server (KUBERNETES_SERVICE_HOST/PORT,
	// verified against the service account's CA), path one of this file's
	// fixed Secret paths: no request goes where input chose.
	req, err := http.NewRequestWithContext(ctx, method, k.base+path, bytes.NewReader(body)) //nolint:gosec // G704: the in-cluster API server, see above
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+k.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := k.client.Do(req) //nolint:gosec // G704: the in-cluster API server, see above
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	return resp.StatusCode, out, nil
}

// apiError is the API server's Status message, or the HTTP status.
func apiError(status int, body []byte) string {
	var s struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &s) == nil && s.Message != "" {
		return fmt.Sprintf("%d %s", status, s.Message)
	}
	return fmt.Sprintf("%d %s", status, http.StatusText(status))
}
