// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

//go:build linux

package e2ev2

// The host side: builds the VM and boots it. See README.md.

import (
	"bufio"
	"bytes"
	"context"
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

const (
	hostEnv = "OOMSIGHT_E2E_V2" // "1" runs TestCgroupV2InVM

	// vmTimeout bounds the VM run (boot to poweroff). One run takes about
	// 30–60 s under TCG on 2 cores, plus the time-to-OOM ramp's 64 s
	// (TestVMOOMETA).
	defaultVMTimeout = 240 * time.Second
)

// debPackages are the Debian packages the VM needs, installed if missing.
// (No cpio: the initramfs is written by newcWriter below.)
var debPackages = []string{"qemu-system-x86", "linux-image-cloud-amd64", "busybox-static"}

// TestCgroupV2InVM boots Debian's cloud kernel under qemu (TCG) with an
// initramfs of busybox, memhog and this package's test binary, which runs
// the TestVM* checks on cgroup v2 and prints them on the console. It fails
// on any FAIL check, on a missing DONE line (boot failure, panic, timeout),
// on a non-zero exit of the test binary, or when no check ran at all.
//
// Environment: OOMSIGHT_E2E_V2=1 to run; OOMSIGHT_E2E_KERNEL=/boot/vmlinuz-…
// to pick the kernel (default: the newest *-cloud-amd64);
// OOMSIGHT_E2E_VM_TIMEOUT=<seconds> (default 240); OOMSIGHT_E2E_RUN=<regexp>
// to run a subset of the in-VM tests. With CI=true a missing prerequisite
// fails instead of skipping.
func TestCgroupV2InVM(t *testing.T) {
	if os.Getenv(hostEnv) != "1" {
		cgrouptest.Unavailable(t, "cgroup v2 VM end-to-end test: set %s=1 to run it (make e2e-v2); it needs root, apt-get and ~1–2 minutes", hostEnv)
	}
	t0 := time.Now()
	if os.Geteuid() != 0 {
		cgrouptest.Unavailable(t, "the cgroup v2 VM test installs Debian packages and needs root")
	}
	ensurePackages(t)
	kernel, kver := pickKernel(t)
	brd := filepath.Join("/lib/modules", kver, "kernel/drivers/block/brd.ko")
	if _, err := os.Stat(brd); err != nil {
		cgrouptest.Unavailable(t, "kernel %s has no %s (needed for a disk-backed filesystem in the VM): %v", kver, brd, err)
	}
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		busybox = "/bin/busybox"
	}
	tPkgs := time.Since(t0)

	// Build the static binaries.
	dir := t.TempDir()
	tBuild := time.Now()
	testBin := filepath.Join(dir, "e2ev2.test")
	memhog := filepath.Join(dir, "memhog")
	goBuild(t, "go", "test", "-c", "-o", testBin, "-ldflags=-s -w", ".")
	goBuild(t, "go", "build", "-o", memhog, "-ldflags=-s -w", "github.com/oomsight/oomsight/internal/testing/cgrouptest/memhog")
	buildTime := time.Since(tBuild)

	// The initramfs: uncompressed newc, so neither the host nor the emulated
	// guest spends time on compression.
	initScript, err := os.ReadFile(filepath.Join("testdata", "init.sh"))
	if err != nil {
		t.Fatal(err)
	}
	initrd := filepath.Join(dir, "initrd.cpio")
	if writeInitramfsErr := writeInitramfs(initrd, []cpioEntry{
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
		{name: "bin/busybox", mode: modeFile | 0o755, src: busybox},
		{name: "bin/e2ev2.test", mode: modeFile | 0o755, src: testBin},
		{name: "bin/memhog", mode: modeFile | 0o755, src: memhog},
		{name: "lib/modules/brd.ko", mode: modeFile | 0o644, src: brd},
	}); writeInitramfsErr != nil {
		t.Fatalf("writing the initramfs: %v", writeInitramfsErr)
	}

	// Boot.
	timeout := defaultVMTimeout
	if s := os.Getenv("OOMSIGHT_E2E_VM_TIMEOUT"); s != "" {
		n, atoiErr := strconv.Atoi(s)
		if atoiErr != nil || n <= 0 {
			t.Fatalf("OOMSIGHT_E2E_VM_TIMEOUT=%q: want a number of seconds", s)
		}
		timeout = time.Duration(n) * time.Second
	}
	appendLine := "console=ttyS0 quiet loglevel=1 panic=-1"
	if run := os.Getenv("OOMSIGHT_E2E_RUN"); run != "" {
		appendLine += " E2EV2_RUN=" + run // the kernel passes it to /init's environment
	}
	consolePath := filepath.Join(t.ArtifactDir(), "console.log")
	tBoot := time.Now()
	console, runErr := runVM(t, timeout, consolePath, "-accel", "tcg", "-cpu", "max", "-m", "768", "-smp", "1",
		"-nographic", "-no-reboot", "-kernel", kernel, "-initrd", initrd, "-append", appendLine)
	vmTime := time.Since(tBoot)

	res, err := parseConsole(bytes.NewReader(console))
	if err != nil {
		t.Fatalf("reading the console: %v", err)
	}
	t.Logf("kernel: %s (booted %s)", res.Kernel, kernel)
	t.Logf("cgroup mode: %s", res.Mode)
	pass, fail, pend := res.counts()
	for _, c := range res.Checks {
		t.Logf("  %-7s %s  %s", c.Status, c.Name, c.Detail)
	}
	if pend > 0 {
		var names []string
		for _, c := range res.Checks {
			if c.Status == statusPending {
				names = append(names, c.Name)
			}
		}
		sort.Strings(names)
		t.Logf("pending (code under test not on main yet, not counted as passing): %s", strings.Join(names, ", "))
	}
	t.Logf("checks: %d pass, %d fail, %d pending", pass, fail, pend)
	t.Logf("time: packages %s, build %s, VM %s, total %s (console log: %s)",
		tPkgs.Round(time.Millisecond), buildTime.Round(time.Millisecond), vmTime.Round(time.Millisecond),
		time.Since(t0).Round(time.Millisecond), consolePath)

	var problems []string
	if runErr != nil {
		problems = append(problems, runErr.Error())
	}
	if res.Kernel != "" && res.Kernel != kver {
		problems = append(problems, fmt.Sprintf("the VM runs kernel %q, want %q", res.Kernel, kver))
	}
	if !strings.HasPrefix(res.Mode, "cgroup2 unified") {
		problems = append(problems, fmt.Sprintf("cgroup mode %q is not cgroup2 unified", res.Mode))
	}
	if fail > 0 {
		problems = append(problems, fmt.Sprintf("%d check(s) failed", fail))
	}
	if !res.Done {
		problems = append(problems, "no E2EV2 DONE line: the VM did not boot, the test binary panicked or timed out, or the VM hit the timeout")
	} else if res.Exit != 0 {
		problems = append(problems, fmt.Sprintf("the in-VM test binary exited with %d", res.Exit))
	}
	if pass == 0 {
		problems = append(problems, "no check passed")
	}
	if len(res.Unknown) > 0 {
		problems = append(problems, fmt.Sprintf("unrecognized E2EV2 lines: %q", res.Unknown))
	}
	if len(problems) > 0 {
		t.Logf("VM console (%d lines):\n%s", len(res.Lines), strings.Join(res.Lines, "\n"))
		t.Fatalf("cgroup v2 end-to-end failed:\n- %s", strings.Join(problems, "\n- "))
	}
}

// ensurePackages installs the Debian packages that are missing, after one
// apt-get update.
func ensurePackages(t *testing.T) {
	t.Helper()
	var missing []string
	for _, p := range debPackages {
		out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", p).Output()
		if err != nil || !strings.Contains(string(out), "install ok installed") {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return
	}
	t.Logf("installing missing Debian packages: %s", strings.Join(missing, " "))
	if _, err := exec.LookPath("apt-get"); err != nil {
		cgrouptest.Unavailable(t, "packages %s are missing and there is no apt-get: %v", strings.Join(missing, " "), err)
	}
	for _, args := range [][]string{
		{"update"},
		append([]string{"install", "-y", "--no-install-recommends"}, missing...),
	} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			cgrouptest.Unavailable(t, "apt-get %s: %v\n%s", strings.Join(args, " "), err, tail(out, 40))
		}
	}
}

// pickKernel returns the kernel image to boot and its release.
func pickKernel(t *testing.T) (path, release string) {
	t.Helper()
	path = os.Getenv("OOMSIGHT_E2E_KERNEL")
	if path == "" {
		cands, _ := filepath.Glob("/boot/vmlinuz-*-cloud-amd64")
		if len(cands) == 0 {
			cgrouptest.Unavailable(t, "no /boot/vmlinuz-*-cloud-amd64 (package linux-image-cloud-amd64)")
		}
		sort.Slice(cands, func(i, j int) bool { return versionLess(cands[i], cands[j]) })
		path = cands[len(cands)-1]
	}
	if _, err := os.Stat(path); err != nil {
		cgrouptest.Unavailable(t, "kernel image: %v", err)
	}
	return path, strings.TrimPrefix(filepath.Base(path), "vmlinuz-")
}

// versionLess compares strings with embedded numbers numerically
// ("6.1.0-9" < "6.1.0-56").
func versionLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := leadingDigits(a), leadingDigits(b)
		if da != "" && db != "" {
			na, _ := strconv.Atoi(da)
			nb, _ := strconv.Atoi(db)
			if na != nb {
				return na < nb
			}
			a, b = a[len(da):], b[len(db):]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func leadingDigits(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

// goBuild runs a go command for linux/amd64 without cgo (a static binary
// that runs in the busybox initramfs).
func goBuild(t *testing.T, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// runVM runs qemu-system-x86_64 with a hard timeout, copying the console to
// consolePath, and returns the console. qemu exits when the guest powers
// off or panics (panic=-1 with -no-reboot).
func runVM(t *testing.T, timeout time.Duration, consolePath string, args ...string) ([]byte, error) {
	t.Helper()
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		cgrouptest.Unavailable(t, "qemu-system-x86_64: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, args...)
	cmd.WaitDelay = 5 * time.Second
	cmd.Stdin = nil
	f, err := os.Create(consolePath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = pw
	// Stream progress (not the checks: they are listed at the end) so that a
	// slow or stuck VM shows how far it got.
	done := make(chan struct{})
	go func() {
		defer close(done)
		tee := io.TeeReader(pr, io.MultiWriter(&buf, f))
		sc := bufio.NewScanner(tee)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			line := strings.TrimRight(sc.Text(), "\r")
			if i := strings.Index(line, linePrefix); i >= 0 && !strings.HasPrefix(line[i:], linePrefix+"CHECK ") {
				t.Logf("vm: %s", line[i:])
			} else if strings.HasPrefix(line, "=== RUN") || strings.HasPrefix(line, "--- ") {
				t.Logf("vm: %s", line)
			}
		}
		_, _ = io.Copy(io.Discard, tee) // after a scan error, keep recording
	}()
	t.Logf("booting %s %s (timeout %s)", qemu, strings.Join(args, " "), timeout)
	runErr := cmd.Run()
	pw.Close()
	<-done
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return buf.Bytes(), fmt.Errorf("the VM did not finish within %s (killed)", timeout)
	case runErr != nil:
		return buf.Bytes(), fmt.Errorf("qemu: %w", runErr)
	}
	return buf.Bytes(), nil
}

func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ---- A minimal writer of the newc cpio format the kernel unpacks as an
// initramfs (Documentation/driver-api/early-userspace/buffer-format.rst).

const (
	modeDir  = 0o040000
	modeFile = 0o100000
	modeChar = 0o020000
)

type cpioEntry struct {
	name                 string
	mode                 uint32
	data                 []byte // file contents, or
	src                  string // a file to copy
	rdevMajor, rdevMinor uint32
}

func writeInitramfs(out string, entries []cpioEntry) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var off int64
	pad := func() error {
		if n := (4 - off%4) % 4; n > 0 {
			k, writeErr := w.Write(make([]byte, n))
			off += int64(k)
			return writeErr
		}
		return nil
	}
	header := func(ino int, e cpioEntry, size int64) error {
		nlink := 1
		if e.mode&0o170000 == modeDir {
			nlink = 2
		}
		h := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			ino, e.mode, 0, 0, nlink, 0, size, 0, 0, e.rdevMajor, e.rdevMinor, len(e.name)+1, 0)
		k, writeStringErr := w.WriteString(h + e.name + "\x00")
		off += int64(k)
		if writeStringErr != nil {
			return writeStringErr
		}
		return pad()
	}
	for i, e := range entries {
		size := int64(len(e.data))
		var src *os.File
		if e.src != "" {
			if src, err = os.Open(e.src); err != nil {
				f.Close()
				return err
			}
			st, statErr := src.Stat()
			if statErr != nil {
				src.Close()
				f.Close()
				return statErr
			}
			size = st.Size()
		}
		if headerErr := header(i+1, e, size); headerErr != nil {
			f.Close()
			return headerErr
		}
		var k int64
		if src != nil {
			k, err = io.Copy(w, src)
			src.Close()
		} else {
			var n int
			n, err = w.Write(e.data)
			k = int64(n)
		}
		off += k
		if err == nil && k != size {
			err = fmt.Errorf("%s: copied %d of %d bytes", e.name, k, size)
		}
		if err == nil {
			err = pad()
		}
		if err != nil {
			f.Close()
			return err
		}
	}
	if err := header(0, cpioEntry{name: "TRAILER!!!"}, 0); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func TestVersionLess(t *testing.T) {
	in := []string{"/boot/vmlinuz-6.1.0-56-cloud-amd64", "/boot/vmlinuz-6.1.0-9-cloud-amd64", "/boot/vmlinuz-6.10.0-1-cloud-amd64", "/boot/vmlinuz-6.1.0-56a-cloud-amd64"}
	sort.Slice(in, func(i, j int) bool { return versionLess(in[i], in[j]) })
	want := []string{"/boot/vmlinuz-6.1.0-9-cloud-amd64", "/boot/vmlinuz-6.1.0-56-cloud-amd64", "/boot/vmlinuz-6.1.0-56a-cloud-amd64", "/boot/vmlinuz-6.10.0-1-cloud-amd64"}
	if fmt.Sprint(in) != fmt.Sprint(want) {
		t.Errorf("got %q\nwant %q", in, want)
	}
}
