// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package peerbench holds the pure parts of `make bench-peers`, which runs
// cAdvisor and otelcol-oomsight one after the other on the same real
// cgroups and compares them as whole processes: reading a process's CPU
// time and peak resident set from /proc, the configurations each program
// runs with, and the BENCHPEER lines. The driver that starts the processes
// and the cgroups is BenchmarkPeers in internal/testing/e2e.
package peerbench // import "github.com/oomsight/oomsight/internal/peerbench"

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// userHZ is the unit of utime and stime in /proc/<pid>/stat: USER_HZ, 100
// on every Linux architecture (sysconf(_SC_CLK_TCK)).
const userHZ = 100

// Usage is what a process has used so far: CPU time (user + system) from
// /proc/<pid>/stat, and its memory from /proc/<pid>/status.
type Usage struct {
	CPU time.Duration
	Memory
}

// Memory is a process's resident set in bytes: now (VmRSS) and at its
// highest (VmHWM, the peak), and now split into anonymous pages (heap,
// stacks: RssAnon) and file pages (the binary's code and data as far as
// they were touched: RssFile), which tells a Go heap from a large binary.
type Memory struct {
	RSS, HWM   int64
	Anon, File int64
}

// ReadUsage reads a live process's usage.
func ReadUsage(pid int) (Usage, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Usage{}, fmt.Errorf("process %d: %w", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Usage{}, fmt.Errorf("process %d: %w", pid, err)
	}
	var u Usage
	if u.CPU, err = ParseStat(stat); err != nil {
		return Usage{}, fmt.Errorf("process %d: /proc/%d/stat: %w", pid, pid, err)
	}
	if u.Memory, err = ParseStatus(status); err != nil {
		return Usage{}, fmt.Errorf("process %d: /proc/%d/status: %w", pid, pid, err)
	}
	return u, nil
}

// ParseStat returns the CPU time (utime + stime) in the contents of
// /proc/<pid>/stat. The command name, field 2, is in parentheses and may
// itself hold spaces and parentheses, so the fields are counted from the
// last ')': utime and stime are fields 14 and 15 of the line.
func ParseStat(b []byte) (time.Duration, error) {
	end := bytes.LastIndexByte(b, ')')
	if end < 0 || end+2 > len(b) {
		return 0, errors.New("no command name in parentheses")
	}
	f := bytes.Fields(b[end+1:])
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	const utime, stime = 14 - 3, 15 - 3
	if len(f) <= stime {
		return 0, fmt.Errorf("%d fields after the command name, want at least %d", len(f), stime+1)
	}
	// Ticks fit 32 bits for over a year of CPU time: 32 bits each keeps
	// their sum in time.Duration's range.
	u, err := strconv.ParseUint(string(f[utime]), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("utime: %w", err)
	}
	s, err := strconv.ParseUint(string(f[stime]), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("stime: %w", err)
	}
	return time.Duration(int64(u)+int64(s)) * time.Second / userHZ, nil
}

// ParseStatus returns the memory in the contents of /proc/<pid>/status. A
// kernel thread has none: that is an error, as is a process whose status
// lacks VmRSS or VmHWM (RssAnon and RssFile are there since Linux 4.5;
// without them they stay 0).
func ParseStatus(b []byte) (Memory, error) {
	var m Memory
	var haveRSS, haveHWM bool
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		var dst *int64
		switch string(name) {
		case "VmRSS":
			dst, haveRSS = &m.RSS, true
		case "VmHWM":
			dst, haveHWM = &m.HWM, true
		case "RssAnon":
			dst = &m.Anon
		case "RssFile":
			dst = &m.File
		default:
			continue
		}
		kb, unit, _ := bytes.Cut(bytes.TrimSpace(value), []byte(" "))
		if string(unit) != "kB" {
			return Memory{}, fmt.Errorf("%s: %q: want a number of kB", name, bytes.TrimSpace(value))
		}
		n, err := strconv.ParseInt(string(kb), 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("%s: %w", name, err)
		}
		*dst = n << 10
	}
	if !haveRSS || !haveHWM {
		return Memory{}, errors.New("no VmRSS or no VmHWM (a kernel thread, or not a process status)")
	}
	return m, nil
}

// ParseLoadavg returns the 1-minute load average in the contents of
// /proc/loadavg, printed next to every figure: a loaded machine moves
// them.
func ParseLoadavg(b []byte) (float64, error) {
	f := bytes.Fields(b)
	if len(f) == 0 {
		return 0, errors.New("empty /proc/loadavg")
	}
	v, err := strconv.ParseFloat(string(f[0]), 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/loadavg: %w", err)
	}
	return v, nil
}
