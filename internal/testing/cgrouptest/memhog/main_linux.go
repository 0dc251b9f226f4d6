// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Command memhog is the workload of oomsight's real-cgroup tests and fixture
// captures: it holds as much memory as it is told to, so that a test can put
// it in a cgroup first and make it allocate afterwards.
//
// It reads commands on stdin, one per line, and answers each with "ok ..."
// on stdout once it is done (or "err ..."):
//
//	anon N         map and touch N MiB of anonymous memory (kept until exit)
//	anon-thread N  the same on a thread other than the main thread, which
//	               waits meanwhile: when the OOM killer kills the process,
//	               its main thread can exit before the allocating thread,
//	               so the kernel may name the process by a thread id
//	spike N MS     map and touch N MiB more, hold it MS milliseconds, unmap it
//	               (a spike that rises and falls between two samples)
//	ramp K N       map N MiB and touch it at K KiB per second, paced by the
//	               clock (a late tick catches up), then hold it: anonymous
//	               memory rising steadily, as a leak does, until killed
//	free           unmap everything anon held
//	file PATH N    write N MiB to PATH (page cache; shmem when PATH is on tmpfs)
//	append PATH N  append N MiB to PATH (a log file growing)
//	read PATH      read PATH to the end (brings it into the page cache)
//	child N        run a child memhog (a worker) that maps and touches N
//	               MiB of anonymous memory, and wait for it: "ok child
//	               killed" when the kernel killed it with SIGKILL (an OOM
//	               kill), an error otherwise; the parent carries on
//	name HEX       rename the main thread, which allocates and whose name
//	               the kernel prints for the process, to the bytes HEX
//	               spells (prctl(PR_SET_NAME): any bytes but NUL, cut to 15);
//	               answers "ok name HEX" with the name the kernel kept
//	exit           exit 0
//
// A process killed by the OOM killer simply stops answering.
package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const mib = 1 << 20

// init runs on the main thread (the thread group leader); locking it there
// keeps main on it, so that anon-thread allocates elsewhere.
func init() { runtime.LockOSThread() }

func main() {
	var held [][]byte
	in := bufio.NewScanner(os.Stdin)
	out := bufio.NewWriter(os.Stdout)
	reply := func(format string, args ...any) {
		fmt.Fprintf(out, format+"\n", args...)
		out.Flush()
	}
	reply("ready %d", os.Getpid())
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		switch {
		case (f[0] == "anon" || f[0] == "anon-thread") && len(f) == 2:
			n, err := strconv.Atoi(f[1])
			if err != nil || n <= 0 {
				reply("err bad size %q", f[1])
				continue
			}
			var b []byte
			if f[0] == "anon" {
				b, err = anon(n)
			} else {
				done := make(chan struct{})
				go func() {
					runtime.LockOSThread() // not the main thread: main holds it
					b, err = anon(n)
					close(done)
				}()
				<-done
			}
			if err != nil {
				reply("err mmap: %v", err)
				continue
			}
			held = append(held, b)
			reply("ok %s %d", f[0], n)
		case f[0] == "spike" && len(f) == 3:
			n, err1 := strconv.Atoi(f[1])
			ms, err2 := strconv.Atoi(f[2])
			if err1 != nil || err2 != nil || n <= 0 || ms < 0 {
				reply("err bad spike %q", in.Text())
				continue
			}
			b, err := anon(n)
			if err != nil {
				reply("err mmap: %v", err)
				continue
			}
			time.Sleep(time.Duration(ms) * time.Millisecond)
			if err := syscall.Munmap(b); err != nil {
				reply("err munmap: %v", err)
				continue
			}
			reply("ok spike %d %d", n, ms)
		case f[0] == "ramp" && len(f) == 3:
			kib, err1 := strconv.Atoi(f[1])
			n, err2 := strconv.Atoi(f[2])
			if err1 != nil || err2 != nil || kib <= 0 || n <= 0 {
				reply("err bad ramp %q", in.Text())
				continue
			}
			b, err := ramp(kib, n)
			if err != nil {
				reply("err mmap: %v", err)
				continue
			}
			held = append(held, b)
			reply("ok ramp %d %d", kib, n)
		case f[0] == "append" && len(f) == 3:
			n, err := strconv.Atoi(f[2])
			if err != nil || n <= 0 {
				reply("err bad size %q", f[2])
				continue
			}
			if err := appendFile(f[1], n); err != nil {
				reply("err %v", err)
				continue
			}
			reply("ok append %d", n)
		case f[0] == "free" && len(f) == 1:
			for _, b := range held {
				_ = syscall.Munmap(b)
			}
			held = nil
			reply("ok free")
		case f[0] == "file" && len(f) == 3:
			n, err := strconv.Atoi(f[2])
			if err != nil || n <= 0 {
				reply("err bad size %q", f[2])
				continue
			}
			if err := writeFile(f[1], n); err != nil {
				reply("err %v", err)
				continue
			}
			reply("ok file %d", n)
		case f[0] == "read" && len(f) == 2:
			n, err := readFile(f[1])
			if err != nil {
				reply("err %v", err)
				continue
			}
			reply("ok read %d", n)
		case f[0] == "child" && len(f) == 2:
			n, err := strconv.Atoi(f[1])
			if err != nil || n <= 0 {
				reply("err bad size %q", f[1])
				continue
			}
			if err := child(n); err != nil {
				reply("err %v", err)
				continue
			}
			reply("ok child killed")
		case f[0] == "name" && len(f) == 2:
			kept, err := rename(f[1])
			if err != nil {
				reply("err %v", err)
				continue
			}
			reply("ok name %x", kept)
		case f[0] == "exit":
			reply("ok exit")
			return
		default:
			reply("err unknown command %q", in.Text())
		}
	}
}

// rename sets the calling thread's name (main's: init locked it to the
// main thread) to the bytes hexName spells and returns the name the kernel
// kept: what it prints in the OOM report.
func rename(hexName string) ([]byte, error) {
	name, err := hex.DecodeString(hexName)
	if err != nil {
		return nil, fmt.Errorf("bad name %q: %w", hexName, err)
	}
	buf := make([]byte, len(name)+1) // NUL-terminated for the kernel
	copy(buf, name)
	if err := unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&buf[0])), 0, 0, 0); err != nil {
		return nil, fmt.Errorf("prctl(PR_SET_NAME): %w", err)
	}
	var kept [16]byte
	if err := unix.Prctl(unix.PR_GET_NAME, uintptr(unsafe.Pointer(&kept[0])), 0, 0, 0); err != nil {
		return nil, fmt.Errorf("prctl(PR_GET_NAME): %w", err)
	}
	n := bytes.IndexByte(kept[:], 0)
	if n < 0 {
		n = len(kept)
	}
	return kept[:n], nil
}

// child runs this program as a worker that allocates n MiB and waits for
// it; nil when the kernel killed it with SIGKILL.
func child(n int) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self)
	cmd.Stdin = strings.NewReader(fmt.Sprintf("anon %d\n", n))
	err = cmd.Run()
	if exit, ok := errors.AsType[*exec.ExitError](err); ok {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return nil
		}
	}
	return fmt.Errorf("child ended without SIGKILL: %w", err)
}

// anon maps n MiB of anonymous memory and touches every page.
func anon(n int) ([]byte, error) {
	b, err := syscall.Mmap(-1, 0, n*mib, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil, err
	}
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	return b, nil
}

// ramp maps n MiB and touches its pages at kib KiB per second: every
// 10 ms it touches what the time since the start calls for.
func ramp(kib, n int) ([]byte, error) {
	b, err := syscall.Mmap(-1, 0, n*mib, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	for i := 0; i < len(b); {
		due := min(int(time.Since(start).Seconds()*float64(kib)*1024), len(b))
		for ; i < due; i += 4096 {
			b[i] = 1
		}
		time.Sleep(10 * time.Millisecond)
	}
	return b, nil
}

func writeFile(path string, n int) error {
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	return writeMiB(fh, n)
}

func appendFile(path string, n int) error {
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	return writeMiB(fh, n)
}

// writeMiB writes n MiB to fh and closes it.
func writeMiB(fh *os.File, n int) error {
	buf := make([]byte, mib)
	for i := range buf {
		buf[i] = byte(i)
	}
	for range n {
		if _, err := fh.Write(buf); err != nil {
			fh.Close()
			return err
		}
	}
	return fh.Close()
}

func readFile(path string) (int64, error) {
	fh, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	return io.Copy(io.Discard, fh)
}
