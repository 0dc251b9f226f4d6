// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package e2ek8s

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
)

// promStack is what evaluates the shipped alerts on the host: the
// distribution (an OTLP/HTTP receiver in, its prometheus exporter out)
// scraped every second by Debian's Prometheus with
// deploy/prometheus/oomsight-rules.yaml, both on free ports. The proofs
// push to it what the gateway delivered (e.srv): once (survived), or
// every second while the workload runs (eta).
type promStack struct {
	dir  string
	otlp string // the distribution's OTLP/HTTP receiver
	prom string // Prometheus's web address, for queries
	stop []func()
}

// startPromStack starts the distribution and Prometheus; close stops them.
func (e *env) startPromStack() (*promStack, error) {
	dir, err := os.MkdirTemp("", "oomsight-e2ek8s-prom-")
	if err != nil {
		return nil, err
	}
	s := &promStack{dir: dir, otlp: freeLocal(), prom: freeLocal()}
	promExp := freeLocal()
	cfg := fmt.Sprintf(`receivers:
  otlp:
    protocols:
      http:
        endpoint: %s
exporters:
  prometheus:
    endpoint: %s
    resource_to_telemetry_conversion:
      enabled: true
service:
  pipelines:
    metrics: {receivers: [otlp], exporters: [prometheus]}
  telemetry:
    metrics:
      level: none
`, s.otlp, promExp)
	if werr := os.WriteFile(filepath.Join(dir, "otelcol.yaml"), []byte(cfg), 0o600); werr != nil {
		s.close()
		return nil, werr
	}
	stopCol, err := startLogged(filepath.Join(dir, "otelcol.log"), e.repoPath("_build", "otelcol-oomsight"), "--config", filepath.Join(dir, "otelcol.yaml"))
	if err != nil {
		s.close()
		return nil, err
	}
	s.stop = append(s.stop, stopCol)
	rules := e.repoPath("deploy", "prometheus", "oomsight-rules.yaml")
	promCfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: oomsight
    static_configs:
      - targets: [%q]
`, rules, promExp)
	if werr := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(promCfg), 0o600); werr != nil {
		s.close()
		return nil, werr
	}
	stopProm, err := startLogged(filepath.Join(dir, "prometheus.log"), "prometheus", "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+s.prom)
	if err != nil {
		s.close()
		return nil, err
	}
	s.stop = append(s.stop, stopProm)
	return s, nil
}

// push sends md to the distribution's OTLP/HTTP receiver.
func (s *promStack) push(ctx context.Context, md pmetric.Metrics) error {
	body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+s.otlp+"/v1/metrics", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("OTLP/HTTP: %s", resp.Status)
	}
	return nil
}

// otelLog is the end of the distribution's log, for an error.
func (s *promStack) otelLog() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "otelcol.log"))
	return tail(string(b), 10)
}

// close stops Prometheus and the distribution and removes their files.
func (s *promStack) close() {
	for _, stop := range slices.Backward(s.stop) {
		stop()
	}
	_ = os.RemoveAll(s.dir)
}
