// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package qemuvm boots Debian's cloud kernel under qemu with software
// emulation (TCG; no KVM needed) on an initramfs of busybox, memhog and the
// caller's static binaries, so that oomsight's tests and benchmarks run on a
// real cgroup v2 hierarchy from hosts that have only cgroup v1: make e2e-v2
// (internal/testing/e2ev2) and make bench-v2 (internal/testing/benchv2).
//
// /init (init.sh) mounts cgroup2 at /sys/fs/cgroup as systemd does, makes
// an ext4 RAM disk at /mnt/disk for page cache that can be reclaimed, runs
// the caller's /workload.sh and powers off; the caller reads the console.
package qemuvm // import "github.com/oomsight/oomsight/internal/testing/qemuvm"

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
)

//go:embed init.sh
var initScript []byte

// Packages are the Debian packages a VM needs, installed if missing (no
// cpio: the initramfs is written by writeInitramfs).
var Packages = []string{"qemu-system-x86", "linux-image-cloud-amd64", "busybox-static"}

// Kernel is what a VM boots: the kernel image, its release, and the files
// of the host that go into every initramfs.
type Kernel struct {
	Image, Release string
	Brd            string // the kernel's brd.ko, for the RAM disk
	Busybox        string
}

// Prepare installs the missing Debian packages and picks the kernel:
// OOMSIGHT_E2E_KERNEL=/boot/vmlinuz-… or the newest *-cloud-amd64. A
// missing prerequisite stops the test (cgrouptest.Unavailable: a failure
// under CI=true).
func Prepare(tb testing.TB) Kernel {
	tb.Helper()
	if os.Geteuid() != 0 {
		cgrouptest.Unavailable(tb, "the cgroup v2 VM installs Debian packages and needs root")
	}
	ensurePackages(tb)
	k := Kernel{Image: os.Getenv("OOMSIGHT_E2E_KERNEL")}
	if k.Image == "" {
		cands, _ := filepath.Glob("/boot/vmlinuz-*-cloud-amd64")
		if len(cands) == 0 {
			cgrouptest.Unavailable(tb, "no /boot/vmlinuz-*-cloud-amd64 (package linux-image-cloud-amd64)")
		}
		sort.Slice(cands, func(i, j int) bool { return VersionLess(cands[i], cands[j]) })
		k.Image = cands[len(cands)-1]
	}
	if _, err := os.Stat(k.Image); err != nil {
		cgrouptest.Unavailable(tb, "kernel image: %v", err)
	}
	k.Release = strings.TrimPrefix(filepath.Base(k.Image), "vmlinuz-")
	k.Brd = filepath.Join("/lib/modules", k.Release, "kernel/drivers/block/brd.ko")
	if _, err := os.Stat(k.Brd); err != nil {
		cgrouptest.Unavailable(tb, "kernel %s has no %s (needed for a disk-backed filesystem in the VM): %v", k.Release, k.Brd, err)
	}
	var err error
	if k.Busybox, err = exec.LookPath("busybox"); err != nil {
		k.Busybox = "/bin/busybox"
	}
	return k
}

// ensurePackages installs the Debian packages that are missing, after one
// apt-get update.
func ensurePackages(tb testing.TB) {
	tb.Helper()
	var missing []string
	for _, p := range Packages {
		out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", p).Output()
		if err != nil || !strings.Contains(string(out), "install ok installed") {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return
	}
	tb.Logf("installing missing Debian packages: %s", strings.Join(missing, " "))
	if _, err := exec.LookPath("apt-get"); err != nil {
		cgrouptest.Unavailable(tb, "packages %s are missing and there is no apt-get: %v", strings.Join(missing, " "), err)
	}
	for _, args := range [][]string{
		{"update"},
		append([]string{"install", "-y", "--no-install-recommends"}, missing...),
	} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			cgrouptest.Unavailable(tb, "apt-get %s: %v\n%s", strings.Join(args, " "), err, Tail(out, 40))
		}
	}
}

// GoBuild runs a go command (go test -c, go build) for linux/amd64
// without cgo: a static binary that runs in the busybox initramfs.
func GoBuild(tb testing.TB, args ...string) {
	tb.Helper()
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// Memhog builds the static memhog into dir and returns its path: every VM
// has it at /bin/memhog, and a host run of the same benchmarks takes it
// through cgrouptest.MemhogEnv.
func Memhog(tb testing.TB, dir string) string {
	tb.Helper()
	memhog := filepath.Join(dir, "memhog")
	GoBuild(tb, "build", "-o", memhog, "-ldflags=-s -w", "github.com/oomsight/oomsight/internal/testing/cgrouptest/memhog")
	return memhog
}

// File is a file the caller puts into the initramfs.
type File struct {
	Name string // path in the VM without the leading slash: "bin/e2ev2.test"
	Src  string // a host file to copy, or
	Data []byte // the contents
}

// Boot is one run of the VM.
type Boot struct {
	// Tag prefixes /init's own console lines: "<Tag> INIT …" and
	// "<Tag> EXIT <status of /workload.sh>".
	Tag string
	// Workload is /workload.sh, which /init runs with busybox sh after the
	// setup, with OOMSIGHT_E2E_MEMHOG=/bin/memhog and (when the RAM disk
	// is up) OOMSIGHT_E2E_DISK=/mnt/disk in its environment.
	Workload []byte
	Files    []File // besides busybox, brd.ko, memhog, /init and /workload.sh
	MemMiB   int    // -m
	CPUs     int    // -smp
	DiskMiB  int    // the ext4 RAM disk; 0: 64
	// Env is more KEY=value words for the kernel's command line, which
	// the kernel hands to /init's environment (no dots in KEY);
	// CGROUP=v1 makes /init mount the memory controller on cgroup v1 at
	// /sys/fs/cgroup/memory instead of cgroup2 at /sys/fs/cgroup.
	Env     []string
	Timeout time.Duration // boot to power-off, after which qemu is killed
	Console string        // the file the console is copied to
	// Progress picks what to log of a console line while the VM runs
	// ("": nothing), so that a slow or stuck VM shows how far it got.
	Progress func(line string) string
}

// Boot builds memhog and the initramfs and runs the VM to its power-off,
// returning the console. The error says when the VM timed out or qemu
// failed; what the workload printed is the caller's to judge.
func (k Kernel) Boot(tb testing.TB, b Boot) ([]byte, error) {
	tb.Helper()
	dir := tb.TempDir()
	memhog := Memhog(tb, dir)
	entries := []cpioEntry{
		{name: "bin", mode: modeDir | 0o755},
		{name: "dev", mode: modeDir | 0o755},
		{name: "dev/console", mode: modeChar | 0o600, rdevMajor: 5, rdevMinor: 1},
		{name: "dev/null", mode: modeChar | 0o666, rdevMajor: 1, rdevMinor: 3},
		{name: "proc", mode: modeDir | 0o755},
		{name: "sys", mode: modeDir | 0o755},
		{name: "tmp", mode: modeDir | 0o1777},
		{name: "mnt", mode: modeDir | 0o755},
		{name: "lib", mode: modeDir | 0o755},
		{name: "lib/modules", mode: modeDir | 0o755},
		{name: "init", mode: modeFile | 0o755, data: initScript},
		{name: "workload.sh", mode: modeFile | 0o755, data: b.Workload},
		{name: "bin/busybox", mode: modeFile | 0o755, src: k.Busybox},
		{name: "bin/memhog", mode: modeFile | 0o755, src: memhog},
		{name: "lib/modules/brd.ko", mode: modeFile | 0o644, src: k.Brd},
	}
	for _, f := range b.Files {
		entries = append(entries, cpioEntry{name: f.Name, mode: modeFile | 0o755, src: f.Src, data: f.Data})
	}
	initrd := filepath.Join(dir, "initrd.cpio")
	if err := writeInitramfs(initrd, entries); err != nil {
		tb.Fatalf("writing the initramfs: %v", err)
	}
	disk := b.DiskMiB
	if disk == 0 {
		disk = 64
	}
	cmdline := append([]string{
		"console=ttyS0", "quiet", "loglevel=1", "panic=-1",
		"VMTAG=" + b.Tag, "DISK_MIB=" + strconv.Itoa(disk),
	}, b.Env...)
	return run(tb, b, "-accel", "tcg", "-cpu", "max", "-m", strconv.Itoa(b.MemMiB), "-smp", strconv.Itoa(b.CPUs),
		"-nographic", "-no-reboot", "-kernel", k.Image, "-initrd", initrd, "-append", strings.Join(cmdline, " "))
}

// run runs qemu-system-x86_64 with a hard timeout, copying the console to
// b.Console, and returns the console. qemu exits when the guest powers
// off or panics (panic=-1 with -no-reboot).
func run(tb testing.TB, b Boot, args ...string) ([]byte, error) {
	tb.Helper()
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		cgrouptest.Unavailable(tb, "qemu-system-x86_64: %v", err)
	}
	ctx, cancel := context.WithTimeout(tb.Context(), b.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, args...)
	cmd.WaitDelay = 5 * time.Second
	cmd.Stdin = nil
	f, err := os.Create(b.Console)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = pw
	done := make(chan struct{})
	go func() {
		defer close(done)
		tee := io.TeeReader(pr, io.MultiWriter(&buf, f))
		sc := bufio.NewScanner(tee)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			if b.Progress == nil {
				continue
			}
			if log := b.Progress(strings.TrimRight(sc.Text(), "\r")); log != "" {
				tb.Logf("vm: %s", log)
			}
		}
		_, _ = io.Copy(io.Discard, tee) // after a scan error, keep recording
	}()
	tb.Logf("booting %s %s (timeout %s)", qemu, strings.Join(args, " "), b.Timeout)
	runErr := cmd.Run()
	pw.Close()
	<-done
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return buf.Bytes(), fmt.Errorf("the VM did not finish within %s (killed)", b.Timeout)
	case runErr != nil:
		return buf.Bytes(), fmt.Errorf("qemu: %w", runErr)
	}
	return buf.Bytes(), nil
}

// Tail returns the last n lines of b.
func Tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
