// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

//go:build linux

package e2ev2

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oomsight/oomsight/internal/cgroupfs"
)

// TestVMQoSSignals reads the v2 pressure and memory QoS signals of a real
// cgroup through cgroupfs and compares them with the kernel's files read
// with strconv: page cache written past memory.high and memory.max raises
// the high and max events (own and subtree) and no kill; memory.high,
// memory.low, memory.min and memory.swap.max are read, and served from the
// limit cache until written; memory.pressure gives both totals and avg10.
func TestVMQoSSignals(t *testing.T) {
	v := requireVM(t)
	if v.disk == "" {
		must(t, "disk", os.ErrNotExist)
	}
	cg := v.mkcg(t, "/oomsight-qos")
	write := func(file, val string) {
		t.Helper()
		must(t, "write "+file, os.WriteFile(filepath.Join(cg.Dir, file), []byte(val), 0))
	}
	write("memory.max", strconv.Itoa(16*mib))
	write("memory.swap.max", "0")
	write("memory.high", strconv.Itoa(8*mib))
	write("memory.low", strconv.Itoa(2*mib))

	w := cgroupfs.NewLimitWatch()
	defer w.Close()
	opt := cgroupfs.WithPressure | cgroupfs.WithQoS | cgroupfs.WithSwapLimit | cgroupfs.WithSwapEvents | cgroupfs.WithTreeEvents
	c, err := cgroupfs.OpenWatched(v.h, cg.Path, opt, w)
	must(t, "open", err)
	defer c.Close()
	r := cgroupfs.NewReader()
	read := func() *cgroupfs.Sample {
		t.Helper()
		var s cgroupfs.Sample
		must(t, "read", r.Read(c, time.Now(), &s))
		return &s
	}
	is := func(name string, s *cgroupfs.Sample, f cgroupfs.Field, want uint64) {
		t.Helper()
		got, ok := s.Get(f)
		report(t, "qos/"+name, ok && got == want, "%s = %d (present %v), want %d", f, got, ok, want)
	}

	s := read()
	is("high", s, cgroupfs.High, 8*mib)
	is("low", s, cgroupfs.Low, 2*mib)
	is("min", s, cgroupfs.Min, 0)
	is("swap_limit", s, cgroupfs.SwapLimit, 0)
	is("limit", s, cgroupfs.Limit, 16*mib)

	p := cg.Start(t, v.memhog)
	defer p.Kill()
	// The disk is a 64 MiB RAM disk the other tests use too: a small file,
	// removed afterwards.
	cache := filepath.Join(v.disk, "qos-cache")
	defer func() { _ = os.Remove(cache) }()
	do(t, p, "file "+cache+" 32") // twice the limit, four times high; reclaimable
	s = read()
	own, err := readFlat(filepath.Join(cg.Dir, "memory.events.local"))
	must(t, "memory.events.local", err)
	tree, err := readFlat(filepath.Join(cg.Dir, "memory.events"))
	must(t, "memory.events", err)
	swapEv, err := readFlat(filepath.Join(cg.Dir, "memory.swap.events"))
	must(t, "memory.swap.events", err)
	report(t, "qos/high_events_rose", own["high"] > 0, "memory.events.local high = %d", own["high"])
	is("events_high", s, cgroupfs.EventsHigh, own["high"])
	is("events_max", s, cgroupfs.Failcnt, own["max"])
	is("events_oom", s, cgroupfs.EventsOOM, own["oom"])
	is("events_oom_kill", s, cgroupfs.OOMKills, 0)
	is("events_low", s, cgroupfs.EventsLow, own["low"])
	is("subtree_high", s, cgroupfs.TreeEventsHigh, tree["high"])
	is("subtree_max", s, cgroupfs.TreeEventsMax, tree["max"])
	is("swap_events_max", s, cgroupfs.SwapEventsMax, swapEv["max"])
	is("swap_events_fail", s, cgroupfs.SwapEventsFail, swapEv["fail"])
	if g, ok := own["oom_group_kill"]; ok { // 5.17+
		is("events_oom_group_kill", s, cgroupfs.EventsOOMGroupKill, g)
	}

	// PSI: read the file right after the sample; the totals only grow, and
	// avg10 is the kernel's two-decimal percentage.
	b, err := os.ReadFile(filepath.Join(cg.Dir, "memory.pressure"))
	must(t, "memory.pressure", err)
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		total, err := strconv.ParseUint(strings.TrimPrefix(f[4], "total="), 10, 64)
		must(t, "pressure total", err)
		totalF, avgF := cgroupfs.PressureSome, cgroupfs.PressureSomeAvg10
		if f[0] == "full" {
			totalF, avgF = cgroupfs.PressureFull, cgroupfs.PressureFullAvg10
		}
		got, ok := s.Get(totalF)
		report(t, "qos/pressure_total_"+f[0], ok && got <= total, "%s = %d (present %v), file afterwards %d", totalF, got, ok, total)
		avg, ok := s.Get(avgF)
		report(t, "qos/pressure_avg10_"+f[0], ok && avg <= 10000, "%s = %d hundredths of a percent (present %v)", avgF, avg, ok)
	}

	// The limit-like files are cached: a write shows after Changes only.
	write("memory.high", strconv.Itoa(12*mib))
	is("high_cached", read(), cgroupfs.High, 8*mib)
	w.Changes()
	is("high_after_write", read(), cgroupfs.High, 12*mib)
	write("memory.high", "max")
	w.Changes()
	_, ok := read().Get(cgroupfs.High)
	report(t, "qos/high_max_absent", !ok, "memory.high max: present %v", ok)
}
