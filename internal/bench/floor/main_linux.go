// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Command floor is the kernel floor of `make bench-peers` as a whole
// process: every interval it reads the named files of every child cgroup
// of a directory, one pread each on descriptors held open, and does
// nothing else (no parsing, no export). Its CPU is what any program pays
// to read the same files at the same rate on this kernel, so cAdvisor's
// CPU over it is the highest ratio anyone could measure against cAdvisor
// at that work.
//
//	floor -dir /sys/fs/cgroup/memory/oomsight-peers-1-1000 -interval 1s \
//	  -files memory.usage_in_bytes,memory.stat,memory.failcnt
//
// The benchmark names the files a collection of its equal-work setup
// reads (peerbench.EqualOptional through cgroupfs).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func run() error {
	dir := flag.String("dir", "", "the directory whose child cgroups are read")
	list := flag.String("files", "", "the files read in each child, separated by commas")
	interval := flag.Duration("interval", time.Second, "how often every file is read")
	flag.Parse()
	files := strings.Split(*list, ",")
	if *dir == "" || *list == "" || *interval <= 0 {
		return fmt.Errorf("-dir, -files and a positive -interval are needed")
	}
	fds, err := openChildren(*dir, files)
	defer func() {
		for _, fd := range fds {
			_ = unix.Close(fd)
		}
	}()
	if err != nil {
		return err
	}
	fmt.Printf("floor: %d descriptors (%s in %d cgroups), every %s\n", len(fds), strings.Join(files, " "), len(fds)/len(files), *interval)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	buf := make([]byte, 16<<10)
	for {
		for _, fd := range fds {
			if _, err := unix.Pread(fd, buf, 0); err != nil {
				return fmt.Errorf("pread: %w", err)
			}
		}
		select {
		case <-stop:
			return nil
		case <-tick.C:
		}
	}
}

// openChildren opens files in every child directory of dir.
func openChildren(dir string, files []string) ([]int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var fds []int
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		for _, name := range files {
			fd, err := unix.Open(filepath.Join(dir, e.Name(), name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return fds, err
			}
			fds = append(fds, fd)
		}
	}
	if len(fds) == 0 {
		return nil, fmt.Errorf("no child cgroup in %s", dir)
	}
	return fds, nil
}
