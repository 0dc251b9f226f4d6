// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

//go:build linux

package e2ev2

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// snapshotShape is the process-snapshot test's pod: cgroupfs driver,
// burstable, a 64 MiB limit on the container.
var snapshotShape = podShape{
	name:     "cgroupfs-snapshot",
	pod:      "/kubepods/burstable/pod2c4e6a8b-0d1f-4a3b-9c5d-7e9f1a3b5c7d",
	ctr:      "/kubepods/burstable/pod2c4e6a8b-0d1f-4a3b-9c5d-7e9f1a3b5c7d/9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b",
	podUID:   "2c4e6a8b-0d1f-4a3b-9c5d-7e9f1a3b5c7d",
	qos:      "Burstable",
	ctrID:    "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b",
	ctrLimit: 64 * mib,
}

// TestVMProcessSnapshot: on cgroup v2, two memhog workers with different
// command lines in one container; the container sits above 90 % of its
// limit (the fast pass asks for a snapshot), then one grows and is killed:
// its record names it by its command line, the other's password redacted.
func TestVMProcessSnapshot(t *testing.T) {
	v := requireVM(t)
	s := snapshotShape
	_, ctr := v.create(t, s)
	rcv := startReceiver(t, s.pod, s.pod+"/**")
	idle := ctr.Start(t, v.memhog, "--worker=report-builder", "--db-password=hunter2")
	grower := ctr.Start(t, v.memhog, "--worker=thumbnailer")
	do(t, idle, "anon 4")
	do(t, grower, "anon 54") // about 60 MiB with both runtimes: above 90 % of 64
	time.Sleep(2 * time.Second)
	_, doErr := grower.Do("anon 40", 60*time.Second)
	killed, how := killedBySIGKILL(grower)
	if !report(t, "snapshot/victim-killed", doErr != nil && killed, "the growing worker: %s", how) {
		return
	}
	recs := rcv.oomRecords(s.ctr, 1, 15*time.Second)
	if len(recs) != 1 {
		report(t, "snapshot/record", false, "want 1 linux.oom_kill record for %s, got %d", s.ctr, len(recs))
		return
	}
	a := recs[0]
	wantVictim := v.memhog + " --worker=thumbnailer"
	wantIdle := v.memhog + " --worker=report-builder --db-password=***"
	var procs []string
	if list, ok := a["linux.oom.processes"].([]any); ok {
		for _, p := range list {
			m, _ := p.(map[string]any)
			procs = append(procs, fmt.Sprintf("%v %v", m["pid"], m["cmdline"]))
		}
	}
	listed := strings.Join(procs, "; ")
	report(t, "snapshot/victim-cmdline",
		a["process.pid"] == int64(grower.Pid) && a["linux.oom.victim.cmdline"] == wantVictim &&
			strings.Contains(a["body"].(string), `Its command line was "`+wantVictim+`"`) &&
			strings.Contains(listed, fmt.Sprintf("%d %s", idle.Pid, wantIdle)) && !strings.Contains(fmt.Sprint(a), "hunter2"),
		"victim pid %v cmdline %q; snapshot of %v at %v: %s", a["process.pid"], a["linux.oom.victim.cmdline"], a["linux.oom.processes.cgroup"], a["linux.oom.processes.time"], listed)
}
