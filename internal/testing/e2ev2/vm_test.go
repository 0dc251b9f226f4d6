// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

//go:build linux

package e2ev2

// The VM side: these tests run inside the qemu VM that TestCgroupV2InVM
// boots (OOMSIGHT_E2E_VM=1), as root in the root cgroup of a cgroup2-only
// hierarchy. Each check prints one CHECK line (see protocol_test.go).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"golang.org/x/sys/unix"

	"github.com/oomsight/oomsight/internal/cgroupfs"
	"github.com/oomsight/oomsight/internal/kmsg"
	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
	"github.com/oomsight/oomsight/internal/testing/qemuvm"
	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver"
)

const (
	vmEnv     = "OOMSIGHT_E2E_VM"    // "1" inside the VM
	memhogEnv = cgrouptest.MemhogEnv // path of the static memhog in the VM
	diskEnv   = cgrouptest.DiskEnv   // mount point of a disk-backed (ext4 on brd) filesystem
	cgRoot    = "/sys/fs/cgroup"
	mib       = 1 << 20
)

// report prints one CHECK line and fails the test when ok is false.
func report(t *testing.T, name string, ok bool, format string, args ...any) bool {
	t.Helper()
	detail := fmt.Sprintf(format, args...)
	status := statusPass
	if !ok {
		status = statusFail
		t.Errorf("check %s failed: %s", name, detail)
	}
	fmt.Println(formatCheck(name, status, detail))
	return ok
}

// must stops the test when a setup step fails, with a FAIL line naming it.
func must(t *testing.T, name string, err error) {
	t.Helper()
	if err != nil {
		report(t, "setup/"+name, false, "%v", err)
		t.FailNow()
	}
}

// vm is what every in-VM test needs.
type vm struct {
	h      cgroupfs.Hierarchy
	env    cgrouptest.Env
	memhog string
	disk   string // "" when no disk-backed filesystem could be made
}

// requireVM stops the test outside the VM (a failure under CI=true, where
// only the host-side test is selected) and sets up the root cgroup inside it.
func requireVM(t *testing.T) *vm {
	t.Helper()
	if os.Getenv(vmEnv) != "1" {
		cgrouptest.Unavailable(t, "in-VM test: runs only inside the cgroup v2 VM (%s=1); on the host run TestCgroupV2InVM with OOMSIGHT_E2E_V2=1 (make e2e-v2), which boots the VM and runs this", vmEnv)
	}
	v := &vm{memhog: os.Getenv(memhogEnv), disk: os.Getenv(diskEnv)}
	if v.memhog == "" {
		must(t, "memhog", fmt.Errorf("%s is not set", memhogEnv))
	}
	h, err := cgroupfs.Detect(cgRoot)
	must(t, "detect", err)
	if h.Version != cgroupfs.V2 {
		must(t, "detect", fmt.Errorf("hierarchy at %s is %s, want v2", h.Dir, h.Version))
	}
	v.h = h
	v.env = cgrouptest.Env{Hierarchy: h, Self: "/"}
	must(t, "root subtree_control", cgrouptest.EnableMemory(cgRoot))
	return v
}

// mkcg creates the cgroup at p (a path from the hierarchy root, as the
// kernel prints it) and its missing parents, enabling +memory in each
// parent's cgroup.subtree_control. The leaf's own subtree_control is left
// empty: on v2 a cgroup that distributes controllers cannot hold processes.
// What it creates is removed at cleanup, deepest first.
func (v *vm) mkcg(t *testing.T, p string) *cgrouptest.Cgroup {
	t.Helper()
	cur := "/"
	for seg := range strings.SplitSeq(strings.Trim(p, "/"), "/") {
		must(t, "mkcg "+p, cgrouptest.EnableMemory(v.h.Abs(cur)))
		cur = path.Join(cur, seg)
		dir := v.h.Abs(cur)
		err := os.Mkdir(dir, 0o755)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		must(t, "mkcg "+p, err)
		t.Cleanup(func() {
			if err := cgrouptest.RemoveCgroup(dir); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		})
	}
	return &cgrouptest.Cgroup{Env: v.env, Path: p, Dir: v.h.Abs(p)}
}

// do sends one command to memhog and stops the test if it fails.
func do(t *testing.T, p *cgrouptest.Proc, cmd string) {
	t.Helper()
	_, err := p.Do(cmd, 60*time.Second)
	must(t, "memhog "+cmd, err)
}

// ---- The kernel's own view, read by the test independently of the code
// under test (plain strconv, not the cgroupfs parsers).

// val is a value that may be absent (memory.max "max").
type val struct {
	v  uint64
	ok bool
}

func (x val) String() string {
	if !x.ok {
		return "absent"
	}
	return strconv.FormatUint(x.v, 10)
}

// fields are the metrics compared with the kernel, by their short name
// (the receiver's metric is "cgroup.memory." + name).
var fields = []string{
	"usage", "working_set", "limit", "peak.lifetime", "anon", "file", "active_file",
	"inactive_file", "shmem", "failcnt", "oom_kills",
}

// kernelState maps a field to the kernel's value.
type kernelState map[string]val

func readFlat(file string) (map[string]uint64, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	m := map[string]uint64{}
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		n, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %w", file, line, err)
		}
		m[f[0]] = n
	}
	return m, nil
}

func readOne(file string) (val, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return val{}, err
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return val{}, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return val{}, fmt.Errorf("%s: %w", file, err)
	}
	return val{n, true}, nil
}

// readKernel reads the cgroup's memory files the way a person would check
// the numbers: memory.current, memory.max, memory.peak (the lifetime peak),
// memory.stat and memory.events.local (this cgroup's own limit hits and
// kills, as the receiver reports them).
func readKernel(dir string) (kernelState, error) {
	st := kernelState{}
	for file, field := range map[string]string{"memory.current": "usage", "memory.max": "limit", "memory.peak": "peak.lifetime"} {
		v, err := readOne(filepath.Join(dir, file))
		if err != nil {
			return nil, err
		}
		st[field] = v
	}
	stat, err := readFlat(filepath.Join(dir, "memory.stat"))
	if err != nil {
		return nil, err
	}
	for _, k := range []string{"anon", "file", "active_file", "inactive_file", "shmem"} {
		v, ok := stat[k]
		st[k] = val{v, ok}
	}
	events, err := readFlat(filepath.Join(dir, "memory.events.local"))
	if err != nil {
		return nil, err
	}
	for k, field := range map[string]string{"max": "failcnt", "oom_kill": "oom_kills"} {
		v, ok := events[k]
		st[field] = val{v, ok}
	}
	if u, i := st["usage"], st["inactive_file"]; u.ok && i.ok {
		ws := uint64(0)
		if u.v > i.v {
			ws = u.v - i.v
		}
		st["working_set"] = val{ws, true}
	}
	return st, nil
}

// bracketed reports whether got lies between the kernel's readings a and b
// taken before and after the code under test read the same files.
func bracketed(a, b, got val) bool {
	switch {
	case !a.ok && !b.ok:
		return !got.ok
	case !got.ok:
		return !a.ok || !b.ok
	case !a.ok:
		return got.v == b.v
	case !b.ok:
		return got.v == a.v
	}
	lo, hi := min(a.v, b.v), max(a.v, b.v)
	return got.v >= lo && got.v <= hi
}

func describe(a, b, got val, attempt int) string {
	k := a.String()
	if a != b {
		k = "[" + a.String() + ".." + b.String() + "]"
	}
	return fmt.Sprintf("got=%s kernel=%s attempt=%d", got, k, attempt)
}

// ---- The code under test.

// target is one cgroup whose numbers are compared.
type target struct {
	label string // check name part, e.g. "cgroupfs/container"
	path  string // cgroup path as the kernel prints it
}

// source reads the code under test's view of every target, taken after
// the moment `after`, keyed by target path and field.
type source func(after time.Time) (map[string]kernelState, error)

// compare reads the kernel (A), the code under test, and the kernel again
// (B), and checks that every field of the code under test lies within
// [A, B]: for a value that does not move that is equality, for one that
// moves it is the value at some moment the code under test read it. A field
// that misses is retried (a workload can move between the reads) up to
// attempts times; the outcome of each target and field is returned.
func (v *vm) compare(targets []target, want []string, src source) map[string]map[string]outcome {
	const attempts = 5
	out := map[string]map[string]outcome{}
	for _, tg := range targets {
		out[tg.label] = map[string]outcome{}
	}
	for attempt := 1; attempt <= attempts; attempt++ {
		a, err := v.readAll(targets)
		if err != nil {
			setAll(out, targets, want, outcome{detail: "reading kernel files: " + err.Error()})
			continue
		}
		got, err := src(time.Now())
		if err != nil {
			setAll(out, targets, want, outcome{detail: err.Error()})
			continue
		}
		b, err := v.readAll(targets)
		if err != nil {
			setAll(out, targets, want, outcome{detail: "reading kernel files: " + err.Error()})
			continue
		}
		done := true
		for _, tg := range targets {
			for _, f := range want {
				if out[tg.label][f].ok {
					continue
				}
				ka, kb, g := a[tg.path][f], b[tg.path][f], got[tg.path][f]
				out[tg.label][f] = outcome{ok: bracketed(ka, kb, g), detail: describe(ka, kb, g, attempt)}
				done = done && out[tg.label][f].ok
			}
		}
		if done {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	return out
}

type outcome struct {
	ok     bool
	detail string
}

func setAll(out map[string]map[string]outcome, targets []target, want []string, o outcome) {
	for _, tg := range targets {
		for _, f := range want {
			if !out[tg.label][f].ok {
				out[tg.label][f] = o
			}
		}
	}
}

func (v *vm) readAll(targets []target) (map[string]kernelState, error) {
	m := map[string]kernelState{}
	for _, tg := range targets {
		st, err := readKernel(v.h.Abs(tg.path))
		if err != nil {
			return nil, err
		}
		m[tg.path] = st
	}
	return m, nil
}

// receiverRun is the cgroupmemory receiver, created through its factory
// and started, scraping every 100 ms into a sink.
type receiverRun struct {
	sink *consumertest.MetricsSink
	logs *consumertest.LogsSink // OOM records of the same (shared) instance
}

func startReceiver(t *testing.T, include ...string) *receiverRun {
	t.Helper()
	return startReceiverWith(t, func(*cgroupmemoryreceiver.Config) {}, include...)
}

// startReceiverWith is startReceiver with the configuration changed by set.
func startReceiverWith(t *testing.T, set func(*cgroupmemoryreceiver.Config), include ...string) *receiverRun {
	t.Helper()
	f := cgroupmemoryreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*cgroupmemoryreceiver.Config)
	cfg.CollectionInterval = 100 * time.Millisecond
	cfg.RootPath = cgRoot
	cfg.Include = include
	cfg.Metrics.CgroupMemoryPeakLifetime.Enabled = true
	set(cfg)
	must(t, "receiver config", cfg.Validate())
	sink := new(consumertest.MetricsSink)
	rcv, err := f.CreateMetrics(t.Context(), receivertest.NewNopSettings(f.Type()), cfg, sink)
	must(t, "receiver create", err)
	// The logs pipeline of the same configuration shares the instance: one
	// Start starts both, reading /dev/kmsg from its end.
	logs := new(consumertest.LogsSink)
	_, err = f.CreateLogs(t.Context(), receivertest.NewNopSettings(f.Type()), cfg, logs)
	must(t, "receiver create (logs)", err)
	must(t, "receiver start", rcv.Start(t.Context(), componenttest.NewNopHost()))
	t.Cleanup(func() {
		if err := rcv.Shutdown(context.WithoutCancel(t.Context())); err != nil {
			t.Errorf("receiver shutdown: %v", err)
		}
	})
	return &receiverRun{sink: sink, logs: logs}
}

// oomRecords waits until n linux.oom_kill records whose cgroup.path is p
// arrived, and returns their attributes (plus the body as "body").
func (r *receiverRun) oomRecords(p string, n int, timeout time.Duration) []map[string]any {
	deadline := time.Now().Add(timeout)
	for {
		var out []map[string]any
		for _, ld := range r.logs.AllLogs() {
			for i := 0; i < ld.ResourceLogs().Len(); i++ {
				rl := ld.ResourceLogs().At(i)
				if v, ok := rl.Resource().Attributes().Get("cgroup.path"); !ok || v.Str() != p {
					continue
				}
				for j := 0; j < rl.ScopeLogs().Len(); j++ {
					lrs := rl.ScopeLogs().At(j).LogRecords()
					for k := 0; k < lrs.Len(); k++ {
						if lrs.At(k).EventName() != "linux.oom_kill" {
							continue
						}
						a := lrs.At(k).Attributes().AsRaw()
						a["body"] = lrs.At(k).Body().Str()
						for rk, rv := range rl.Resource().Attributes().AsRaw() {
							a["resource."+rk] = rv
						}
						out = append(out, a)
					}
				}
			}
		}
		if len(out) >= n || time.Now().After(deadline) {
			return out
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// point is the receiver's output for one cgroup in one scrape.
type point struct {
	time  time.Time
	vals  kernelState       // by field short name
	attrs map[string]string // resource attributes
}

// latest returns the newest data of the cgroup at p sampled after `after`.
func (r *receiverRun) latest(p string, after time.Time) (point, bool) {
	all := r.sink.AllMetrics()
	for _, a := range slices.Backward(all) {
		rms := a.ResourceMetrics()
		for j := 0; j < rms.Len(); j++ {
			rm := rms.At(j)
			if cp, ok := rm.Resource().Attributes().Get("cgroup.path"); !ok || cp.Str() != p {
				continue
			}
			pt := toPoint(rm)
			if pt.time.After(after) {
				return pt, true
			}
			return point{}, false // older scrapes are older still
		}
	}
	return point{}, false
}

// waitLatest waits for a data point of p sampled after `after`.
func (r *receiverRun) waitLatest(p string, after time.Time) (point, error) {
	const timeout = 10 * time.Second
	deadline := time.Now().Add(timeout)
	for {
		if pt, ok := r.latest(p, after); ok {
			return pt, nil
		}
		if time.Now().After(deadline) {
			return point{}, fmt.Errorf("receiver: no data point for %s sampled after %s within %s", p, after.Format(time.StampMilli), timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func toPoint(rm pmetric.ResourceMetrics) point {
	pt := point{vals: kernelState{}, attrs: map[string]string{}}
	for k, v := range rm.Resource().Attributes().All() {
		pt.attrs[k] = v.AsString()
	}
	sms := rm.ScopeMetrics()
	for i := 0; i < sms.Len(); i++ {
		ms := sms.At(i).Metrics()
		for j := 0; j < ms.Len(); j++ {
			m := ms.At(j)
			var dps pmetric.NumberDataPointSlice
			switch m.Type() {
			case pmetric.MetricTypeSum:
				dps = m.Sum().DataPoints()
			case pmetric.MetricTypeGauge:
				dps = m.Gauge().DataPoints()
			default:
				continue
			}
			// The newest point is the collection sample (event samples,
			// older, come first).
			if dps.Len() == 0 || dps.At(dps.Len()-1).Attributes().Len() != 0 {
				continue
			}
			dp := dps.At(dps.Len() - 1)
			if name, ok := strings.CutPrefix(m.Name(), "cgroup.memory."); ok && dp.IntValue() >= 0 {
				pt.vals[name] = val{uint64(dp.IntValue()), true}
			}
			pt.time = dp.Timestamp().AsTime()
		}
	}
	return pt
}

// source returns the receiver's view of the targets, sampled after `after`.
func (r *receiverRun) source(targets []target) source {
	return func(after time.Time) (map[string]kernelState, error) {
		m := map[string]kernelState{}
		for _, tg := range targets {
			pt, err := r.waitLatest(tg.path, after)
			if err != nil {
				return nil, err
			}
			m[tg.path] = pt.vals
		}
		return m, nil
	}
}

// readerSource reads the targets with the cgroupfs package directly (held
// open files, one Reader), as the receiver's scraper does.
func readerSource(t *testing.T, h cgroupfs.Hierarchy, targets []target) source {
	t.Helper()
	cgs := map[string]*cgroupfs.Cgroup{}
	for _, tg := range targets {
		c, err := cgroupfs.Open(h, tg.path, 0)
		must(t, "cgroupfs.Open "+tg.path, err)
		t.Cleanup(c.Close)
		cgs[tg.path] = c
	}
	names := map[cgroupfs.Field]string{}
	for _, f := range cgroupfs.Fields() {
		names[f] = f.String()
	}
	names[cgroupfs.PeakLifetime] = "peak.lifetime" // the metric's name
	r := cgroupfs.NewReader()
	return func(time.Time) (map[string]kernelState, error) {
		m := map[string]kernelState{}
		for _, tg := range targets {
			var s cgroupfs.Sample
			if err := r.Read(cgs[tg.path], time.Now(), &s); err != nil {
				return nil, err
			}
			st := kernelState{}
			for f, name := range names {
				x, ok := s.Get(f)
				st[name] = val{x, ok}
			}
			m[tg.path] = st
		}
		return m, nil
	}
}

// ---- Kubernetes-shaped cgroups.

// podShape is a pod and one container in it, with the identity the
// receiver must derive from the container's path.
type podShape struct {
	name       string // check name part
	pod, ctr   string
	podUID     string
	qos        string
	ctrID      string
	runtime    string // "" = the path does not name it (cgroupfs driver)
	podLimit   int64  // 0 = none
	ctrLimit   int64
	workloadID string // file name stem of the workload's files
}

var (
	// kubelet's cgroupfs driver, burstable pod: /kubepods/burstable/pod<uid>/<64hex>.
	cgroupfsBurstable = podShape{
		name:     "cgroupfs",
		pod:      "/kubepods/burstable/pod6a1c2f0e-3b7d-4d5e-9f10-2b3c4d5e6f70",
		ctr:      "/kubepods/burstable/pod6a1c2f0e-3b7d-4d5e-9f10-2b3c4d5e6f70/5d0c3b1e9a8f7e6d5c4b3a29180f7e6d5c4b3a29180f7e6d5c4b3a29180f7e6d",
		podUID:   "6a1c2f0e-3b7d-4d5e-9f10-2b3c4d5e6f70",
		qos:      "Burstable",
		ctrID:    "5d0c3b1e9a8f7e6d5c4b3a29180f7e6d5c4b3a29180f7e6d5c4b3a29180f7e6d",
		ctrLimit: 128 * mib, workloadID: "cfs",
	}
	// kubelet's systemd driver with containerd, burstable pod.
	systemdBurstable = podShape{
		name:     "systemd",
		pod:      "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod8e2d4c6a_1f3b_4a5c_8d7e_9f0a1b2c3d4e.slice",
		ctr:      "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod8e2d4c6a_1f3b_4a5c_8d7e_9f0a1b2c3d4e.slice/cri-containerd-a3f1e2d4c5b6a7980f1e2d3c4b5a69788f1e2d3c4b5a69788f1e2d3c4b5a6978.scope",
		podUID:   "8e2d4c6a-1f3b-4a5c-8d7e-9f0a1b2c3d4e",
		qos:      "Burstable",
		ctrID:    "a3f1e2d4c5b6a7980f1e2d3c4b5a69788f1e2d3c4b5a69788f1e2d3c4b5a6978",
		runtime:  "containerd",
		podLimit: 96 * mib, workloadID: "sd",
	}
	// systemd driver, guaranteed pod: the pod-level limit OOM.
	systemdGuaranteed = podShape{
		name:     "systemd-guaranteed",
		pod:      "/kubepods.slice/kubepods-pod1b9e7c3d_5a2f_4e8b_b6c1_0d9e8f7a6b5c.slice",
		ctr:      "/kubepods.slice/kubepods-pod1b9e7c3d_5a2f_4e8b_b6c1_0d9e8f7a6b5c.slice/cri-containerd-7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b.scope",
		podUID:   "1b9e7c3d-5a2f-4e8b-b6c1-0d9e8f7a6b5c",
		qos:      "Guaranteed",
		ctrID:    "7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b",
		runtime:  "containerd",
		podLimit: 48 * mib,
	}
	// cgroupfs driver, guaranteed pod with memory.oom.group on the container.
	cgroupfsGuaranteed = podShape{
		name:   "cgroupfs-guaranteed",
		pod:    "/kubepods/pod4f3e2d1c-0b9a-4c8d-a7e6-5f4e3d2c1b0a",
		ctr:    "/kubepods/pod4f3e2d1c-0b9a-4c8d-a7e6-5f4e3d2c1b0a/e1d2c3b4a5968778695a4b3c2d1e0f1e2d3c4b5a69788796a5b4c3d2e1f0a1b2",
		podUID: "4f3e2d1c-0b9a-4c8d-a7e6-5f4e3d2c1b0a",
		qos:    "Guaranteed",
		ctrID:  "e1d2c3b4a5968778695a4b3c2d1e0f1e2d3c4b5a69788796a5b4c3d2e1f0a1b2",
		// The pod limit leaves headroom over the container's (kubelet adds
		// pod overhead): with equal limits the pod's counter, which also
		// carries the container cgroup's own kernel objects, is hit first.
		podLimit: 80 * mib, ctrLimit: 64 * mib,
	}
)

// create makes the pod and container cgroups with their limits.
func (v *vm) create(t *testing.T, s podShape) (pod, ctr *cgrouptest.Cgroup) {
	t.Helper()
	pod = v.mkcg(t, s.pod)
	ctr = v.mkcg(t, s.ctr)
	if s.podLimit > 0 {
		pod.SetLimit(t, s.podLimit)
	}
	if s.ctrLimit > 0 {
		ctr.SetLimit(t, s.ctrLimit)
	}
	return pod, ctr
}

// checkIdentity checks the resource attributes of the pod's and the
// container's data: what the path tells, and nothing it does not.
func checkIdentity(t *testing.T, r *receiverRun, s podShape) {
	t.Helper()
	for _, c := range []struct {
		level, path string
		want        map[string]string
	}{
		{"pod", s.pod, map[string]string{"cgroup.path": s.pod, "k8s.pod.uid": s.podUID, "k8s.pod.qos_class": s.qos, "container.id": "", "container.runtime.name": ""}},
		{"container", s.ctr, map[string]string{"cgroup.path": s.ctr, "k8s.pod.uid": s.podUID, "k8s.pod.qos_class": s.qos, "container.id": s.ctrID, "container.runtime.name": s.runtime}},
	} {
		name := "identity/" + s.name + "/" + c.level
		pt, err := r.waitLatest(c.path, time.Time{})
		if err != nil {
			report(t, name, false, "%v", err)
			continue
		}
		var bad []string
		keys := make([]string, 0, len(c.want))
		for k := range c.want {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var shown []string
		for _, k := range keys {
			got, want := pt.attrs[k], c.want[k]
			if got != want {
				bad = append(bad, fmt.Sprintf("%s=%q want %q", k, got, want))
			}
			if k != "cgroup.path" {
				if want == "" {
					want = "(absent)"
				}
				shown = append(shown, k+"="+want)
			}
		}
		if len(bad) > 0 {
			report(t, name, false, "%s", strings.Join(bad, "; "))
			continue
		}
		report(t, name, true, "%s", strings.Join(shown, " "))
	}
}

// reportFields prints one check per target and field.
func reportFields(t *testing.T, prefix string, targets []target, want []string, res map[string]map[string]outcome) {
	t.Helper()
	for _, tg := range targets {
		for _, f := range want {
			o := res[tg.label][f]
			report(t, prefix+"/"+tg.label+"/"+f, o.ok, "%s", o.detail)
		}
	}
}

// settle waits until the memory files of the cgroups stop moving (dirty
// pages written back, the workload idle), so that the comparisons test the
// code rather than the race between two reads.
func (v *vm) settle(paths ...string) {
	unix.Sync()
	var prev map[string]kernelState
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		cur := map[string]kernelState{}
		for _, p := range paths {
			st, err := readKernel(v.h.Abs(p))
			if err != nil {
				return
			}
			cur[p] = st
		}
		if prev != nil && fmt.Sprint(prev) == fmt.Sprint(cur) {
			return
		}
		prev = cur
		time.Sleep(500 * time.Millisecond)
	}
}

// ---- The tests.

// TestVMMetrics: steady workloads (anon, shmem, page cache on ext4) in both
// pod path shapes; the receiver (through its factory) and the cgroupfs
// reader must report what the kernel's files say, with the right identity.
func TestVMMetrics(t *testing.T) {
	v := requireVM(t)
	h, err := cgroupfs.Detect(cgRoot)
	report(t, "hierarchy/detect", err == nil && h.Version == cgroupfs.V2 && h.Dir == cgRoot,
		"cgroupfs.Detect(%s) = %s at %s, err %v", cgRoot, h.Version, h.Dir, err)

	shapes := []podShape{cgroupfsBurstable, systemdBurstable}
	// Files on the disk-backed filesystem, written here and dropped from the
	// page cache, so that reading them from the workload charges page cache
	// to the container.
	if v.disk != "" {
		for _, s := range shapes {
			must(t, "disk file", os.WriteFile(filepath.Join(v.disk, s.workloadID+".dat"), make([]byte, 8*mib), 0o600))
		}
		unix.Sync()
		must(t, "drop_caches", os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0))
	}

	var targets []target
	for _, s := range shapes {
		_, ctr := v.create(t, s)
		p := ctr.Start(t, v.memhog)
		shm := "/dev/shm/" + s.workloadID
		t.Cleanup(func() { os.Remove(shm) })
		do(t, p, "anon 24")
		do(t, p, "file "+shm+" 8")
		if v.disk != "" {
			dat := filepath.Join(v.disk, s.workloadID+".dat")
			do(t, p, "read "+dat) // into the page cache (inactive)
			do(t, p, "read "+dat) // second touch: active_file
			do(t, p, "file "+filepath.Join(v.disk, s.workloadID+".out")+" 4")
		}
		targets = append(targets,
			target{s.name + "/container", s.ctr},
			target{s.name + "/pod", s.pod})
	}
	v.settle(shapes[0].ctr, shapes[1].ctr)

	// The workloads are what they should be, so that equal numbers mean
	// something (not zero against zero).
	for _, s := range shapes {
		st, err := readKernel(v.h.Abs(s.ctr))
		must(t, "read "+s.ctr, err)
		ok := st["anon"].v >= 24*mib && st["shmem"].v >= 8*mib && st["file"].v >= 16*mib &&
			st["active_file"].v > 0 && st["inactive_file"].v > 0 && st["peak.lifetime"].v >= st["usage"].v
		detail := fmt.Sprintf("kernel: usage=%s anon=%s file=%s active_file=%s inactive_file=%s shmem=%s peak=%s limit=%s disk=%q",
			st["usage"], st["anon"], st["file"], st["active_file"], st["inactive_file"], st["shmem"], st["peak.lifetime"], st["limit"], v.disk)
		report(t, "workload/"+s.name, ok, "%s", detail)
	}

	rcv := startReceiver(t, "/kubepods*", "/kubepods*/**")
	res := v.compare(targets, fields, rcv.source(targets))
	reportFields(t, "metrics", targets, fields, res)
	for _, s := range shapes {
		checkIdentity(t, rcv, s)
	}

	// The cgroupfs reader on its own, field by field, for the containers.
	var ctrs []target
	for _, s := range shapes {
		ctrs = append(ctrs, target{s.name + "/container", s.ctr})
	}
	rres := v.compare(ctrs, fields, readerSource(t, v.h, ctrs))
	for _, tg := range ctrs {
		var bad, good []string
		for _, f := range fields {
			o := rres[tg.label][f]
			if !o.ok {
				bad = append(bad, f+": "+o.detail)
			} else {
				good = append(good, f)
			}
		}
		if len(bad) > 0 {
			report(t, "reader/"+tg.label, false, "%s", strings.Join(bad, "; "))
		} else {
			report(t, "reader/"+tg.label, true, "cgroupfs.Reader matches the kernel files on %s", strings.Join(good, ","))
		}
	}
}

// kmsgWatch reads /dev/kmsg with the project's reader from the current end
// of the ring, collecting record messages until stop.
type kmsgWatch struct {
	r    *kmsg.Reader
	recs chan string
}

func watchKmsg(t *testing.T) *kmsgWatch {
	t.Helper()
	r, err := kmsg.Open("/dev/kmsg")
	must(t, "kmsg open", err)
	must(t, "kmsg seek", r.SeekEnd())
	w := &kmsgWatch{r: r, recs: make(chan string, 4096)}
	go func() {
		defer close(w.recs)
		for {
			rec, err := r.Next()
			if errors.Is(err, kmsg.ErrOverwritten) || errors.Is(err, kmsg.ErrMalformed) {
				continue
			}
			if err != nil {
				return
			}
			select {
			case w.recs <- rec.Message:
			default:
			}
		}
	}()
	t.Cleanup(func() { r.Close() })
	return w
}

// find returns the first record that matches, waiting up to timeout.
func (w *kmsgWatch) find(match func(string) bool, timeout time.Duration) (string, bool) {
	tm := time.After(timeout)
	for {
		select {
		case m, ok := <-w.recs:
			if !ok {
				return "", false
			}
			if match(m) {
				return m, true
			}
		case <-tm:
			return "", false
		}
	}
}

// killedPIDs collects the pids of the "Killed process" records that arrive
// within d.
func (w *kmsgWatch) killedPIDs(d time.Duration) []int {
	var pids []int
	for {
		m, ok := w.find(func(m string) bool { return strings.Contains(m, ": Killed process ") }, d)
		if !ok {
			return pids
		}
		var pid int
		if _, err := fmt.Sscanf(m[strings.Index(m, "Killed process ")+len("Killed process "):], "%d", &pid); err == nil {
			pids = append(pids, pid)
		}
	}
}

// killedBySIGKILL waits for memhog to end and reports whether SIGKILL ended it.
func killedBySIGKILL(p *cgrouptest.Proc) (bool, string) {
	ws, err := p.Wait(30 * time.Second)
	if err != nil {
		return false, err.Error()
	}
	if ws.Signaled() && ws.Signal() == syscall.SIGKILL {
		return true, fmt.Sprintf("pid %d killed by SIGKILL", p.Pid)
	}
	return false, fmt.Sprintf("pid %d ended with status %v", p.Pid, ws)
}

// waitOOMKills waits until the receiver reports at least n oom_kills for p
// and returns the value seen before the OOM as recorded in before.
func waitOOMKills(r *receiverRun, p string, n uint64) (point, error) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		pt, ok := r.latest(p, time.Time{})
		if ok && pt.vals["oom_kills"].ok && pt.vals["oom_kills"].v >= n {
			return pt, nil
		}
		if time.Now().After(deadline) {
			return pt, fmt.Errorf("receiver: oom_kills of %s did not reach %d (last %s)", p, n, pt.vals["oom_kills"])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// oomMetricFields are compared after an OOM kill.
var oomMetricFields = []string{"usage", "limit", "failcnt", "oom_kills", "peak.lifetime"}

// TestVMOOMPodLimit: a guaranteed pod (systemd shape) with a 48 MiB limit on
// the pod cgroup and none on the container; the container allocates 100 MiB
// and the kernel kills it at the pod's limit.
func TestVMOOMPodLimit(t *testing.T) {
	v := requireVM(t)
	s := systemdGuaranteed
	pod, ctr := v.create(t, s)
	rcv := startReceiver(t, s.pod, s.pod+"/**")
	p := ctr.Start(t, v.memhog)
	do(t, p, "anon 8")

	start := time.Now()
	before := map[string]point{}
	for _, c := range []string{s.pod, s.ctr} {
		pt, err := rcv.waitLatest(c, start)
		must(t, "receiver before the OOM", err)
		before[c] = pt
	}
	w := watchKmsg(t)

	_, doErr := p.Do("anon 100", 60*time.Second)
	killed, how := killedBySIGKILL(p)
	report(t, "oom/pod-limit/victim-killed", doErr != nil && killed, "memhog allocating 100 MiB in the container of a %d MiB pod: %s", s.podLimit/mib, how)

	pe, err1 := readFlat(filepath.Join(pod.Dir, "memory.events"))
	ce, err2 := readFlat(filepath.Join(ctr.Dir, "memory.events"))
	must(t, "memory.events", errors.Join(err1, err2))
	report(t, "oom/pod-limit/kernel-events",
		pe["max"] > 0 && pe["oom"] >= 1 && pe["oom_kill"] >= 1 && ce["oom_kill"] >= 1 && ce["max"] == 0,
		"pod memory.events max=%d oom=%d oom_kill=%d; container max=%d oom=%d oom_kill=%d (the limit hit is the pod's)",
		pe["max"], pe["oom"], pe["oom_kill"], ce["max"], ce["oom"], ce["oom_kill"])

	after, err := waitOOMKills(rcv, s.ctr, 1)
	b := before[s.ctr].vals["oom_kills"]
	report(t, "oom/pod-limit/oom_kills-rose/container", err == nil && b.ok && b.v == 0,
		"receiver oom_kills before=%s after=%s %v", b, after.vals["oom_kills"], errOrEmpty(err))
	// oom_kills is memory.events.local: the pod's own count stays 0, the
	// kill was in the container (memory.events, hierarchical, says 1).
	podAfter, err := rcv.waitLatest(s.pod, time.Now())
	pk := podAfter.vals["oom_kills"]
	report(t, "oom/pod-limit/oom_kills-local/pod", err == nil && pk.ok && pk.v == 0 && pe["oom_kill"] >= 1,
		"receiver pod oom_kills=%s (memory.events.local), kernel memory.events oom_kill=%d (hierarchical) %v", pk, pe["oom_kill"], errOrEmpty(err))
	targets := []target{{"container", s.ctr}, {"pod", s.pod}}
	reportFields(t, "oom/pod-limit/metrics", targets, oomMetricFields,
		v.compare(targets, oomMetricFields, rcv.source(targets)))
	checkIdentity(t, rcv, s)

	// The kernel's own kill record through the project's kmsg reader.
	line, ok := w.find(func(m string) bool {
		return strings.HasPrefix(m, "oom-kill:") && strings.Contains(m, "task_memcg="+s.ctr+",")
	}, 15*time.Second)
	report(t, "kmsg-reader/pod-limit",
		ok && strings.Contains(line, "constraint=CONSTRAINT_MEMCG") && strings.Contains(line, "oom_memcg="+s.pod+",") &&
			strings.Contains(line, ",task=memhog,pid="+strconv.Itoa(p.Pid)+","),
		"internal/kmsg record: %q", line)

	// The structured record through the receiver's logs pipeline.
	recs := rcv.oomRecords(s.ctr, 1, 15*time.Second)
	if len(recs) != 1 {
		report(t, "oom-report-via-kmsg/pod-limit", false, "want 1 linux.oom_kill record for %s, got %d: %v", s.ctr, len(recs), recs)
		return
	}
	a := recs[0]
	report(t, "oom-report-via-kmsg/pod-limit",
		a["linux.oom.memcg"] == s.pod && a["linux.oom.task_memcg"] == s.ctr &&
			a["process.pid"] == int64(p.Pid) && a["process.executable.name"] == "memhog" &&
			a["linux.oom.memcg.limit"] == s.podLimit && a["linux.oom.constraint"] == "CONSTRAINT_MEMCG" &&
			a["linux.oom.cause"] == "anon" && a["linux.oom.group_kill"] == false &&
			a["resource.k8s.pod.uid"] == s.podUID && strings.Contains(a["body"].(string), "pod"),
		"pid=%v memcg=%v task_memcg=%v limit=%v cause=%v body=%q", a["process.pid"], a["linux.oom.memcg"], a["linux.oom.task_memcg"], a["linux.oom.memcg.limit"], a["linux.oom.cause"], a["body"])
}

// TestVMOOMGroup: a guaranteed pod (cgroupfs shape) whose container has
// memory.oom.group=1 and a 64 MiB limit; an idle process holds 10 MiB while
// another allocates 100 MiB on a thread other than its main thread, and the
// kernel kills both. The group kill names the allocator a second time: by
// its pid, or by a thread id when its main thread has already exited; either
// way it is one process and one record.
func TestVMOOMGroup(t *testing.T) {
	v := requireVM(t)
	s := cgroupfsGuaranteed
	_, ctr := v.create(t, s)
	must(t, "memory.oom.group", os.WriteFile(filepath.Join(ctr.Dir, "memory.oom.group"), []byte("1"), 0))
	rcv := startReceiver(t, s.pod, s.pod+"/**")
	idle := ctr.Start(t, v.memhog)
	do(t, idle, "anon 10")
	hog := ctr.Start(t, v.memhog)

	pt, err := rcv.waitLatest(s.ctr, time.Now())
	must(t, "receiver before the OOM", err)
	b := pt.vals["oom_kills"]
	w := watchKmsg(t)

	_, doErr := hog.Do("anon-thread 100", 60*time.Second)
	k1, how1 := killedBySIGKILL(hog)
	k2, how2 := killedBySIGKILL(idle)
	report(t, "oom/oom-group/all-killed", doErr != nil && k1 && k2, "allocator: %s; idle member: %s", how1, how2)

	ce, err := readFlat(filepath.Join(ctr.Dir, "memory.events"))
	must(t, "memory.events", err)
	report(t, "oom/oom-group/kernel-events", ce["oom_group_kill"] >= 1 && ce["oom_kill"] >= 2 && ce["max"] > 0 && ce["oom"] >= 1,
		"container memory.events max=%d oom=%d oom_kill=%d oom_group_kill=%d (the limit hit is the container's; two processes, the allocator may count twice)",
		ce["max"], ce["oom"], ce["oom_kill"], ce["oom_group_kill"])

	after, err := waitOOMKills(rcv, s.ctr, 2)
	report(t, "oom/oom-group/oom_kills-rose", err == nil && b.ok && b.v == 0,
		"receiver oom_kills before=%s after=%s %v", b, after.vals["oom_kills"], errOrEmpty(err))
	targets := []target{{"container", s.ctr}, {"pod", s.pod}}
	reportFields(t, "oom/oom-group/metrics", targets, oomMetricFields,
		v.compare(targets, oomMetricFields, rcv.source(targets)))
	checkIdentity(t, rcv, s)

	// The kill record names the container as the limit hit, then the group
	// record follows it.
	kill, ok1 := w.find(func(m string) bool {
		return strings.HasPrefix(m, "oom-kill:") && strings.Contains(m, "task_memcg="+s.ctr+",")
	}, 15*time.Second)
	group, ok2 := w.find(func(m string) bool {
		return strings.Contains(m, "due to memory.oom.group set")
	}, 15*time.Second)
	report(t, "kmsg-reader/oom-group",
		ok1 && ok2 && strings.Contains(kill, "oom_memcg="+s.ctr+",") && strings.Contains(group, "Tasks in "+s.ctr+" are going to be killed"),
		"internal/kmsg records: %q then %q", kill, group)
	named := w.killedPIDs(time.Second) // what the group kill named, for the record

	// One structured record per killed process (a pid the kernel prints
	// twice is reported once), each marked as a group kill.
	rcv.oomRecords(s.ctr, 2, 15*time.Second)
	time.Sleep(200 * time.Millisecond) // a third record would be a repeat
	recs := rcv.oomRecords(s.ctr, 2, 0)
	pids := map[int64]bool{}
	allGroup := true
	for _, a := range recs {
		pid, _ := a["process.pid"].(int64)
		pids[pid] = true
		// A group kill ends the container: its verdict is false at once.
		allGroup = allGroup && a["linux.oom.group_kill"] == true && a["linux.oom.container.survived"] == false
	}
	report(t, "oom-report-via-kmsg/oom-group",
		len(recs) == 2 && allGroup && pids[int64(hog.Pid)] && pids[int64(idle.Pid)],
		"want 2 records (allocator %d, idle %d) with linux.oom.group_kill=true and linux.oom.container.survived=false, got %d for pids %v; the group kill named pids %v",
		hog.Pid, idle.Pid, len(recs), pids, named)
}

func errOrEmpty(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestVMCaptureAtTheLimit: capture at the limit on cgroup v2 and the
// memory.peak fallback. The receiver collects once a minute (once, at
// start, during this test) and samples usage every 100 ms; a container
// climbs to its pod's 48 MiB limit and is OOM-killed. The inotify watch on
// memory.events wakes the receiver at the limit hits, and the cgroups'
// memory.events.local counters pick the pod (the limit hit) and the
// container (the kill) out of their ancestors, which are notified too: the
// kill's record carries full samples taken then, not only the one from the
// start. On 6.1, memory.peak has no per-file reset (6.12+): the receiver
// detects it and falls back.
func TestVMCaptureAtTheLimit(t *testing.T) {
	v := requireVM(t)
	s := systemdGuaranteed
	_, ctr := v.create(t, s)

	c, err := cgroupfs.Open(v.h, s.pod, 0)
	must(t, "cgroupfs.Open "+s.pod, err)
	rel := kernelRelease()
	want := !qemuvm.VersionLess(rel, "6.12")
	report(t, "peak/per-fd-reset-detected", c.PeakResets() == want,
		"memory.peak reset per open file: %v on kernel %s (the reset needs 6.12+; otherwise the interval peak comes from the fast samples, event samples and the lifetime peak)", c.PeakResets(), rel)
	c.Close()

	rcv := startReceiverWith(t, func(cfg *cgroupmemoryreceiver.Config) {
		cfg.CollectionInterval = time.Minute
		cfg.SamplingInterval = 100 * time.Millisecond
	}, s.pod, s.pod+"/**")
	p := ctr.Start(t, v.memhog)
	do(t, p, "anon 8")
	_, err = rcv.waitLatest(s.pod, time.Time{})
	must(t, "the collection at start", err)
	time.Sleep(500 * time.Millisecond)
	before, err := readOne(filepath.Join(v.h.Abs(s.pod), "memory.current"))
	must(t, "memory.current", err)
	_, doErr := p.Do("anon 100", 60*time.Second)
	killed, how := killedBySIGKILL(p)
	report(t, "capture/victim-killed", doErr != nil && killed, "%s", how)

	recs := rcv.oomRecords(s.ctr, 1, 15*time.Second)
	if len(recs) != 1 {
		report(t, "capture/record", false, "want 1 linux.oom_kill record for %s, got %d", s.ctr, len(recs))
		return
	}
	h, _ := recs[0]["cgroup.memory.history"].(map[string]any)
	ts, usage, fullT := int64s(h["t"]), int64s(h["usage"]), int64s(h["full_t"])
	top := int64(0)
	for _, u := range usage {
		top = max(top, u)
	}
	// v2 has no notification below the limit (v1's 90 % threshold has no
	// v2 counterpart), and under software emulation the kill can free the
	// memory before the limit-hit event is read: the history must show the
	// climb (well above where it started), not necessarily the top. The
	// ≥ 90 % check runs on v1 in CI (TestOOMRecordCarriesTheClimb).
	base := int64(before.v)
	report(t, "capture/history-climb", len(ts) > 0 && len(ts) == len(usage) && top >= base+s.podLimit/4,
		"%d points, up to %d from %d before the allocation, of a %d limit (a climb of at least a quarter of the limit)", len(ts), top, base, s.podLimit)
	events := 0
	for _, ft := range fullT[min(1, len(fullT)):] {
		if len(fullT) > 0 && ft > fullT[0] {
			events++
		}
	}
	report(t, "capture/inotify-event-samples", events >= 1,
		"%d full samples after the collection at start (only event samples can be: the next collection is a minute away); full_t=%v", events, fullT)
	body, _ := recs[0]["body"].(string)
	report(t, "capture/body-climb", strings.Contains(body, "Usage climbed from "), "body=%q", body)
}

func int64s(v any) []int64 {
	s, _ := v.([]any)
	out := make([]int64, 0, len(s))
	for _, x := range s {
		if n, ok := x.(int64); ok {
			out = append(out, n)
		}
	}
	return out
}
