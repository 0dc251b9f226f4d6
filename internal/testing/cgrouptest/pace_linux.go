// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgrouptest // import "github.com/oomsight/oomsight/internal/testing/cgrouptest"

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// oomSpacing keeps provoked OOM kills below the kernel's rate limit for
// OOM reports (oom_rs: 10 per 5 s). Past it the kernel prints only the kill
// line, without the cgroup paths the tests look for.
const oomSpacing = 600 * time.Millisecond

// PaceOOM waits until at least oomSpacing has passed since the last OOM
// kill provoked by any test process on this machine (test packages run in
// parallel), and records this one. Call it right before provoking a kill.
func PaceOOM(tb testing.TB) {
	tb.Helper()
	const file = "/tmp/oomsight-test-oom-pace"
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		tb.Fatalf("oom pacing: %v", err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		tb.Fatalf("oom pacing: %v", err)
	}
	defer func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }()
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	if last, err := strconv.ParseInt(strings.TrimSpace(string(b[:n])), 10, 64); err == nil {
		if wait := time.Until(time.Unix(0, last).Add(oomSpacing)); wait > 0 && wait <= oomSpacing {
			time.Sleep(wait)
		}
	}
	if err := f.Truncate(0); err != nil {
		tb.Fatalf("oom pacing: %v", err)
	}
	if _, err := f.WriteAt([]byte(fmt.Sprintf("%d\n", time.Now().UnixNano())), 0); err != nil {
		tb.Fatalf("oom pacing: %v", err)
	}
}
