// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package procsnap

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
)

// worker is a real process with the given arguments: memhog, which
// ignores its arguments and waits for commands on stdin.
type worker struct {
	in  io.WriteCloser
	pid int
}

func startWorker(t *testing.T, memhog string, args ...string) *worker {
	t.Helper()
	cmd := exec.Command(memhog, args...)
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = in.Close()
		_ = cmd.Wait()
	})
	buf := make([]byte, 64)
	n, err := out.Read(buf) // "ready PID"
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(buf[:n]), "ready"))
	return &worker{in: in, pid: cmd.Process.Pid}
}

// fakeCgroup writes a cgroup.procs file listing pids (0: a process of
// another pid namespace) into a temporary directory: the snapshot reads
// the real /proc of those real processes.
func fakeCgroup(t *testing.T, dir string, pids ...int) string {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	var b strings.Builder
	for _, p := range pids {
		fmt.Fprintf(&b, "%d\n", p)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(b.String()), 0o600))
	return dir
}

// TestTakeRedactsRealProcesses: real processes started with credentials
// in their arguments show in a snapshot with those redacted, under each
// capture setting.
func TestTakeRedactsRealProcesses(t *testing.T) {
	memhog := cgrouptest.BuildMemhog(t)
	secret := startWorker(t, memhog, "--job=export", "--password=hunter2", "--token", "tok-0123456789", "postgres://app:s3cr3t@db:5432/orders", "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI", "-H", "Authorization: Bearer abcdef0123456789")
	plain := startWorker(t, memhog, "--job=import", "--workers=4")
	dir := fakeCgroup(t, t.TempDir(), secret.pid, plain.pid)

	snap, err := NewReader("/proc", CaptureRedacted).Take(dir)
	require.NoError(t, err)
	require.Len(t, snap.Processes, 2)
	byPID := map[int64]Process{}
	for _, p := range snap.Processes {
		byPID[p.PID] = p
	}
	got := byPID[int64(secret.pid)].Cmdline
	assert.Equal(t, memhog+" --job=export --password=*** --token *** postgres://app:***@db:5432/orders AWS_SECRET_ACCESS_KEY=*** -H Authorization: Bearer ***", got)
	for _, leak := range []string{"hunter2", "tok-0123456789", "s3cr3t", "wJalrXUtnFEMI", "abcdef0123456789"} {
		assert.NotContains(t, got, leak)
	}
	assert.Equal(t, memhog+" --job=import --workers=4", byPID[int64(plain.pid)].Cmdline)
	assert.Equal(t, "memhog", byPID[int64(plain.pid)].Name)
	assert.Positive(t, byPID[int64(plain.pid)].RSS())
	assert.Equal(t, 2, snap.Seen)

	snap, err = NewReader("/proc", CaptureName).Take(dir)
	require.NoError(t, err)
	for _, p := range snap.Processes {
		assert.Equal(t, "memhog", p.Cmdline)
	}
	snap, err = NewReader("/proc", CaptureOff).Take(dir)
	require.NoError(t, err)
	for _, p := range snap.Processes {
		assert.Empty(t, p.Cmdline)
		assert.Empty(t, p.Name)
		assert.Positive(t, p.RSS())
	}
}

// TestTakeDegrades: processes of another pid namespace (listed as 0) and
// processes gone before they were read are counted, not fatal; a subtree
// is read whole; a missing cgroup is an error.
func TestTakeDegrades(t *testing.T) {
	memhog := cgrouptest.BuildMemhog(t)
	w := startWorker(t, memhog, "--job=child")
	root := t.TempDir()
	fakeCgroup(t, root, 0, 0, 1<<30) // no such pid
	fakeCgroup(t, filepath.Join(root, "child"), w.pid)
	snap, err := NewReader("/proc", CaptureRedacted).Take(root)
	require.NoError(t, err)
	assert.Equal(t, 2, snap.Hidden)
	assert.Equal(t, 1, snap.Gone)
	assert.Equal(t, 4, snap.Seen)
	require.Len(t, snap.Processes, 1, "the child cgroup's process")
	assert.Equal(t, int64(w.pid), snap.Processes[0].PID)

	_, err = NewReader("/proc", CaptureRedacted).Take(filepath.Join(root, "nope"))
	require.Error(t, err)
}

// TestTakeTopByRSS: the MaxTop largest are kept, largest first, the rest
// counted; past MaxProcs processes are not read.
func TestTakeTopByRSS(t *testing.T) {
	memhog := cgrouptest.BuildMemhog(t)
	var pids []int
	for i := range MaxTop + 2 {
		pids = append(pids, startWorker(t, memhog, fmt.Sprintf("--n=%d", i)).pid)
	}
	big := startWorker(t, memhog, "--big")
	_, err := big.in.Write([]byte("anon 32\n"))
	require.NoError(t, err)
	pids = append(pids, big.pid)
	dir := fakeCgroup(t, t.TempDir(), pids...)
	require.Eventually(t, func() bool {
		snap, takeErr := NewReader("/proc", CaptureRedacted).Take(dir)
		return takeErr == nil && len(snap.Processes) > 0 && snap.Processes[0].PID == int64(big.pid) && snap.Processes[0].RSSAnon >= 32<<20
	}, 10*time.Second, 20*time.Millisecond)
	snap, err := NewReader("/proc", CaptureRedacted).Take(dir)
	require.NoError(t, err)
	assert.Len(t, snap.Processes, MaxTop)
	assert.Equal(t, len(pids)-MaxTop, snap.Omitted)
	for i := 1; i < len(snap.Processes); i++ {
		assert.GreaterOrEqual(t, snap.Processes[i-1].RSS(), snap.Processes[i].RSS())
	}

	many := make([]int, MaxProcs+5)
	for i := range many {
		many[i] = pids[i%len(pids)]
	}
	snap, err = NewReader("/proc", CaptureRedacted).Take(fakeCgroup(t, t.TempDir(), many...))
	require.NoError(t, err)
	assert.Equal(t, 5, snap.Unread)
}

// TestSnapperNearestAndNearMiss: one snapshot per cgroup per Every; the
// kill takes the newest one before it and ends its episode; an episode no
// kill ended is a near miss once it is quiet, at most once per
// NearMissEvery.
func TestSnapperNearestAndNearMiss(t *testing.T) {
	memhog := cgrouptest.BuildMemhog(t)
	w := startWorker(t, memhog, "--job=a")
	dirA := fakeCgroup(t, filepath.Join(t.TempDir(), "a"), w.pid)
	dirB := fakeCgroup(t, filepath.Join(t.TempDir(), "b"), w.pid)
	now := time.Unix(1_700_000_000, 0)
	var near []Snapshot
	dirs := map[string]string{"/a": dirA, "/b": dirB}
	s := New(Options{
		Proc: "/proc", Logger: zap.NewNop(), Now: func() time.Time { return now }, Dir: func(p string) string { return dirs[p] },
		NearMiss: func(sn Snapshot) { near = append(near, sn) },
	})
	// Driven by hand: no worker goroutine.
	step := func() {
		for len(s.queue) > 0 {
			s.take(<-s.queue)
		}
	}
	s.Request("/a", 90, 100)
	s.Request("/a", 95, 100) // within Every: ignored
	step()
	now = now.Add(500 * time.Millisecond)
	s.Request("/a", 99, 100) // still within Every
	step()
	now = now.Add(600 * time.Millisecond)
	s.Request("/a", 98, 100)
	s.Request("/b", 91, 100)
	step()
	require.Len(t, s.cgroups["/a"].snaps, 2)

	sn, ok := s.Nearest([]string{"/a"}, now.Add(-time.Millisecond))
	require.True(t, ok)
	assert.Equal(t, uint64(90), sn.Usage, "the newest at or before the kill")
	_, ok = s.Nearest([]string{"/nothing"}, now)
	assert.False(t, ok)
	_, ok = s.Nearest([]string{"/a"}, now.Add(-2*time.Second))
	assert.False(t, ok, "none before")

	now = now.Add(Quiet)
	s.sweep(now)
	require.Len(t, near, 1, "/a was killed; /b was a near miss")
	assert.Equal(t, "/b", near[0].Path)
	assert.Equal(t, uint64(91), near[0].Usage)
	assert.Equal(t, int64(w.pid), near[0].Processes[0].PID)

	// Another episode of /b within NearMissEvery: not reported again.
	now = now.Add(time.Second)
	s.Request("/b", 92, 100)
	step()
	now = now.Add(Quiet)
	s.sweep(now)
	assert.Len(t, near, 1)
	// After NearMissEvery: reported.
	now = now.Add(NearMissEvery)
	s.Request("/b", 93, 100)
	step()
	now = now.Add(Quiet)
	s.sweep(now)
	require.Len(t, near, 2)
	assert.Equal(t, uint64(93), near[1].Usage)

	// Everything old is forgotten.
	now = now.Add(2 * MaxAge)
	s.sweep(now)
	assert.Empty(t, s.cgroups)
}

// TestSnapperBounds: requests past the node-wide budget (PerSecond) or
// past QueueSize are dropped and counted, never waited for; the budget
// refills with time.
func TestSnapperBounds(t *testing.T) {
	dropped := 0
	now := time.Unix(1_700_000_000, 0)
	s := New(Options{Proc: "/proc", Logger: zap.NewNop(), Dropped: func() { dropped++ }, Now: func() time.Time { return now }})
	for i := range PerSecond + 3 {
		s.Request(fmt.Sprintf("/c%d", i), 1, 2)
	}
	assert.Equal(t, 3, dropped, "past the budget")
	assert.Len(t, s.queue, PerSecond)
	now = now.Add(500 * time.Millisecond)
	for i := range PerSecond {
		s.Request(fmt.Sprintf("/d%d", i), 1, 2)
	}
	assert.Equal(t, 3+PerSecond/2, dropped, "half a second refills half the budget")
	for i := range 10 {
		now = now.Add(time.Second)
		for j := range PerSecond {
			s.Request(fmt.Sprintf("/e%d-%d", i, j), 1, 2)
		}
	}
	assert.Len(t, s.queue, QueueSize, "no worker: the queue fills and stays bounded")
}

// pidNSChildEnv makes the test binary a child that reports whether it
// shares the host's pid namespace (TestHostPIDNamespace runs it in a new
// one).
const pidNSChildEnv = "OOMSIGHT_PROCSNAP_PIDNS_CHILD"

// TestHostPIDNamespace: this test shares the host's pid namespace; the
// same binary run in a new pid namespace (unshare --pid --mount-proc, as a
// container without hostPID) does not, and says so.
func TestHostPIDNamespace(t *testing.T) {
	if os.Getenv(pidNSChildEnv) == "1" {
		host, err := HostPIDNamespace("/proc")
		fmt.Printf("host=%v err=%v\n", host, err)
		return
	}
	host, err := HostPIDNamespace("/proc")
	require.NoError(t, err)
	require.True(t, host, "tests run in the host's pid namespace")
	if _, lookErr := exec.LookPath("unshare"); lookErr != nil {
		cgrouptest.Unavailable(t, "unshare (util-linux) is needed to start a pid namespace: %v", lookErr)
	}
	self, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command("unshare", "--pid", "--fork", "--mount-proc", self, "-test.run=^TestHostPIDNamespace$")
	cmd.Env = append(os.Environ(), pidNSChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "host=false err=<nil>")

	_, err = HostPIDNamespace(t.TempDir())
	require.Error(t, err, "not a procfs")
}

// TestSnapperOff: outside the host's pid namespace no snapshot is taken;
// each one due is counted as skipped.
func TestSnapperOff(t *testing.T) {
	skipped := 0
	s := New(Options{Proc: "/proc", Logger: zap.NewNop(), Off: "not in the host's pid namespace", Skipped: func() { skipped++ }})
	s.Request("/a", 1, 2)
	s.Request("/a", 1, 2) // within Every
	s.Request("/b", 1, 2)
	assert.Equal(t, 2, skipped)
	assert.Empty(t, s.queue)
}

// TestSnapperLogsHidden: processes listed as pid 0 (another pid
// namespace, cgroup v2) are counted and logged once, with the fix.
func TestSnapperLogsHidden(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	hidden := 0
	dir := fakeCgroup(t, t.TempDir(), 0, 0, os.Getpid())
	s := New(Options{Proc: "/proc", Logger: zap.New(core), Dir: func(string) string { return dir }, Hidden: func(n int) { hidden += n }})
	s.take(request{path: "/x", dir: dir})
	s.take(request{path: "/x", dir: dir})
	assert.Equal(t, 4, hidden)
	require.Equal(t, 1, logs.Len())
	assert.Contains(t, logs.All()[0].Message, "hostPID: true")
}
