// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

//go:build ignore

// oomhelper is a tiny static helper that capture.sh puts into the capture
// VM's initramfs (build with CGO_ENABLED=0). It is a multi-call binary that
// dispatches on the base name of argv[0]:
//
//	kmsgdump -from MARKER -to MARKER
//	    Reads /dev/kmsg non-blockingly from the oldest record and writes the
//	    raw records ("prio,seq,usec,flags;message\n" plus continuation lines)
//	    that lie strictly between the record whose message is MARKER(from)
//	    and the record whose message is MARKER(to). Without -from it writes
//	    everything from the start, without -to everything up to the end.
//
//	<any other name> MiB [hold|exit]
//	    Allocates MiB mebibytes of anonymous memory with mmap in 1 MiB chunks
//	    and touches every page. With "hold" (the default) it then sleeps
//	    forever; with "exit" it exits 0. If $READY is set, that file is
//	    created once the allocation is complete. The process name (comm) seen
//	    in OOM reports is the name of the symlink used to run it.
//
//	threadhog MiB [hold|exit]
//	    The same, but the allocation runs on a thread of its own while the
//	    main thread (the thread group leader) waits. When the OOM killer
//	    kills the process, the leader can exit before the allocating thread
//	    has left the kernel: a memory.oom.group kill that reaches the
//	    process then names it by the allocating thread's id.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

// init runs on the main thread; locking it there keeps main on the thread
// group leader.
func init() { runtime.LockOSThread() }

func main() {
	switch filepath.Base(os.Args[0]) {
	case "kmsgdump":
		os.Exit(kmsgdump(os.Args[1:]))
	case "threadhog":
		done := make(chan int)
		go func() {
			runtime.LockOSThread() // a thread other than the locked leader
			done <- hog(os.Args[1:])
		}()
		os.Exit(<-done)
	}
	os.Exit(hog(os.Args[1:]))
}

var chunks [][]byte

func hog(args []string) int {
	if len(args) < 1 {
		fmt.Fprintln(os.Stderr, "usage: memhog MiB [hold|exit]")
		return 2
	}
	mib, err := strconv.Atoi(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	mode := "hold"
	if len(args) > 1 {
		mode = args[1]
	}
	const chunk = 1 << 20
	page := os.Getpagesize()
	for i := 0; i < mib; i++ {
		b, err := syscall.Mmap(-1, 0, chunk, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: mmap after %d MiB: %v\n", filepath.Base(os.Args[0]), i, err)
			return 1
		}
		for off := 0; off < chunk; off += page {
			b[off] = byte(i + 1)
		}
		chunks = append(chunks, b)
	}
	fmt.Fprintf(os.Stderr, "%s: pid %d allocated %d MiB\n", filepath.Base(os.Args[0]), os.Getpid(), mib)
	if r := os.Getenv("READY"); r != "" {
		if err := os.WriteFile(r, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	if mode == "exit" {
		return 0
	}
	for {
		time.Sleep(time.Hour)
	}
}

func kmsgdump(args []string) int {
	fs := flag.NewFlagSet("kmsgdump", flag.ExitOnError)
	from := fs.String("from", "", "start after the record with this message")
	to := fs.String("to", "", "stop at the record with this message")
	fs.Parse(args)

	fd, err := syscall.Open("/dev/kmsg", syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kmsgdump:", err)
		return 1
	}
	defer syscall.Close(fd)
	started := *from == ""
	buf := make([]byte, 64<<10)
	for {
		n, err := syscall.Read(fd, buf)
		if errors.Is(err, syscall.EAGAIN) {
			break
		}
		if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.EINTR) {
			continue // record overwritten in the ring buffer
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "kmsgdump:", err)
			return 1
		}
		rec := buf[:n]
		msg := rec
		if i := bytes.IndexByte(msg, ';'); i >= 0 {
			msg = msg[i+1:]
		}
		if i := bytes.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		if !started {
			if string(msg) == *from {
				started = true
			}
			continue
		}
		if *to != "" && string(msg) == *to {
			break
		}
		os.Stdout.Write(rec)
	}
	if !started {
		fmt.Fprintf(os.Stderr, "kmsgdump: marker %q not found\n", *from)
		return 1
	}
	return 0
}
