// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oomsight/oomsight/internal/tlsmint"
)

// apiServer stands in for the API server's two endpoints tls-secret uses,
// answering GET with getStatus and POST with postStatus, and returns the
// client tls-secret builds from a service account directory for it.
func apiServer(t *testing.T, getStatus, postStatus int, posted *map[string]any) *kubeAPI {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, `{"message":"no token"}`, http.StatusUnauthorized)
			return
		}
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/api/v1/namespaces/oomsight/secrets/oomsight-tls":
			w.WriteHeader(getStatus)
			_, _ = io.WriteString(w, `{"kind":"Status","message":"secrets \"oomsight-tls\" is forbidden: test"}`)
		case r.Method == http.MethodPost && r.URL.Path == "/api/v1/namespaces/oomsight/secrets":
			if err := json.NewDecoder(r.Body).Decode(posted); err != nil {
				t.Errorf("POST body: %v", err)
			}
			w.WriteHeader(postStatus)
		default:
			t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	for name, data := range map[string]string{"token": "tok\n", "ca.crt": string(caPEM), "namespace": "oomsight"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "https://"))
	api, err := inCluster(dir, host, port)
	if err != nil {
		t.Fatal(err)
	}
	if api.namespace != "oomsight" {
		t.Fatalf("namespace %q", api.namespace)
	}
	return api
}

func TestEnsureSecret(t *testing.T) {
	tests := []struct {
		name             string
		get, post        int
		wantMint         bool
		wantMsg, wantErr string
	}{
		{"absent: minted and created", http.StatusNotFound, http.StatusCreated, true, "created", ""},
		{"present: kept, nothing minted", http.StatusOK, 0, false, "exists: kept", ""},
		{"created meanwhile", http.StatusNotFound, http.StatusConflict, true, "meanwhile", ""},
		{"get forbidden", http.StatusForbidden, 0, false, "", "403 secrets \"oomsight-tls\" is forbidden"},
		{"create forbidden", http.StatusNotFound, http.StatusForbidden, true, "", "create secret oomsight/oomsight-tls: 403"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var posted map[string]any
			api := apiServer(t, tt.get, tt.post, &posted)
			minted := false
			msg, err := api.ensureSecret(t.Context(), "oomsight", "oomsight-tls", func() (tlsmint.Bundle, error) {
				minted = true
				return tlsmint.Mint(nil, time.Now(), 24*time.Hour, []string{"gw"})
			})
			if minted != tt.wantMint {
				t.Errorf("minted %v, want %v", minted, tt.wantMint)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !strings.Contains(msg, tt.wantMsg) {
				t.Fatalf("msg %q err %v, want %q", msg, err, tt.wantMsg)
			}
			if tt.post == http.StatusCreated {
				data, _ := posted["data"].(map[string]any)
				for _, k := range []string{tlsmint.KeyCA, tlsmint.KeyGatewayCert, tlsmint.KeyGatewayKey, tlsmint.KeyAgentCert, tlsmint.KeyAgentKey} {
					if s, _ := data[k].(string); s == "" {
						t.Errorf("posted Secret has no %s", k)
					}
				}
			}
		})
	}
}

func TestTLSSecretOutsideACluster(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	var out, errOut strings.Builder
	if code := run([]string{"tls-secret", "--dns", "gw"}, nil, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "not in a Kubernetes pod") {
		t.Errorf("code %d, stderr %q", code, errOut.String())
	}
	if code := run([]string{"tls-secret"}, nil, &out, &errOut); code != 2 {
		t.Errorf("no --dns: code %d", code)
	}
}
