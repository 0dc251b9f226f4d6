// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

//go:build linux

package e2ev2

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/oomsight/oomsight/internal/cgroupfs"
	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver"
)

// etaPoint is one exported cgroup.memory.oom.eta data point.
type etaPoint struct {
	at  time.Time
	eta float64
}

// etaPoints returns the cgroup.memory.oom.eta points of the cgroup at p.
func (r *receiverRun) etaPoints(p string) []etaPoint {
	var out []etaPoint
	for _, md := range r.sink.AllMetrics() {
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			rm := md.ResourceMetrics().At(i)
			if cp, ok := rm.Resource().Attributes().Get("cgroup.path"); !ok || cp.Str() != p {
				continue
			}
			for j := 0; j < rm.ScopeMetrics().Len(); j++ {
				ms := rm.ScopeMetrics().At(j).Metrics()
				for k := 0; k < ms.Len(); k++ {
					if ms.At(k).Name() != "cgroup.memory.oom.eta" || ms.At(k).Type() != pmetric.MetricTypeGauge {
						continue
					}
					dps := ms.At(k).Gauge().DataPoints()
					for l := 0; l < dps.Len(); l++ {
						out = append(out, etaPoint{dps.At(l).Timestamp().AsTime(), dps.At(l).DoubleValue()})
					}
				}
			}
		}
	}
	return out
}

// alertFires emulates CgroupOOMImminent on the points (oldest first) as
// Prometheus would see them scraped every 5 s at any phase (every 100 ms
// of the 5 s): it fires when three scrapes in a row (10 s, its for:) find
// an estimate below the 300 s warning time.
func alertFires(pts []etaPoint) bool {
	for phase := time.Duration(0); phase < 5*time.Second; phase += 100 * time.Millisecond {
		run, i := 0, 0
		for at := pts[0].at.Add(phase); !at.After(pts[len(pts)-1].at); at = at.Add(5 * time.Second) {
			for i+1 < len(pts) && !pts[i+1].at.After(at) {
				i++
			}
			if pts[i].eta < 300 {
				run++
			} else {
				run = 0
			}
			if run >= 3 {
				return true
			}
		}
	}
	return false
}

// TestVMOOMETA is issue 18 item 4 on cgroup v2 (Debian's 6.1 kernel), the
// subset of the v1 proof (internal/testing/e2e TestOOMETAProofs) that a
// 768 MiB VM without Prometheus can run, concurrently, with the receiver
// collecting every 1 s:
//
//   - unreclaimable-keys: the kernel's memory.stat has every key of
//     cgroupfs.UnreclaimableV2;
//   - ramp (256 MiB limit, anonymous memory at 4 MiB/s from 0 until
//     killed): every oom.eta point from 30 s before the kill on is within
//     ±25 % of the true remaining time (and never closer than one
//     collection interval, 1 s; the
//     alert needs Prometheus: v1 only);
//   - cache (32 MiB limit, a 40 MiB file on the RAM disk rewritten and
//     reread for as long as the ramp runs) and steady (100 MiB of anon in a
//     128 MiB limit): CgroupOOMImminent, emulated on the exported points
//     at every scrape phase, never fires; no kill (scaled down from v1's
//     256 MiB: the RAM disk has 64 MiB, the VM 768 MiB);
//   - step (200 MiB limit, 100 MiB then 150 MiB at once): killed, and its
//     OOM record and the removed cgroup's exported peak reach 95 % of the
//     limit.
func TestVMOOMETA(t *testing.T) {
	v := requireVM(t)
	if v.disk == "" {
		must(t, "disk", os.ErrNotExist)
	}
	const (
		rampLimit   = 256 * mib
		cacheLimit  = 32 * mib
		steadyLimit = 128 * mib
		stepLimit   = 200 * mib
	)
	ramp := v.mkcg(t, "/oomsight-eta-ramp")
	ramp.SetLimit(t, rampLimit)
	cache := v.mkcg(t, "/oomsight-eta-cache")
	cache.SetLimit(t, cacheLimit)
	steady := v.mkcg(t, "/oomsight-eta-steady")
	steady.SetLimit(t, steadyLimit)
	step := v.mkcg(t, "/oomsight-eta-step")
	step.SetLimit(t, stepLimit)
	rcv := startReceiverWith(t, func(cfg *cgroupmemoryreceiver.Config) {
		cfg.CollectionInterval = time.Second
		cfg.SamplingInterval = 100 * time.Millisecond
	}, ramp.Path, cache.Path, steady.Path, step.Path)
	_, err := rcv.waitLatest(ramp.Path, time.Time{})
	must(t, "the collection at start", err)

	stat, err := readFlat(filepath.Join(ramp.Dir, "memory.stat"))
	must(t, "memory.stat", err)
	var missing []string
	for _, k := range cgroupfs.UnreclaimableV2 {
		if _, ok := stat[k]; !ok {
			missing = append(missing, k)
		}
	}
	report(t, "eta/unreclaimable-keys", len(missing) == 0, "memory.stat lacks %v of %v", missing, cgroupfs.UnreclaimableV2)

	sp := steady.Start(t, v.memhog)
	do(t, sp, "anon 100")
	cp := cache.Start(t, v.memhog)
	file := filepath.Join(v.disk, "eta-cache")
	defer func() { _ = os.Remove(file) }()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var cacheErr error
	rounds := 0
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, cmd := range []string{"file " + file + " 40", "read " + file} {
				if _, doErr := cp.Do(cmd, time.Minute); doErr != nil {
					cacheErr = doErr
					return
				}
			}
			rounds++
		}
	})

	rp := ramp.Start(t, v.memhog)
	start := time.Now()
	var killed time.Time
	var rampErr error
	wg.Go(func() {
		// 320 MiB mapped (the limit is 256): a 1 GiB mapping fails in a
		// 768 MiB VM (overcommit heuristic).
		_, rampErr = rp.Do("ramp 4096 320", 3*time.Minute)
		killed = time.Now()
		close(stop)
	})

	// The step, early in the ramp (memory: 40 MiB of ramp, 250 of step).
	time.Sleep(5 * time.Second)
	stp := step.Start(t, v.memhog)
	do(t, stp, "anon 100")
	time.Sleep(2 * time.Second)
	_, err = stp.Do("anon 150", 60*time.Second)
	stepKilled, how := killedBySIGKILL(stp)
	report(t, "eta/step/killed", err != nil && stepKilled, "%s", how)
	must(t, "remove the step cgroup", cgrouptest.RemoveCgroup(step.Dir))

	wg.Wait()
	rampKilled, how := killedBySIGKILL(rp)
	report(t, "eta/ramp/killed", rampErr != nil && rampKilled, "after %.1f s: %s", killed.Sub(start).Seconds(), how)
	report(t, "eta/cache/ran", cacheErr == nil && rounds > 0, "%d rounds of rewrite 40 MiB + reread in a 32 MiB limit (%v)", rounds, cacheErr)
	time.Sleep(2500 * time.Millisecond) // two collections after the kill

	var lines []string
	inWindow, bad := 0, 0
	first := time.Time{}
	for _, p := range rcv.etaPoints(ramp.Path) {
		if p.at.Before(killed.Add(-30*time.Second)) || !p.at.Before(killed) {
			continue
		}
		if first.IsZero() {
			first = p.at
		}
		truth := killed.Sub(p.at).Seconds()
		inWindow++
		// ±25 %, and never closer than one collection interval, 1 s (the
		// v1 proof's etaTolerance).
		if off := p.eta - truth; math.Abs(off) > max(0.25*truth, 1) {
			bad++
		}
		lines = append(lines, fmt.Sprintf("%.1f:%.1f", truth, p.eta))
	}
	report(t, "eta/ramp/within-25pct", inWindow >= 20 && bad == 0,
		"%d points in the last 30 s before the kill (first %.1f s before), %d off by more than 25 %%; true:exported %s",
		inWindow, killed.Sub(first).Seconds(), bad, strings.Join(lines, " "))

	for _, cg := range []*cgrouptest.Cgroup{cache, steady} {
		name := filepath.Base(cg.Path)
		pts := rcv.etaPoints(cg.Path)
		ev, err := readFlat(filepath.Join(cg.Dir, "memory.events.local"))
		must(t, "memory.events.local", err)
		var finite []string
		for _, p := range pts {
			if !math.IsInf(p.eta, 1) {
				finite = append(finite, fmt.Sprintf("%.1f", p.eta))
			}
		}
		report(t, "eta/"+name+"/not-imminent", len(pts) > 0 && !alertFires(pts),
			"%d oom.eta points, %d finite %v: CgroupOOMImminent (below 300 s at three 5 s evaluations in a row) fires at no scrape phase", len(pts), len(finite), finite)
		report(t, "eta/"+name+"/no-kill", ev["oom_kill"] == 0, "oom_kill %d, max %d", ev["oom_kill"], ev["max"])
	}

	recs := rcv.oomRecords(step.Path, 1, 10*time.Second)
	top := int64(0)
	if len(recs) > 0 {
		if h, ok := recs[0]["cgroup.memory.history"].(map[string]any); ok {
			for _, u := range int64s(h["usage"]) {
				top = max(top, u)
			}
		}
	}
	report(t, "eta/step/record", len(recs) == 1 && top >= stepLimit*95/100,
		"%d records; history's highest usage %.1f MiB of %d MiB", len(recs), float64(top)/mib, stepLimit/mib)
	_, peaks := rcv.peakPoints(step.Path)
	peak := int64(0)
	for _, x := range peaks {
		peak = max(peak, x)
	}
	report(t, "eta/step/last-interval", peak >= stepLimit*95/100, "removed cgroup's exported peak %.1f MiB of %d MiB", float64(peak)/mib, stepLimit/mib)
}
