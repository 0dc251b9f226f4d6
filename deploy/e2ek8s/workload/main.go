// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Command workload is the e2e-k8s cluster's own container program (no
// registry is reachable, so its images are built here from this binary):
//
//	workload pause          the pod sandbox: waits for SIGTERM
//	workload sleep          a container that does nothing until stopped
//	workload eat DIR MIB    waits until DIR/kills holds a number greater
//	                        than DIR/done, then counts the kill in DIR/done
//	                        and touches MIB MiB, 1 MiB every 20 ms, so that
//	                        its memory limit stops it with an OOM kill
//	workload fork DIR MIB   as eat, but runs each eater as a child process
//	                        (workload touch MIB) and keeps running when the
//	                        kernel kills it: the container survives its
//	                        OOM kill, so its cgroup stays (a worker killed
//	                        while the container runs, which the kubelet
//	                        does not report)
//	workload pair DIR MIB   as fork, but keeps a second worker running
//	                        beside each eater: two processes of the same
//	                        executable (the kernel names both "workload")
//	                        told apart only by their command lines —
//	                        workload hold 8 --worker=report-builder
//	                        --queue=nightly --db-password=hunter2, and the
//	                        eater, workload grow MIB 100 --worker=thumbnailer
//	                        --queue=images
//	workload touch MIB      touches MIB MiB, 1 MiB every 20 ms
//	workload grow MIB MS [LABEL...]
//	                        touches MIB MiB, 1 MiB every MS ms; the labels
//	                        only show in its command line
//	workload hold MIB [LABEL...]
//	                        touches MIB MiB and holds it until stopped
//	workload kill DIR       asks for one more kill (DIR/kills + 1)
//	workload on DIR MODE [ARG...]
//	                        waits for each request as eat does (DIR/kills
//	                        greater than DIR/done), then runs workload MODE
//	                        ARG... in this process: a restarted container
//	                        does not start again until asked (the eta
//	                        proof's ramp, the psi proof's hold, started once
//	                        the test has its cgroup ready)
//	workload cache FILE MIB MS
//	                        writes FILE up to MIB MiB, 1 MiB every MS ms,
//	                        rereads it and writes it again, until stopped:
//	                        its cgroup's usage rises by page cache only,
//	                        its heap stays one 1 MiB buffer
//	workload dial ADDR...   opens a TCP connection to each HOST:PORT (3 s
//	                        at most) and prints one line per address,
//	                        "ADDR open" or "ADDR closed: ERROR" (the
//	                        netpol proof's non-agent pod)
//
// DIR is an emptyDir shared by the pod's restarts: a restarted container
// does not eat again until asked, so each kill is the test's.
package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "workload:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: workload pause|sleep|eat DIR MIB|fork DIR MIB|pair DIR MIB|touch MIB|grow MIB MS [LABEL...]|hold MIB [LABEL...]|kill DIR|on DIR MODE [ARG...]|cache FILE MIB MS|dial ADDR [ADDR...]")
	}
	switch args[0] {
	case "pause", "sleep":
		waitSignal()
		return nil
	case "eat", "fork", "pair":
		if len(args) != 3 {
			return fmt.Errorf("usage: workload %s DIR MIB", args[0])
		}
		mib, err := strconv.Atoi(args[2])
		if err != nil {
			return fmt.Errorf("MIB: %w", err)
		}
		switch args[0] {
		case "fork":
			return onRequest(args[1], mib, worker)
		case "pair":
			return pair(args[1], mib)
		}
		return onRequest(args[1], mib, touch)
	case "grow":
		if len(args) < 3 {
			return errors.New("usage: workload grow MIB MS [LABEL...]")
		}
		mib, err := strconv.Atoi(args[1])
		if err != nil {
			return fmt.Errorf("MIB: %w", err)
		}
		ms, err := strconv.Atoi(args[2])
		if err != nil {
			return fmt.Errorf("MS: %w", err)
		}
		return grow(mib, time.Duration(ms)*time.Millisecond)
	case "hold":
		if len(args) < 2 {
			return errors.New("usage: workload hold MIB [LABEL...]")
		}
		mib, err := strconv.Atoi(args[1])
		if err != nil {
			return fmt.Errorf("MIB: %w", err)
		}
		held := touchN(mib, 0)
		waitSignal()
		fmt.Printf("held %d MiB\n", len(held))
		return nil
	case "touch":
		if len(args) != 2 {
			return errors.New("usage: workload touch MIB")
		}
		mib, err := strconv.Atoi(args[1])
		if err != nil {
			return fmt.Errorf("MIB: %w", err)
		}
		return touch(mib)
	case "kill":
		if len(args) != 2 {
			return errors.New("usage: workload kill DIR")
		}
		n, err := readCount(filepath.Join(args[1], "kills"))
		if err != nil {
			return err
		}
		return writeCount(filepath.Join(args[1], "kills"), n+1)
	case "on":
		if len(args) < 3 {
			return errors.New("usage: workload on DIR MODE [ARG...]")
		}
		return onRequest(args[1], 0, func(int) error { return run(args[2:]) })
	case "cache":
		if len(args) != 4 {
			return errors.New("usage: workload cache FILE MIB MS")
		}
		mib, err := strconv.Atoi(args[2])
		if err != nil {
			return fmt.Errorf("MIB: %w", err)
		}
		ms, err := strconv.Atoi(args[3])
		if err != nil {
			return fmt.Errorf("MS: %w", err)
		}
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
		rounds, err := cache(args[1], mib, time.Duration(ms)*time.Millisecond, stop)
		fmt.Printf("cache: %d rounds of %d MiB written and reread\n", rounds, mib)
		return err
	case "dial":
		if len(args) < 2 {
			return errors.New("usage: workload dial ADDR [ADDR...]")
		}
		for _, addr := range args[1:] {
			fmt.Println(dial(addr))
		}
		return nil
	}
	return fmt.Errorf("unknown mode %q", args[0])
}

// dial tells whether a TCP connection to addr opens: a refusal (a RST, or
// an ICMP port unreachable that a firewall's REJECT sends) or a timeout
// is "closed" with the reason.
func dial(addr string) string {
	conn, err := net.DialTimeout("tcp", addr, 3*time.Second) //nolint:gosec // G704: dialing the address the test names is this subcommand's job
	if err != nil {
		return addr + " closed: " + err.Error()
	}
	_ = conn.Close()
	return addr + " open"
}

// cache writes path up to mib MiB, 1 MiB every pace, and reads it back,
// round after round, until stop: the page cache of the file is charged to
// the cgroup and fills its limit, reclaim takes it back, and nothing but
// page cache rises (one 1 MiB buffer of heap). It returns the rounds
// done.
func cache(path string, mib int, pace time.Duration, stop <-chan os.Signal) (int, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return 0, fmt.Errorf("cache: %w", err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for rounds := 0; ; rounds++ {
		for i := range mib {
			for j := range buf {
				buf[j] = byte(rounds + i)
			}
			if _, err := f.WriteAt(buf, int64(i)<<20); err != nil {
				return rounds, fmt.Errorf("cache: write %s: %w", path, err)
			}
			select {
			case <-stop:
				return rounds, nil
			case <-time.After(pace):
			}
		}
		for i := range mib {
			if _, err := f.ReadAt(buf, int64(i)<<20); err != nil {
				return rounds, fmt.Errorf("cache: read %s: %w", path, err)
			}
		}
	}
}

func waitSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	<-ch
}

// onRequest waits for each kill the test asks for (DIR/kills greater than
// DIR/done), counts it in DIR/done and runs eat; it returns eat's error, or
// nil on SIGTERM.
func onRequest(dir string, mib int, eat func(mib int) error) error {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	for {
		kills, err := readCount(filepath.Join(dir, "kills"))
		if err != nil {
			return err
		}
		done, err := readCount(filepath.Join(dir, "done"))
		if err != nil {
			return err
		}
		if kills > done {
			if err := writeCount(filepath.Join(dir, "done"), done+1); err != nil {
				return err
			}
			if mib > 0 {
				fmt.Printf("kill %d asked: touching %d MiB\n", done+1, mib)
			} else {
				fmt.Printf("request %d\n", done+1)
			}
			if err := eat(mib); err != nil {
				return err
			}
		}
		select {
		case <-stop:
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// touch touches mib MiB, 1 MiB every 20 ms, so that a memory limit below
// it ends the process with an OOM kill; surviving it is an error.
func touch(mib int) error { return grow(mib, 20*time.Millisecond) }

// grow touches mib MiB, 1 MiB every pace; surviving it is an error.
func grow(mib int, pace time.Duration) error {
	held := touchN(mib, pace)
	return fmt.Errorf("touched %d MiB without being killed (%d chunks)", mib, len(held))
}

// touchN touches mib MiB, 1 MiB every pace, and returns it.
func touchN(mib int, pace time.Duration) [][]byte {
	var held [][]byte
	for range mib {
		b := make([]byte, 1<<20)
		for j := 0; j < len(b); j += 4096 {
			b[j] = 1
		}
		held = append(held, b)
		time.Sleep(pace)
	}
	return held
}

// Command lines of the pair mode's two workers (the e2e-k8s cmdline proof
// looks for them on the record).
var (
	pairIdle  = []string{"hold", "8", "--worker=report-builder", "--queue=nightly", "--db-password=hunter2"}
	pairGrows = []string{"grow", "", "100", "--worker=thumbnailer", "--queue=images"}
)

// pair keeps the idle worker running and, on each request, runs the
// growing one (workload grow MIB 100 ...) as a child and waits for the
// kernel to kill it, as fork does.
func pair(dir string, mib int) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("pair: %w", err)
	}
	idle := exec.Command(self, pairIdle...)
	idle.Stdout, idle.Stderr = os.Stdout, os.Stderr
	if err := idle.Start(); err != nil {
		return fmt.Errorf("pair: idle worker: %w", err)
	}
	defer func() {
		_ = idle.Process.Signal(syscall.SIGTERM)
		_ = idle.Wait()
	}()
	return onRequest(dir, mib, func(mib int) error {
		args := slices.Clone(pairGrows)
		args[1] = strconv.Itoa(mib)
		return child(self, args)
	})
}

// worker runs touch in a child process (this program, "touch MIB") and
// waits for it: the kernel kills the child, the biggest process of the
// cgroup, and this process carries on. A child that ends otherwise is an
// error.
func worker(mib int) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	return child(self, []string{"touch", strconv.Itoa(mib)})
}

// child runs this program with args and waits for the kernel's SIGKILL; a
// child that ends otherwise is an error.
func child(self string, args []string) error {
	cmd := exec.Command(self, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	err := cmd.Run()
	if exit, ok := errors.AsType[*exec.ExitError](err); ok {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			fmt.Printf("worker %d killed (SIGKILL); carrying on\n", cmd.Process.Pid)
			return nil
		}
	}
	return fmt.Errorf("worker ended without SIGKILL: %w", err)
}

func readCount(path string) (int, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}

func writeCount(path string, n int) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := fmt.Fprintln(f, n); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}
