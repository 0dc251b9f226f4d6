// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

//go:build linux

package e2ev2

import (
	"strings"
	"testing"
	"time"
)

// cgroupfsSurvivor is the survived checks' pod: kubelet's cgroupfs
// driver, burstable, the container limited to 64 MiB.
var cgroupfsSurvivor = podShape{
	name:     "cgroupfs-survivor",
	pod:      "/kubepods/burstable/pod9c8b7a6f-5e4d-4c3b-8a29-1f0e9d8c7b6a",
	ctr:      "/kubepods/burstable/pod9c8b7a6f-5e4d-4c3b-8a29-1f0e9d8c7b6a/3c5e7a9b1d3f5e7a9c1b3d5f7e9a1c3b5d7f9e1a3c5b7d9f1e3a5c7b9d1f3e5a",
	podUID:   "9c8b7a6f-5e4d-4c3b-8a29-1f0e9d8c7b6a",
	qos:      "Burstable",
	ctrID:    "3c5e7a9b1d3f5e7a9c1b3d5f7e9a1c3b5d7f9e1a3c5b7d9f1e3a5c7b9d1f3e5a",
	ctrLimit: 64 * mib,
}

const survivedSentence = "The container kept running — a worker was killed, not its main process — so Kubernetes shows no OOMKilled and no restart."

// TestVMContainerSurvived is issue 19 item 2 on cgroup v2: a container's
// main process (memhog, the init of a pid namespace of its own) runs a
// worker that grows past the container's 64 MiB limit; the kernel kills
// the worker, the main process runs on, and the record says the container
// survived (attribute, sentence) and cgroup.memory.oom_kill.survived
// counts it. Then the main process itself grows and is killed: its
// record says false, and the count stays 1.
func TestVMContainerSurvived(t *testing.T) {
	v := requireVM(t)
	s := cgroupfsSurvivor
	_, ctr := v.create(t, s)
	rcv := startReceiver(t, s.pod, s.pod+"/**")
	main := ctr.StartContainer(t, v.memhog)
	_, err := main.Do("child 100", 60*time.Second)
	report(t, "survived/worker-killed", err == nil,
		"the main process (pid %d, init of its own pid namespace) lost its worker to an OOM kill and runs on: %s", main.Pid, errOrEmpty(err))

	recs := rcv.oomRecords(s.ctr, 1, 15*time.Second)
	if len(recs) != 1 {
		report(t, "survived/record", false, "want 1 linux.oom_kill record for %s, got %d", s.ctr, len(recs))
		return
	}
	a := recs[0]
	body, _ := a["body"].(string)
	report(t, "survived/record",
		a["linux.oom.container.survived"] == true && strings.Contains(body, survivedSentence) && a["process.pid"] != int64(main.Pid),
		"victim pid %v (main %d), linux.oom.container.survived=%v, body=%q", a["process.pid"], main.Pid, a["linux.oom.container.survived"], body)

	n, ok := survivedCount(rcv, s.ctr, 1, 10*time.Second)
	report(t, "survived/metric", ok && n == 1, "cgroup.memory.oom_kill.survived of %s = %d (seen %v), want 1", s.ctr, n, ok)

	_, err = main.Do("anon 100", 60*time.Second)
	killed, how := killedBySIGKILL(main)
	report(t, "survived/main-killed", err != nil && killed, "the main process allocating 100 MiB: %s", how)
	recs = rcv.oomRecords(s.ctr, 2, 15*time.Second)
	if len(recs) != 2 {
		report(t, "survived/converse-record", false, "want 2 linux.oom_kill records for %s, got %d", s.ctr, len(recs))
		return
	}
	b := recs[1]
	body, _ = b["body"].(string)
	report(t, "survived/converse-record",
		b["linux.oom.container.survived"] == false && !strings.Contains(body, "kept running") && b["process.pid"] == int64(main.Pid),
		"victim pid %v (main %d), linux.oom.container.survived=%v, body=%q", b["process.pid"], main.Pid, b["linux.oom.container.survived"], body)
	time.Sleep(500 * time.Millisecond) // collections after the verdict
	n, ok = survivedCount(rcv, s.ctr, 1, 0)
	report(t, "survived/converse-metric", ok && n == 1, "cgroup.memory.oom_kill.survived of %s = %d after the main process's kill, want still 1", s.ctr, n)
}

// survivedCount waits until the newest cgroup.memory.oom_kill.survived of
// p reaches want (or timeout passes) and returns it.
func survivedCount(r *receiverRun, p string, want int64, timeout time.Duration) (int64, bool) {
	deadline := time.Now().Add(timeout)
	for {
		var n int64
		seen := false
		all := r.sink.AllMetrics()
		for i := len(all) - 1; i >= 0 && !seen; i-- {
			rms := all[i].ResourceMetrics()
			for j := 0; j < rms.Len(); j++ {
				rm := rms.At(j)
				if cp, ok := rm.Resource().Attributes().Get("cgroup.path"); !ok || cp.Str() != p {
					continue
				}
				sms := rm.ScopeMetrics()
				for k := 0; k < sms.Len(); k++ {
					ms := sms.At(k).Metrics()
					for l := 0; l < ms.Len(); l++ {
						if m := ms.At(l); m.Name() == "cgroup.memory.oom_kill.survived" && m.Sum().DataPoints().Len() > 0 {
							n, seen = m.Sum().DataPoints().At(0).IntValue(), true
						}
					}
				}
			}
		}
		if (seen && n >= want) || time.Now().After(deadline) {
			return n, seen
		}
		time.Sleep(20 * time.Millisecond)
	}
}
