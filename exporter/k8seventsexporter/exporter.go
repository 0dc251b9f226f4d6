// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package k8seventsexporter // import "github.com/oomsight/oomsight/exporter/k8seventsexporter"

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	coreclient "k8s.io/client-go/kubernetes/typed/core/v1"
	eventsclient "k8s.io/client-go/kubernetes/typed/events/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/oomsight/oomsight/exporter/k8seventsexporter/internal/metadata"
)

// series is what the exporter remembers of one Event it wrote: where it
// is, how many kills it counts and the span of their times.
type series struct {
	name, namespace string
	count           int32
	last            time.Time
}

// eventsExporter writes OOM records as Events. One push at a time (mu):
// kills are rare, and the series of one container must be counted in
// order.
type eventsExporter struct {
	cfg    *Config
	logger *zap.Logger
	tb     *metadata.TelemetryBuilder
	m      mapping

	mu     sync.Mutex
	client eventsclient.EventsV1Interface
	pods   coreclient.PodsGetter // names the pod of a record without them (lookup.go)
	cache  *lru.Cache[string, *series]
}

func newExporter(cfg *Config, set exporter.Settings) (*eventsExporter, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("k8s_oom_events telemetry: %w", err)
	}
	cache, err := lru.New[string, *series](cfg.CacheSize)
	if err != nil {
		return nil, fmt.Errorf("k8s_oom_events cache_size: %w", err)
	}
	host, _ := os.Hostname() // only the last resort for reportingInstance
	return &eventsExporter{
		cfg:    cfg,
		logger: set.Logger,
		tb:     tb,
		m:      mapping{controller: cfg.ReportingController, instance: cfg.ReportingInstance, host: host, cmdline: cfg.IncludeCommandLine},
		cache:  cache,
	}, nil
}

// start builds the API clients; nothing is read from the API server
// until a record needs its pod looked up.
func (e *eventsExporter) start(context.Context, component.Host) error {
	rc, err := restConfig(e.cfg)
	if err != nil {
		return err
	}
	rc.QPS, rc.Burst = e.cfg.QPS, e.cfg.Burst
	rc.UserAgent = "otelcol-oomsight/k8s_oom_events"
	c, err := eventsclient.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("k8s_oom_events: the events.k8s.io/v1 client: %w", err)
	}
	core, err := coreclient.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("k8s_oom_events: the v1 client: %w", err)
	}
	e.mu.Lock()
	e.client, e.pods = c, core
	e.mu.Unlock()
	return nil
}

func (e *eventsExporter) shutdown(context.Context) error {
	e.tb.Shutdown()
	return nil
}

// restConfig is the API server's address and credentials for auth_type.
func restConfig(cfg *Config) (*rest.Config, error) {
	if cfg.AuthType == AuthServiceAccount {
		rc, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("k8s_oom_events auth_type %s: %w (outside a pod, set auth_type: %s)", AuthServiceAccount, err, AuthKubeConfig)
		}
		return rc, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if cfg.KubeConfigPath != "" {
		rules.ExplicitPath = cfg.KubeConfigPath
	}
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: cfg.Context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("k8s_oom_events auth_type %s (kube_config_path %q, context %q): %w", AuthKubeConfig, cfg.KubeConfigPath, cfg.Context, err)
	}
	return rc, nil
}

// pushLogs writes each OOM record that names a pod as an Event. Records
// without a pod are counted and dropped; a permanent refusal is counted,
// logged and dropped; a transient failure (API server down or slow, 5xx,
// 408, 409 on a patch, 429) returns the records not yet written for the
// exporter helper to retry, so that none is written twice.
func (e *eventsExporter) pushLogs(ctx context.Context, ld plog.Logs) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	var (
		transient error
		refused   []error
		retry     = plog.NewLogs()
	)
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		rl := ld.ResourceLogs().At(i)
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			sl := rl.ScopeLogs().At(j)
			var keep plog.LogRecordSlice // the records to retry under rl and sl
			for n := 0; n < sl.LogRecords().Len(); n++ {
				lr := sl.LogRecords().At(n)
				if transient == nil {
					err := e.export(ctx, rl, lr, now)
					switch {
					case err == nil:
						continue
					case isPermanent(err):
						e.tb.K8sEventsRecordsDropped.Add(ctx, 1, dropped(dropRefused))
						e.logger.Warn("k8s_oom_events: the API server refused the Event; the record is dropped", zap.Error(err))
						refused = append(refused, err)
						continue
					default:
						transient = err
					}
				}
				if keep == (plog.LogRecordSlice{}) {
					rr := retry.ResourceLogs().AppendEmpty()
					rl.Resource().CopyTo(rr.Resource())
					rs := rr.ScopeLogs().AppendEmpty()
					sl.Scope().CopyTo(rs.Scope())
					keep = rs.LogRecords()
				}
				lr.CopyTo(keep.AppendEmpty())
			}
		}
	}
	if transient != nil {
		return consumererror.NewLogs(fmt.Errorf("k8s_oom_events: %w", transient), retry)
	}
	if len(refused) > 0 {
		return consumererror.NewPermanent(fmt.Errorf("k8s_oom_events: %w", errors.Join(refused...)))
	}
	return nil
}

// export writes one record: nil when written or dropped for a reason of
// its own (counted and logged at debug).
func (e *eventsExporter) export(ctx context.Context, rl plog.ResourceLogs, lr plog.LogRecord, now time.Time) error {
	k, drop := e.m.toKill(rl.Resource(), lr, now)
	if drop == "" && k.lookup {
		var err error
		switch drop, err = e.lookup(ctx, &k); {
		case err != nil && isPermanent(err):
			// 403 without RBAC's list on pods: the kill's Event cannot
			// name its pod, but the next record may have the names.
			e.logger.Warn("k8s_oom_events: the record has no pod name and the pods of its node cannot be listed; the record is dropped", zap.String("pod_uid", string(k.podUID)), zap.Error(err))
			drop = dropNoPod
		case err != nil:
			return err
		case drop == "":
			e.logger.Debug("k8s_oom_events: pod looked up", zap.String("namespace", k.namespace), zap.String("name", k.podName), zap.String("container", k.container))
		}
	}
	if drop != "" {
		e.tb.K8sEventsRecordsDropped.Add(ctx, 1, dropped(drop))
		e.logger.Debug("k8s_oom_events: record dropped", zap.String("reason", drop), zap.String("event_name", lr.EventName()))
		return nil
	}
	return e.send(ctx, k)
}

// send patches the series of the container's Event when the exporter
// remembers one, else creates an Event; a 404 on the patch (the Event
// expired: the API server keeps Events for --event-ttl, 1 h by default)
// creates a new one. A kill not later than the series' last one is one
// already counted (a retried request) and is not counted again.
func (e *eventsExporter) send(ctx context.Context, k kill) error {
	if e.client == nil {
		return errors.New("not started")
	}
	key := k.key()
	if s, ok := e.cache.Get(key); ok {
		if !k.at.After(s.last) {
			return nil
		}
		next := eventsv1.EventSeries{Count: max(s.count, 1) + k.n, LastObservedTime: metav1.NewMicroTime(k.at)}
		patch, err := json.Marshal(map[string]any{"series": next})
		if err != nil {
			return fmt.Errorf("the series patch of Event %s/%s: %w", s.namespace, s.name, err)
		}
		_, err = e.client.Events(s.namespace).Patch(ctx, s.name, types.MergePatchType, patch, metav1.PatchOptions{})
		if err == nil {
			s.count, s.last = next.Count, k.at
			e.tb.K8sEventsEventsUpdated.Add(ctx, 1)
			e.logger.Debug("k8s_oom_events: Event series patched", zap.String("namespace", s.namespace), zap.String("name", s.name), zap.Int32("count", s.count))
			return nil
		}
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("patching the series of Event %s/%s on pod %s: %w", s.namespace, s.name, k.podName, err)
		}
		e.cache.Remove(key)
	}
	ev := e.m.event(k)
	_, err := e.client.Events(ev.Namespace).Create(ctx, ev, metav1.CreateOptions{})
	switch {
	case err == nil:
		e.tb.K8sEventsEventsCreated.Add(ctx, 1)
		e.logger.Debug("k8s_oom_events: Event created", zap.String("namespace", ev.Namespace), zap.String("name", ev.Name))
	case apierrors.IsAlreadyExists(err):
		// The name is the kill's: an earlier try of this request created it.
	default:
		return fmt.Errorf("creating Event %s/%s on pod %s: %w", ev.Namespace, ev.Name, k.podName, err)
	}
	e.cache.Add(key, &series{name: ev.Name, namespace: ev.Namespace, count: k.n, last: k.at})
	return nil
}

// isPermanent tells a refusal that a retry cannot change: a 4xx answer
// other than 408 (timeout), 409 (conflict: retried) and 429 (throttled).
// Everything else (no answer, 5xx) is transient.
func isPermanent(err error) bool {
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		return false
	}
	code := int(st.Status().Code)
	return code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusConflict && code != http.StatusTooManyRequests
}

func dropped(reason string) metric.AddOption {
	return metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", reason)))
}
