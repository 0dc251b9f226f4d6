// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package e2ek8s

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
	corev1 "k8s.io/api/core/v1"

	"github.com/oomsight/oomsight/deploy/kubecluster"
)

// The proofs of this file run on the cgroup v2 node only (issue 25): what
// v1 has no file for (memory.peak of a removed cgroup's last interval,
// PSI, memory.high) and the time to OOM on a kubelet's systemd layout.

// agentInterval is deploy/kubernetes/agent.yaml's collection_interval:
// one data point of each cgroup every 10 s, plus the event samples.
const agentInterval = 10 * time.Second

// point is one exported data point: its time, value and attributes.
type point struct {
	at    time.Time
	v     float64
	attrs map[string]string
}

// metricPoints returns the data points of the metric name (gauge or sum,
// int or double) of every resource for which match is true, oldest first.
func metricPoints(mds []pmetric.Metrics, match func(res map[string]string) bool, name string) []point {
	var out []point
	for _, md := range mds {
		rms := md.ResourceMetrics()
		for i := range rms.Len() {
			rm := rms.At(i)
			if !match(flat(rm.Resource().Attributes())) {
				continue
			}
			sms := rm.ScopeMetrics()
			for j := range sms.Len() {
				ms := sms.At(j).Metrics()
				for k := range ms.Len() {
					m := ms.At(k)
					if m.Name() != name {
						continue
					}
					var dps pmetric.NumberDataPointSlice
					switch m.Type() {
					case pmetric.MetricTypeGauge:
						dps = m.Gauge().DataPoints()
					case pmetric.MetricTypeSum:
						dps = m.Sum().DataPoints()
					default:
						continue
					}
					for l := range dps.Len() {
						out = append(out, numberPoint(dps.At(l)))
					}
				}
			}
		}
	}
	slices.SortStableFunc(out, func(a, b point) int { return a.at.Compare(b.at) })
	return out
}

func numberPoint(dp pmetric.NumberDataPoint) point {
	p := point{at: dp.Timestamp().AsTime(), attrs: flat(dp.Attributes())}
	if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
		p.v = float64(dp.IntValue())
	} else {
		p.v = dp.DoubleValue()
	}
	return p
}

// withAttr keeps the points whose attribute key is value.
func withAttr(pts []point, key, value string) []point {
	var out []point
	for _, p := range pts {
		if p.attrs[key] == value {
			out = append(out, p)
		}
	}
	return out
}

func byContainer(id string) func(map[string]string) bool {
	return func(res map[string]string) bool { return res["container.id"] == id }
}

func byPath(path string) func(map[string]string) bool {
	return func(res map[string]string) bool { return res["cgroup.path"] == path }
}

// lastIntervalPeak returns the highest point within one collection
// interval of the kill, either side: the kill's event sample and the
// removed cgroup's closing point, whose peaks cover the climb (the
// interval before the kill), and nothing of the idle time before it.
func lastIntervalPeak(pts []point, kill time.Time, interval time.Duration) (point, bool) {
	var best point
	found := false
	for _, p := range pts {
		if p.at.Before(kill.Add(-interval)) || p.at.After(kill.Add(interval)) {
			continue
		}
		if !found || p.v > best.v {
			best, found = p, true
		}
	}
	return best, found
}

// lastPeak: the oomkilled proof's eater container (its 64 MiB cgroup,
// removed by the runtime within milliseconds of the kill) exported its
// last interval's cgroup.memory.peak at >= 95 % of its limit, seen in what
// the gateway delivered: the agent's kill-time event sample and its
// closing point of a removed cgroup (docs/design-peaks-and-kills.md), which v2's
// memory.peak and the 100 ms fast pass feed, on the systemd layout.
func (e *env) lastPeak(ctx context.Context, n *node) (string, error) {
	if n.firstID == "" {
		return "", errors.New("no OOM-killed eater on this node: the oomkilled proof runs first")
	}
	path := n.containerPath(string(n.pod.UID), n.firstID)
	if n.exists(ctx, n.cgroupFile(path, "")) {
		return "", fmt.Errorf("the OOM-killed eater's cgroup %s is still on %s", path, n.Name)
	}
	recs := oomRecords(e.srv, func(r record) bool { return r.res["container.id"] == n.firstID })
	if len(recs) == 0 {
		return "", fmt.Errorf("no OOM record of the eater %s", short(n.firstID))
	}
	kill := recs[0].ts.AsTime()
	var best point
	var all []point
	if err := waitFor(ctx, 60*time.Second, "the removed eater's last peak", func() error {
		all = metricPoints(e.srv.Metrics.AllMetrics(), byPath(path), "cgroup.memory.peak")
		var ok bool
		best, ok = lastIntervalPeak(all, kill, agentInterval)
		if !ok {
			return fmt.Errorf("%d cgroup.memory.peak points of %s, none within %s of the kill at %s", len(all), path, agentInterval, kill.Format(time.RFC3339Nano))
		}
		if best.v < 0.95*eaterLimit {
			return fmt.Errorf("cgroup.memory.peak of %s in its last interval: %.1f MiB, want >= 95 %% of %d MiB", path, best.v/(1<<20), eaterLimit>>20)
		}
		return nil
	}); err != nil {
		return "", err
	}
	return fmt.Sprintf("eater %s, cgroup %s (removed): cgroup.memory.peak %.1f MiB = %.1f %% of its %d MiB limit at %+.1f s from the kill, %d points of that cgroup through the gateway",
		short(n.firstID), path, best.v/(1<<20), 100*best.v/eaterLimit, eaterLimit>>20, best.at.Sub(kill).Seconds(), len(all)), nil
}

// burstable is a Deployment of one Burstable container of the workload
// image on the node (requests 10m CPU, 32 Mi memory; the memory limit
// given) with an emptyDir volume mounted at /<volume>.
func burstable(name, limit, volume string, command ...string) string {
	return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ` + name + `
  namespace: {{ns}}
spec:
  replicas: 1
  selector:
    matchLabels: {app: ` + name + `}
  template:
    metadata:
      labels: {app: ` + name + `}
    spec:
      nodeSelector: {{nodeSelector}}
      terminationGracePeriodSeconds: 1
      containers:
        - name: ` + name + `
          image: ` + kubecluster.WorkloadImage + `
          imagePullPolicy: IfNotPresent
          command: ["` + strings.Join(command, `", "`) + `"]
          resources:
            requests: {cpu: 10m, memory: 32Mi}
            limits: {memory: ` + limit + `}
          volumeMounts: [{name: ` + volume + `, mountPath: /` + volume + `}]
      volumes:
        - name: ` + volume + `
          emptyDir: {}
`
}

// highManifest is the psi proof's workload: a Burstable container limited
// to 64 MiB that, once asked (workload on), touches 48 MiB and holds it.
var highManifest = burstable("highwater", "64Mi", "trigger", "/workload", "on", "/trigger", "hold", "48")

const (
	highMiB = 32 // memory.high the psi proof writes
	holdMiB = 48 // what the container then touches
)

// psi: cgroup.memory.pressure.avg10 and cgroup.memory.events{type=high}
// move on a container whose memory.high is exceeded. How memory.high is
// set: Kubernetes' MemoryQoS feature gate (which derives memory.high
// from the limit) is off in this cluster, as by default, so the test
// writes 32M into the container's own memory.high inside the VM (the
// guest agent, as root) while the container idles, then asks it (workload
// on) to touch 48 MiB under its 64 MiB limit. Without swap, reclaim
// cannot bring anonymous memory below memory.high: the kernel throttles
// the allocating task (mem_cgroup_handle_over_high, a penalty sleep
// accounted as a memory stall), counts a high event at each try, and the
// task never reaches memory.max, so nothing is killed.
func (e *env) psi(ctx context.Context, n *node) (string, error) {
	f, err := n.apply(ctx, "highwater", highManifest)
	if err != nil {
		return "", err
	}
	defer func() { _, _ = e.kubectl(context.WithoutCancel(ctx), "delete", "-f", f, "--wait=false") }()
	if _, kerr := e.kubectl(ctx, "-n", n.ns, "rollout", "status", "deployment/highwater", "--timeout=240s"); kerr != nil {
		return "", kerr
	}
	pod, id, err := e.onePod(ctx, n, "highwater")
	if err != nil {
		return "", err
	}
	path := n.containerPath(string(pod.UID), id)

	// The baseline, as the agent exports it before memory.high is set.
	high := func() []point {
		return withAttr(metricPoints(e.srv.Metrics.AllMetrics(), byPath(path), "cgroup.memory.events"), "type", "high")
	}
	avg10 := func() []point {
		return metricPoints(e.srv.Metrics.AllMetrics(), byPath(path), "cgroup.memory.pressure.avg10")
	}
	if werr := waitFor(ctx, 90*time.Second, "the agent's first cgroup.memory.events and pressure of "+path, func() error {
		if len(high()) == 0 || len(avg10()) == 0 {
			return fmt.Errorf("%d events{type=high}, %d pressure.avg10 points", len(high()), len(avg10()))
		}
		return nil
	}); werr != nil {
		return "", werr
	}
	before := high()
	highBefore := before[len(before)-1].v
	avgBefore := maxOf(avg10())

	// memory.high, written and read back, then the allocation.
	file := n.cgroupFile(path, "memory.high")
	out, err := n.c.VMExec(ctx, fmt.Sprintf("echo %dM > %s && cat %s && date +%%s%%N", highMiB, strconv.Quote(file), strconv.Quote(file)))
	if err != nil {
		return "", fmt.Errorf("writing %s: %w", file, err)
	}
	lines := strings.Fields(out)
	if len(lines) != 2 || lines[0] != strconv.Itoa(highMiB<<20) {
		return "", fmt.Errorf("%s after writing %dM: %q", file, highMiB, out)
	}
	ns, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		return "", fmt.Errorf("the VM's clock: %q: %w", out, err)
	}
	written := time.Unix(0, ns)
	if err := n.askKill(ctx, emptyDir(string(pod.UID), "trigger")); err != nil {
		return "", err
	}

	var highAfter float64
	var avgAfter point
	if err := waitFor(ctx, 150*time.Second, "cgroup.memory.events{type=high} rising and pressure.avg10 above 0 on "+path, func() error {
		h := high()
		highAfter = h[len(h)-1].v
		avgAfter = point{}
		for _, p := range avg10() {
			if p.at.After(written) && p.attrs["type"] == "some" && p.v > avgAfter.v {
				avgAfter = p
			}
		}
		if highAfter <= highBefore || avgAfter.v <= avgBefore {
			return fmt.Errorf("events{type=high} %.0f (before %.0f), pressure.avg10{type=some} at most %.4f since the write (before %.4f)", highAfter, highBefore, avgAfter.v, avgBefore)
		}
		return nil
	}); err != nil {
		return "", err
	}
	full := 0.0
	for _, p := range avg10() {
		if p.at.After(written) && p.attrs["type"] == "full" {
			full = max(full, p.v)
		}
	}
	kernel, _ := n.readFile(ctx, n.cgroupFile(path, "memory.events"))
	var restarts int32
	var now corev1.Pod
	if err := e.getJSON(ctx, &now, "pod", "-n", n.ns, pod.Name); err == nil && len(now.Status.ContainerStatuses) == 1 {
		restarts = now.Status.ContainerStatuses[0].RestartCount
	}
	if restarts != 0 {
		return "", fmt.Errorf("the container over memory.high restarted %d times: memory.high must throttle, not kill", restarts)
	}
	return fmt.Sprintf("container highwater %s: memory.high written %d MiB (MemoryQoS off: direct write into %s), then %d MiB touched under its %d MiB limit: cgroup.memory.events{type=high} %.0f -> %.0f, cgroup.memory.pressure.avg10{type=some} %.2f -> %.2f (full %.2f), no restart; kernel memory.events: %s",
		short(id), highMiB, file, holdMiB, eaterLimit>>20, highBefore, highAfter, avgBefore, avgAfter.v, full, strings.Join(strings.Fields(string(kernel)), " ")), nil
}

func maxOf(pts []point) float64 {
	m := 0.0
	for _, p := range pts {
		m = max(m, p.v)
	}
	return m
}

// onePod returns the one pod of the app label in the node's namespace and
// its container's id.
func (e *env) onePod(ctx context.Context, n *node, app string) (corev1.Pod, string, error) {
	var pods corev1.PodList
	if err := e.getJSON(ctx, &pods, "pods", "-n", n.ns, "-l", "app="+app); err != nil {
		return corev1.Pod{}, "", err
	}
	var live []corev1.Pod
	for i := range pods.Items {
		if p := pods.Items[i]; p.DeletionTimestamp == nil && len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].ContainerID != "" {
			live = append(live, p)
		}
	}
	if len(live) != 1 {
		return corev1.Pod{}, "", fmt.Errorf("%d running %s pods in %s", len(live), app, n.ns)
	}
	return live[0], trimRuntime(live[0].Status.ContainerStatuses[0].ContainerID), nil
}

// vmClock returns how far the VM's clock is ahead of the host's, and
// the uncertainty (half the guest agent's round trip): the kill's time
// comes from the VM's kernel, the alert's from Prometheus on the host.
func vmClock(ctx context.Context, n *node) (offset, within time.Duration, err error) {
	t0 := time.Now()
	out, err := n.c.VMExec(ctx, "date +%s%N")
	t1 := time.Now()
	if err != nil {
		return 0, 0, fmt.Errorf("the VM's clock: %w", err)
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("the VM's clock: %q: %w", out, err)
	}
	return time.Unix(0, ns).Sub(t0.Add(t1.Sub(t0) / 2)), t1.Sub(t0) / 2, nil
}

// The eta proof's workloads (the ramp and the page cache of
// docs/oom-eta.md's proofs, in containers).
const (
	rampLimit    = 256 << 20
	cacheLimit   = 64 << 20
	warnBefore   = 30 * time.Second // CgroupOOMImminent at least this long before the kill
	etaWindow    = 30 * time.Second // every estimate of the ramp's last 30 s is checked
	etaMinPoints = 2                // of them at a 10 s collection, at least
	imminentName = "CgroupOOMImminent"
)

// etaManifest: ramp grows 1 MiB every 250 ms (4 MiB/s) into 256 MiB once
// asked; pagecache writes and rereads a 96 MiB file on a disk-backed
// emptyDir under a 64 MiB limit from its start, one 1 MiB write every
// 100 ms (the VM's disk is emulated too): its usage sits at the limit,
// all page cache.
var etaManifest = burstable("ramp", "256Mi", "trigger", "/workload", "on", "/trigger", "grow", "400", "250") + "---\n" +
	burstable("pagecache", "64Mi", "data", "/workload", "cache", "/data/log", "96", "100")

// etaCheck is one estimate of the ramp's time to OOM against the truth.
type etaCheck struct {
	before float64 // seconds from the estimate to the kill (the truth)
	eta    float64
}

func (c etaCheck) String() string {
	return fmt.Sprintf("%.1f s before: %.1f s (%+.0f %%)", c.before, c.eta, 100*(c.eta-c.before)/c.before)
}

// etaTolerance: ±25 %, never closer than 1 s (the kill instant is not
// known better: the kernel kills once it has reclaimed the page cache
// left and retried; internal/testing/e2e's etaTolerance).
func etaTolerance(truth float64) float64 { return max(0.25*truth, 1) }

// checkETA compares every estimate made in the window before the kill
// with the time that was really left; it fails on any estimate out of
// tolerance (+Inf included) and on fewer than etaMinPoints of them.
func checkETA(pts []point, kill time.Time, window time.Duration) ([]etaCheck, error) {
	var out []etaCheck
	var bad []string
	for _, p := range pts {
		if p.at.Before(kill.Add(-window)) || !p.at.Before(kill) {
			continue
		}
		c := etaCheck{before: kill.Sub(p.at).Seconds(), eta: p.v}
		out = append(out, c)
		if math.IsInf(c.eta, 0) || math.IsNaN(c.eta) || math.Abs(c.eta-c.before) > etaTolerance(c.before) {
			bad = append(bad, c.String())
		}
	}
	if len(bad) > 0 {
		return out, fmt.Errorf("cgroup.memory.oom.eta off by more than 25 %% (or 1 s): %s", strings.Join(bad, "; "))
	}
	if len(out) < etaMinPoints {
		return out, fmt.Errorf("%d cgroup.memory.oom.eta points in the %s before the kill, want %d or more", len(out), window, etaMinPoints)
	}
	return out, nil
}

// alertWatch is what the feeder saw of CgroupOOMImminent, polled every
// second: when it first fired for the ramp (host time) and whether it was
// ever pending or firing for the page-cache container.
type alertWatch struct {
	mu        sync.Mutex
	rampFired time.Time
	cacheSeen []string
	pushes    int
	lastErr   error
}

// feed pushes, every second until ctx ends, the newest resource e.srv
// received for each container (the one with its oom.eta) to the stack,
// so that Prometheus evaluates the rules live while the ramp runs, and
// polls the alert.
func (e *env) feed(ctx context.Context, st *promStack, w *alertWatch, ramp, cache string) {
	for {
		md := newestWith(e.srv.Metrics.AllMetrics(), "cgroup.memory.oom.eta", ramp, cache)
		err := st.push(ctx, md)
		fired, _ := promCount(ctx, st.prom, fmt.Sprintf(`ALERTS{alertname=%q, alertstate="firing", container_id=%q}`, imminentName, ramp))
		seen, _ := promSamples(ctx, st.prom, fmt.Sprintf(`ALERTS{alertname=%q, container_id=%q}`, imminentName, cache))
		w.mu.Lock()
		if err == nil {
			w.pushes++
		} else if ctx.Err() == nil {
			w.lastErr = err
		}
		if fired > 0 && w.rampFired.IsZero() {
			w.rampFired = time.Now()
		}
		for _, s := range seen {
			w.cacheSeen = append(w.cacheSeen, s.Metric["alertstate"]+" at "+time.Now().UTC().Format(time.TimeOnly))
		}
		w.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// eta: a Burstable container ramping anonymous memory at 4 MiB/s into a
// 256 MiB limit gets cgroup.memory.oom.eta within ±25 % (or 1 s) of the
// time really left at every estimate of its last 30 s (the kill's time
// from its OOM record, the estimates' from their data points: both the
// VM's clock), and CgroupOOMImminent, evaluated by Debian's Prometheus on
// the host with deploy/prometheus/oomsight-rules.yaml as shipped and fed
// live (every second, the newest of what the gateway delivered), fires
// at least 30 s before the kill (the kill converted to the host's clock,
// less the conversion's uncertainty). Beside it a container whose usage
// sits at its 64 MiB limit with page cache never has the alert pending or
// firing, and is not killed.
func (e *env) eta(ctx context.Context, n *node) (string, error) {
	f, err := n.apply(ctx, "eta", etaManifest)
	if err != nil {
		return "", err
	}
	defer func() { _, _ = e.kubectl(context.WithoutCancel(ctx), "delete", "-f", f, "--wait=false") }()
	for _, d := range []string{"ramp", "pagecache"} {
		if _, kerr := e.kubectl(ctx, "-n", n.ns, "rollout", "status", "deployment/"+d, "--timeout=240s"); kerr != nil {
			return "", kerr
		}
	}
	rampPod, ramp, err := e.onePod(ctx, n, "ramp")
	if err != nil {
		return "", err
	}
	_, cache, err := e.onePod(ctx, n, "pagecache")
	if err != nil {
		return "", err
	}

	st, err := e.startPromStack()
	if err != nil {
		return "", err
	}
	defer st.close()
	feedCtx, stopFeed := context.WithCancel(ctx)
	var wg sync.WaitGroup
	w := &alertWatch{}
	wg.Go(func() { e.feed(feedCtx, st, w, ramp, cache) })
	defer func() { stopFeed(); wg.Wait() }()
	started := time.Now()
	if werr := waitFor(ctx, 120*time.Second, "both containers' oom.eta in Prometheus", func() error {
		for _, id := range []string{ramp, cache} {
			c, qerr := promCount(ctx, st.prom, fmt.Sprintf(`cgroup_memory_oom_eta_seconds{container_id=%q}`, id))
			if qerr != nil {
				return qerr
			}
			if c != 1 {
				return fmt.Errorf("%s: %d series; otelcol log: %s", short(id), c, st.otelLog())
			}
		}
		return nil
	}); werr != nil {
		return "", werr
	}
	offset, within, err := vmClock(ctx, n)
	if err != nil {
		return "", err
	}

	// The ramp, until the kernel kills it.
	if err := n.askKill(ctx, emptyDir(string(rampPod.UID), "trigger")); err != nil {
		return "", err
	}
	asked := time.Now()
	var rec record
	if err := waitFor(ctx, 240*time.Second, "the ramp's OOM record", func() error {
		recs := oomRecords(e.srv, func(r record) bool { return r.res["container.id"] == ramp })
		if len(recs) == 0 {
			return errNotYet
		}
		rec = recs[0]
		return nil
	}); err != nil {
		return "", err
	}
	// A few more evaluations for the page-cache container.
	kill := rec.ts.AsTime()
	killHost := kill.Add(-offset)
	select {
	case <-ctx.Done():
		return "", ctx.Err()
	case <-time.After(20 * time.Second):
	}
	stopFeed()
	wg.Wait()

	// Every check is evaluated, so that a failure shows all the figures.
	pts := metricPoints(e.srv.Metrics.AllMetrics(), byContainer(ramp), "cgroup.memory.oom.eta")
	checks, etaErr := checkETA(pts, kill, etaWindow)
	w.mu.Lock()
	fired, seen, pushes, pushErr := w.rampFired, w.cacheSeen, w.pushes, w.lastErr
	w.mu.Unlock()
	var alertErr error
	lead := killHost.Sub(fired) - within
	switch {
	case fired.IsZero():
		alertErr = fmt.Errorf("%s never fired for the ramp (%d pushes to Prometheus)", imminentName, pushes)
		if pushErr != nil {
			alertErr = fmt.Errorf("%w; last push: %w", alertErr, pushErr)
		}
	case lead < warnBefore:
		alertErr = fmt.Errorf("%s fired %.1f s before the ramp's kill, want %s or more", imminentName, lead.Seconds(), warnBefore)
	}
	quiet, cacheErr := e.pageCacheQuiet(ctx, st, cache, seen, time.Since(started))
	figures := fmt.Sprintf("ramp %s (4 MiB/s into 256 MiB, killed %.1f s after asked): oom.eta %s (all its points: %s); %s fired %.1f s before the kill (Prometheus on the host fed live, %d pushes; VM clock %+v ± %v)",
		short(ramp), killHost.Sub(asked).Seconds(), joinChecks(checks), etaSeries(pts, kill), imminentName, lead.Seconds(), pushes, offset.Round(time.Millisecond), within.Round(time.Millisecond))
	if err := errors.Join(etaErr, alertErr, cacheErr); err != nil {
		return "", fmt.Errorf("%w\n%s; %s", err, figures, quiet)
	}
	return figures + "; " + quiet, nil
}

// etaSeries is every oom.eta point of a cgroup, as seconds from the kill
// and the estimate, for a failure's message.
func etaSeries(pts []point, kill time.Time) string {
	s := make([]string, len(pts))
	for i, p := range pts {
		s[i] = fmt.Sprintf("%+.1f:%.1f", p.at.Sub(kill).Seconds(), p.v)
	}
	return strings.Join(s, " ")
}

func joinChecks(cs []etaCheck) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = c.String()
	}
	return strings.Join(s, ", ")
}

// pageCacheQuiet checks the page-cache container: its usage reached 90 %
// of its limit, mostly page cache; CgroupOOMImminent was never pending or
// firing for it, polled every second and over Prometheus's whole record;
// no OOM record.
func (e *env) pageCacheQuiet(ctx context.Context, st *promStack, id string, seen []string, watched time.Duration) (string, error) {
	if len(seen) > 0 {
		return "page cache " + short(id), fmt.Errorf("%s for the page-cache container %s: %s", imminentName, short(id), strings.Join(seen, ", "))
	}
	q := fmt.Sprintf(`count_over_time(ALERTS{alertname=%q, container_id=%q}[%ds])`, imminentName, id, int(watched.Seconds())+60)
	n, err := promCount(ctx, st.prom, q)
	if err != nil {
		return "", err
	}
	if n != 0 {
		return "", fmt.Errorf("%s: %d series, want none", q, n)
	}
	if recs := oomRecords(e.srv, func(r record) bool { return r.res["container.id"] == id }); len(recs) != 0 {
		return "", fmt.Errorf("the page-cache container %s was OOM-killed: %s", short(id), recs[0].body)
	}
	mds := e.srv.Metrics.AllMetrics()
	usage := metricPoints(mds, byContainer(id), "cgroup.memory.usage")
	file := metricPoints(mds, byContainer(id), "cgroup.memory.file")
	top, topFile := maxOf(usage), maxOf(file)
	if top < 0.9*cacheLimit || topFile < 0.5*cacheLimit {
		return "", fmt.Errorf("the page-cache container %s: usage at most %.1f MiB, page cache %.1f MiB: want its 64 MiB limit filled with page cache", short(id), top/(1<<20), topFile/(1<<20))
	}
	etas := metricPoints(mds, byContainer(id), "cgroup.memory.oom.eta")
	finite, least := 0, math.Inf(1)
	for _, p := range etas {
		if !math.IsInf(p.v, 1) {
			finite++
			least = min(least, p.v)
		}
	}
	return fmt.Sprintf("page cache %s (usage up to %.1f MiB of 64 MiB, page cache %.1f MiB): %d oom.eta points, %d finite (least %.0f s), %s never pending or firing over %.0f s, no kill",
		short(id), top/(1<<20), topFile/(1<<20), len(etas), finite, least, imminentName, watched.Seconds()), nil
}
