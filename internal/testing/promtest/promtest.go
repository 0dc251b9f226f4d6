// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package promtest runs a real Prometheus (Debian's, installed by make
// deps) in a test and asks it PromQL, for proofs that a query written for
// someone else's metrics finds oomsight's: nothing in between is mocked.
package promtest // import "github.com/oomsight/oomsight/internal/testing/promtest"

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// Prometheus is a running Prometheus server.
type Prometheus struct {
	Addr string // host:port of its HTTP API, on loopback
}

// Start runs prometheus with the configuration (prometheus.yml's text)
// on a free loopback port until the test ends, its log shown when the
// test failed. The error names the fix when prometheus is not installed.
func Start(t testing.TB, config string) (*Prometheus, error) {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		return nil, fmt.Errorf("prometheus is not installed (make deps installs Debian's prometheus): %w", err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		return nil, fmt.Errorf("prometheus config: %w", err)
	}
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	logFile := filepath.Join(dir, "prometheus.log")
	out, err := os.Create(logFile) //nolint:gosec // the test's own temporary directory
	if err != nil {
		return nil, fmt.Errorf("prometheus log: %w", err)
	}
	cmd := exec.Command(bin, "--config.file="+cfg, //nolint:gosec // prometheus from PATH, flags of this package's own making "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		_ = out.Close()
		return nil, fmt.Errorf("start prometheus: %w", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		_ = out.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logFile) //nolint:gosec // the log this package wrote
			t.Logf("prometheus log:\n%s", b)
		}
	})
	return &Prometheus{Addr: addr}, nil
}

// FreeAddr returns a loopback host:port nobody listens on right now.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("no free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Sample is one series of an instant query's result.
type Sample struct {
	Metric map[string]string
	Value  float64
}

// Query runs an instant PromQL query. An unreachable server, a refused
// query or an unparsable answer is an error; no series is an empty result.
func (p *Prometheus) Query(ctx context.Context, q string) ([]Sample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Addr+"/api/v1/query?query="+url.QueryEscape(q), http.NoBody)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", q, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", q, err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("query %s: answer: %w", q, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", q, body.Error)
	}
	if body.Data.ResultType != "vector" {
		return nil, fmt.Errorf("query %s: a %s, want an instant vector", q, body.Data.ResultType)
	}
	out := make([]Sample, 0, len(body.Data.Result))
	for _, r := range body.Data.Result {
		s, ok := r.Value[1].(string)
		if !ok {
			return nil, fmt.Errorf("query %s: value %v", q, r.Value)
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("query %s: value: %w", q, err)
		}
		out = append(out, Sample{Metric: r.Metric, Value: v})
	}
	return out, nil
}
