// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

//go:build linux

package inotify_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/oomsight/oomsight/internal/cgroupfs"
	"github.com/oomsight/oomsight/internal/inotify"
	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
)

// BenchmarkDirectoryWatch answers whether one directory watch per cgroup,
// dispatched by file name, costs less than the per-file watches: over N
// real child memory cgroups (OOMSIGHT_BENCH_CGROUPS, default 100) it times
// the fast pass's read (pread of the usage file on a held descriptor) and
// a write of a file the receiver writes every collection (the v1 peak
// reset, memory.max_usage_in_bytes; v2: memory.peak) under the two ways of
// watching, switched back and forth in rounds so that the machine's noise
// weighs on both alike:
//
//   - per-file (what the receiver does): each cgroup directory watched
//     for subdirectories (discovery) and its limit file for IN_MODIFY
//     (the limit cache; on v2 memory.events too, for capture at the limit);
//   - directory: each cgroup directory watched once, IN_MODIFY added to
//     the discovery mask, the file named by the event.
//
// An IN_MODIFY watch on a directory makes the kernel pass every read and
// write of the files in it through the parent notification path, and
// queues an event for each write of any of them (the receiver's own peak
// resets included), which per-file watches do not.
func BenchmarkDirectoryWatch(b *testing.B) {
	env := cgrouptest.Require(b)
	n := 100
	if v := os.Getenv("OOMSIGHT_BENCH_CGROUPS"); v != "" {
		if _, err := fmt.Sscan(v, &n); err != nil || n <= 0 {
			b.Fatalf("OOMSIGHT_BENCH_CGROUPS=%q", v)
		}
	}
	parent := env.Many(b, fmt.Sprintf("oomsight-bench-dirwatch-%d", os.Getpid()), n, 64)
	usage, limit, written, events := "memory.usage_in_bytes", "memory.limit_in_bytes", "memory.max_usage_in_bytes", ""
	if env.Hierarchy.Version == cgroupfs.V2 {
		usage, limit, written, events = "memory.current", "memory.max", "memory.peak", "memory.events"
	}
	var dirs []string
	var readFds, writeFds []int
	for i := range n {
		dir := filepath.Join(parent.Dir, fmt.Sprintf("c%04d", i))
		dirs = append(dirs, dir)
		fd, err := unix.Open(filepath.Join(dir, usage), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		readFds = append(readFds, fd)
		fd, err = unix.Open(filepath.Join(dir, written), unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		writeFds = append(writeFds, fd)
	}
	defer func() {
		for _, fd := range append(readFds, writeFds...) {
			_ = unix.Close(fd)
		}
	}()
	const dirMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO
	perFile := func() *inotify.Instance[string] {
		in, err := inotify.New[string]()
		if err != nil {
			b.Fatal(err)
		}
		for _, dir := range dirs {
			must(b, in.Add(dir, dir, dirMask|unix.IN_ONLYDIR))
			must(b, in.Add(dir+"/"+limit, filepath.Join(dir, limit), unix.IN_MODIFY))
			if events != "" {
				must(b, in.Add(dir+"/"+events, filepath.Join(dir, events), unix.IN_MODIFY))
			}
		}
		return in
	}
	directory := func() *inotify.Instance[string] {
		in, err := inotify.New[string]()
		if err != nil {
			b.Fatal(err)
		}
		for _, dir := range dirs {
			must(b, in.Add(dir, dir, dirMask|unix.IN_MODIFY|unix.IN_ONLYDIR))
		}
		return in
	}
	buf := make([]byte, 64)
	zero := []byte("0\n")
	pass := func(in *inotify.Instance[string]) (read, write time.Duration, evs int) {
		t0 := time.Now()
		for _, fd := range readFds {
			if _, err := unix.Pread(fd, buf, 0); err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		for _, fd := range writeFds {
			if _, err := unix.Pwrite(fd, zero, 0); err != nil {
				b.Fatal(err)
			}
		}
		t2 := time.Now()
		in.Drain(func(inotify.Event[string]) { evs++ })
		return t1.Sub(t0), time.Since(t2) + t2.Sub(t1), evs
	}
	const passes = 20
	var fileRead, fileWrite, dirRead, dirWrite time.Duration
	var fileEvs, dirEvs, rounds int
	for b.Loop() {
		for _, setup := range []struct {
			make        func() *inotify.Instance[string]
			read, write *time.Duration
			evs         *int
		}{{perFile, &fileRead, &fileWrite, &fileEvs}, {directory, &dirRead, &dirWrite, &dirEvs}} {
			in := setup.make()
			for range passes {
				r, w, e := pass(in)
				*setup.read += r
				*setup.write += w
				*setup.evs += e
			}
			in.Close()
		}
		rounds++
	}
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(rounds*passes*n) }
	fmt.Printf("BENCH inotify_watch cgroups=%d per_file_read_ns=%.0f directory_read_ns=%.0f read_ratio=%.3f per_file_write_ns=%.0f directory_write_ns=%.0f write_ratio=%.3f events_per_pass_per_file=%.1f events_per_pass_directory=%.1f watches_per_cgroup_per_file=%d watches_per_cgroup_directory=1\n",
		n, per(fileRead), per(dirRead), per(dirRead)/per(fileRead), per(fileWrite), per(dirWrite), per(dirWrite)/per(fileWrite),
		float64(fileEvs)/float64(rounds*passes), float64(dirEvs)/float64(rounds*passes), map[bool]int{true: 3, false: 2}[events != ""])
}

func must(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}
