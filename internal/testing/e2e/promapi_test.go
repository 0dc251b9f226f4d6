// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
)

// promSample is one series of an instant query's result.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// promSeries is one series of a range vector's samples.
type promSeries struct {
	Metric map[string]string `json:"metric"`
	Values [][2]any          `json:"values"`
}

// promAPI runs an instant query at time at (zero: now) and decodes the
// result into into. Prometheus not answering (yet) is false; unlike
// promQuery, a query Prometheus rejects is a test error: a dashboard query
// with a syntax error must not look like one that found nothing yet. It
// only reports with t.Errorf, so it may run inside require.Eventually.
func promAPI(t *testing.T, addr, q string, at time.Time, into any) bool {
	t.Helper()
	v := url.Values{"query": {q}}
	if !at.IsZero() {
		v.Set("time", strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64))
	}
	resp, err := http.Get("http://" + addr + "/api/v1/query?" + v.Encode())
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return false
	}
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		t.Errorf("query %s: %v: %s", q, err, b)
		return false
	}
	if body.Status != "success" {
		t.Errorf("Prometheus rejected %s: %s", q, body.Error)
		return false
	}
	if err := json.Unmarshal(body.Data.Result, into); err != nil {
		t.Errorf("query %s: %v: %s", q, err, b)
		return false
	}
	return true
}

// promInstant is an instant query's result vector at time at (zero: now).
func promInstant(t *testing.T, addr, q string, at time.Time) []promSample {
	t.Helper()
	var r []promSample
	promAPI(t, addr, q, at, &r)
	return r
}

// promRange is the samples of a range-vector selector (sel[window]) now.
func promRange(t *testing.T, addr, q string) []promSeries {
	t.Helper()
	var r []promSeries
	promAPI(t, addr, q, time.Time{}, &r)
	return r
}

// startNodeExporter runs Debian's prometheus-node-exporter on loopback with
// only the meminfo collector (node_memory_MemTotal_bytes, the capacity the
// eviction rule needs) and returns its address.
func startNodeExporter(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus-node-exporter")
	if err != nil {
		cgrouptest.Unavailable(t, "prometheus-node-exporter is not installed (make deps installs it): %v", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(bin, "--web.listen-address="+addr, "--collector.disable-defaults", "--collector.meminfo")
	startLogged(t, cmd, filepath.Join(t.TempDir(), "node-exporter.log"))
	return addr
}

// memTotal is MemTotal of /proc/meminfo in bytes.
func memTotal(t *testing.T) float64 {
	t.Helper()
	b, err := os.ReadFile("/proc/meminfo")
	require.NoError(t, err)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "MemTotal:" && f[2] == "kB" {
			kb, err := strconv.ParseFloat(f[1], 64)
			require.NoError(t, err)
			return kb * 1024
		}
	}
	t.Fatalf("no MemTotal in /proc/meminfo")
	return 0
}
