// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package k8seventsexporter

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/oomsight/oomsight/exporter/k8seventsexporter/internal/metadatatest"
)

// The exporter's create/patch logic against client-go's object tracker
// (the real API server's behavior is proven by deploy/e2ek8s's
// pod-event proof): series, 404 after expiry, retries that count nothing
// twice, and the error classes.

type harness struct {
	t   *testing.T
	tel *componenttest.Telemetry
	cs  *fake.Clientset
	e   *eventsExporter
}

func newHarness(t *testing.T) *harness {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.WithoutCancel(t.Context()))) })
	cfg := createDefaultConfig().(*Config)
	e, err := newExporter(cfg, metadatatest.NewSettings(tel))
	require.NoError(t, err)
	cs := fake.NewClientset()
	e.client, e.pods = cs.EventsV1(), cs.CoreV1()
	return &harness{t: t, tel: tel, cs: cs, e: e}
}

// kill returns a real record of the v1 container-limit capture at time at.
func (h *harness) kill(at time.Time) plog.Logs {
	ld := capturedRecords(h.t, "../../testdata/oom/v1-container-limit.kmsg", eater, at)[0]
	ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).SetTimestamp(pcommon.NewTimestampFromTime(at))
	return ld
}

func (h *harness) events() []eventsv1.Event {
	l, err := h.cs.EventsV1().Events(eater.namespace).List(context.Background(), metav1.ListOptions{})
	require.NoError(h.t, err)
	return l.Items
}

func (h *harness) counters(created, updated int64, dropped map[string]int64) {
	h.t.Helper()
	if created > 0 {
		metadatatest.AssertEqualK8sEventsEventsCreated(h.t, h.tel, []metricdata.DataPoint[int64]{{Value: created}}, metricdatatest.IgnoreTimestamp())
	}
	if updated > 0 {
		metadatatest.AssertEqualK8sEventsEventsUpdated(h.t, h.tel, []metricdata.DataPoint[int64]{{Value: updated}}, metricdatatest.IgnoreTimestamp())
	}
	if len(dropped) > 0 {
		var dps []metricdata.DataPoint[int64]
		for reason, n := range dropped {
			dps = append(dps, metricdata.DataPoint[int64]{Attributes: attribute.NewSet(attribute.String("reason", reason)), Value: n})
		}
		metadatatest.AssertEqualK8sEventsRecordsDropped(h.t, h.tel, dps, metricdatatest.IgnoreTimestamp())
	}
}

func TestThreeKillsOneEvent(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	for i := range 3 {
		require.NoError(t, h.e.pushLogs(ctx, h.kill(killAt.Add(time.Duration(i)*time.Minute))))
	}
	evs := h.events()
	require.Len(t, evs, 1)
	require.NotNil(t, evs[0].Series)
	assert.EqualValues(t, 3, evs[0].Series.Count)
	assert.True(t, evs[0].Series.LastObservedTime.Time.Equal(killAt.Add(2*time.Minute).Truncate(time.Microsecond)), "MicroTime: the API keeps microseconds")
	assert.True(t, evs[0].EventTime.Time.Equal(killAt.Truncate(time.Microsecond)), "the first kill's time")
	// The same record again (a retried request): counted once.
	require.NoError(t, h.e.pushLogs(ctx, h.kill(killAt.Add(2*time.Minute))))
	assert.EqualValues(t, 3, h.events()[0].Series.Count)
	h.counters(1, 2, nil)
}

func TestExpiredEventCreatedAnew(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	require.NoError(t, h.e.pushLogs(ctx, h.kill(killAt)))
	first := h.events()[0].Name
	// The API server's event TTL removed it.
	require.NoError(t, h.cs.EventsV1().Events(eater.namespace).Delete(ctx, first, metav1.DeleteOptions{}))
	require.NoError(t, h.e.pushLogs(ctx, h.kill(killAt.Add(2*time.Hour))))
	evs := h.events()
	require.Len(t, evs, 1)
	assert.NotEqual(t, first, evs[0].Name)
	assert.Nil(t, evs[0].Series)
	h.counters(2, 0, nil)
}

func TestTransientFailureRetriesOnlyTheRest(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	down := true
	h.cs.PrependReactor("create", "events", func(k8stesting.Action) (bool, runtime.Object, error) {
		if down {
			return true, nil, apierrors.NewServiceUnavailable("etcd is down")
		}
		return false, nil, nil
	})
	ld := h.kill(killAt)
	err := h.e.pushLogs(ctx, ld)
	require.Error(t, err)
	assert.False(t, consumererror.IsPermanent(err))
	var le consumererror.Logs
	require.ErrorAs(t, err, &le)
	assert.Equal(t, 1, le.Data().LogRecordCount(), "the record is handed back for the retry")
	assert.Empty(t, h.events())
	down = false
	require.NoError(t, h.e.pushLogs(ctx, le.Data()))
	assert.Len(t, h.events(), 1)

	// No answer at all (API server stopped): transient too.
	h.cs.PrependReactor("patch", "events", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("dial tcp 10.96.0.1:443: connect: connection refused")
	})
	err = h.e.pushLogs(ctx, h.kill(killAt.Add(time.Minute)))
	require.ErrorAs(t, err, &le)
	assert.False(t, consumererror.IsPermanent(err))
}

// A create retried after its response was lost meets its own Event (409)
// and counts it as written.
func TestCreateAlreadyExists(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	h.cs.PrependReactor("create", "events", func(a k8stesting.Action) (bool, runtime.Object, error) {
		ev := a.(k8stesting.CreateAction).GetObject().(*eventsv1.Event)
		return true, nil, apierrors.NewAlreadyExists(schema.GroupResource{Group: "events.k8s.io", Resource: "events"}, ev.Name)
	})
	require.NoError(t, h.e.pushLogs(ctx, h.kill(killAt)))
	_, ok := h.e.cache.Get(mapping{}.mustKey(t, h.kill(killAt)))
	assert.True(t, ok, "the Event is remembered for the next kill's patch")
}

func TestPermanentRefusalDropped(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	h.cs.PrependReactor("create", "events", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "events.k8s.io", Resource: "events"}, "x",
			errors.New(`unable to create new content in namespace shop because it is being terminated`))
	})
	ld := h.kill(killAt)
	// A record without a pod in the same request: dropped as no_pod.
	noPod := h.kill(killAt)
	noPod.ResourceLogs().At(0).Resource().Attributes().Remove(podNameKey)
	noPod.ResourceLogs().At(0).CopyTo(ld.ResourceLogs().AppendEmpty())
	err := h.e.pushLogs(ctx, ld)
	require.Error(t, err)
	assert.True(t, consumererror.IsPermanent(err), "no retry: %v", err)
	assert.Contains(t, err.Error(), "being terminated")
	h.counters(0, 0, map[string]int64{dropRefused: 1, dropNoPod: 1})
}

func TestPermanentClasses(t *testing.T) {
	gr := schema.GroupResource{Group: "events.k8s.io", Resource: "events"}
	for _, tt := range []struct {
		err  error
		perm bool
	}{
		{apierrors.NewForbidden(gr, "x", errors.New("rbac")), true},
		{apierrors.NewBadRequest("bad"), true},
		{apierrors.NewInvalid(schema.GroupKind{Group: "events.k8s.io", Kind: "Event"}, "x", nil), true},
		{apierrors.NewNotFound(gr, "x"), true},
		{apierrors.NewUnauthorized("token"), true},
		{apierrors.NewConflict(gr, "x", errors.New("c")), false},
		{apierrors.NewTooManyRequests("slow down", 1), false},
		{apierrors.NewTimeoutError("t", 1), false},
		{apierrors.NewInternalError(errors.New("i")), false},
		{apierrors.NewServiceUnavailable("u"), false},
		{errors.New("connection refused"), false},
		{context.DeadlineExceeded, false},
	} {
		assert.Equal(t, tt.perm, isPermanent(tt.err), "%v", tt.err)
	}
}

func (m mapping) mustKey(t *testing.T, ld plog.Logs) string {
	res, lr := only(t, ld)
	k, drop := m.toKill(res, lr, time.Now())
	require.Empty(t, drop)
	return k.key()
}
