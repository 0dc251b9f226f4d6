// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package procsnap takes snapshots of the processes of a cgroup near its
// memory limit: for each process its pid, name, command line and resident
// memory by kind, the largest few kept. An OOM record carries the snapshot
// taken nearest before the kill, so that a kill of one of several `python`
// workers says which one (its command line); a snapshot that no kill
// followed is a near miss.
//
// Parsing is pure (this file; the redaction in redact*.go, measured by
// TestRedactionCorpus, docs/redaction.md); reading /proc and the cgroup
// files is in take.go; the bounded worker, the per-cgroup rate limit
// and the near-miss episodes are in snapper.go.
package procsnap // import "github.com/oomsight/oomsight/internal/procsnap"

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// Status is what a snapshot takes from /proc/<pid>/status.
type Status struct {
	// Name is the task's comm (at most 15 bytes, as the kernel's OOM task
	// table prints it).
	Name string
	// RSSAnon, RSSFile and RSSShmem are resident bytes by kind (the
	// kernel's RssAnon/RssFile/RssShmem lines, 4.5+). HasRSS is false for a
	// task without memory of its own (a kernel thread, a zombie).
	RSSAnon, RSSFile, RSSShmem int64
	HasRSS                     bool
}

// RSS is the total resident memory.
func (s Status) RSS() int64 { return s.RSSAnon + s.RSSFile + s.RSSShmem }

// ErrNoName marks a status file without a Name line: not a
// /proc/<pid>/status file.
var ErrNoName = errors.New("procsnap: status without a Name line")

// ParseStatus reads the lines of a /proc/<pid>/status file that a snapshot
// needs. /proc/<pid>/status rather than smaps_rollup: status prints the
// mm's RSS counters (a constant-time read), while smaps_rollup walks every
// mapping and page table of the process under its mmap lock — costly for
// a large process, and contending with the very process that allocates at
// the limit. The counters are per-CPU caches summed lazily, so they may lag
// by a few pages per CPU: enough to rank processes and name the big ones.
func ParseStatus(b []byte) (Status, error) {
	var s Status
	var haveName bool
	for len(b) > 0 {
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		key, val, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			continue
		}
		var dst *int64
		switch string(key) {
		case "Name":
			s.Name = string(bytes.TrimSpace(val))
			haveName = true
			continue
		case "RssAnon":
			dst = &s.RSSAnon
		case "RssFile":
			dst = &s.RSSFile
		case "RssShmem":
			dst = &s.RSSShmem
		default:
			continue
		}
		n, err := parseKB(val)
		if err != nil {
			return Status{}, fmt.Errorf("procsnap: status %s: %w", key, err)
		}
		*dst = n
		s.HasRSS = true
	}
	if !haveName {
		return Status{}, ErrNoName
	}
	return s, nil
}

// parseKB parses "   116 kB" into bytes.
func parseKB(v []byte) (int64, error) {
	f := bytes.Fields(v)
	if len(f) != 2 || string(f[1]) != "kB" {
		return 0, fmt.Errorf("%q is not an amount in kB", bytes.TrimSpace(v))
	}
	n, err := strconv.ParseInt(string(f[0]), 10, 64)
	if err != nil || n < 0 || n > 1<<53 {
		return 0, fmt.Errorf("%q is not an amount in kB", bytes.TrimSpace(v))
	}
	return n << 10, nil
}

// ParsePIDs appends the pids of a cgroup.procs file to dst. A pid of 0 is a
// process outside the reader's pid namespace (the kernel prints those as
// 0): it is counted in hidden, not appended.
func ParsePIDs(b []byte, dst []int) (pids []int, hidden int, err error) {
	for f := range bytes.FieldsSeq(b) {
		n, err := strconv.Atoi(string(f))
		if err != nil || n < 0 {
			return dst, hidden, fmt.Errorf("procsnap: cgroup.procs: %q is not a pid", f)
		}
		if n == 0 {
			hidden++
			continue
		}
		dst = append(dst, n)
	}
	return dst, hidden, nil
}

// SplitCmdline splits a /proc/<pid>/cmdline (arguments ending in NUL
// bytes) into its arguments. truncated tells that the read stopped before
// the end of the file: the last argument may be cut, so it is dropped
// (a cut secret would escape the redaction rules that recognize its
// whole shape). A process that rewrote its command line as one string
// (setproctitle) gives one argument, split at spaces instead.
func SplitCmdline(b []byte, truncated bool) []string {
	if truncated {
		i := bytes.LastIndexByte(b, 0)
		if i < 0 {
			return nil
		}
		b = b[:i+1]
	}
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return nil
	}
	var args []string
	if bytes.IndexByte(b, 0) < 0 {
		for f := range bytes.FieldsSeq(b) {
			args = append(args, string(f))
		}
		return args
	}
	for a := range bytes.SplitSeq(b, []byte{0}) {
		args = append(args, string(a))
	}
	return args
}
