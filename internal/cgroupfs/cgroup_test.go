// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgroupfs

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestReadV1Fixture reads the captured v1 container through Open/Read (the
// fixture files are regular files, which pread just as well) and checks each
// field against the raw file it comes from.
func TestReadV1Fixture(t *testing.T) {
	root, err := filepath.Abs("../../testdata/v1/root")
	require.NoError(t, err)
	h, err := Detect(root)
	require.NoError(t, err)
	path := "/kubepods/burstable/pod0f5eb28f-6722-4cf5-ab0f-b62748c018d4/0dc1822caf9e150de25daa1cf572418426ce6b72757b5efdff52acef348368a3"
	c, err := Open(h, path, WithKernel|WithSwap|WithPressure)
	require.NoError(t, err)
	defer c.Close()

	var s Sample
	now := time.Unix(1700000000, 0)
	require.NoError(t, NewReader().Read(c, now, &s))
	assert.Equal(t, now, s.Time)

	dir := h.Abs(path)
	num := func(file string) uint64 {
		v, perr := ParseUint(readFixture(t, filepath.Join(dir, file)))
		require.NoError(t, perr)
		return v
	}
	stat, err := ParseKeyValues(readFixture(t, filepath.Join(dir, "memory.stat")))
	require.NoError(t, err)
	oom, err := ParseKeyValues(readFixture(t, filepath.Join(dir, "memory.oom_control")))
	require.NoError(t, err)

	want := map[Field]uint64{
		Usage:        num("memory.usage_in_bytes"),
		WorkingSet:   num("memory.usage_in_bytes") - stat["total_inactive_file"],
		Limit:        64 << 20, // set by the capture script
		Peak:         num("memory.max_usage_in_bytes"),
		Failcnt:      num("memory.failcnt"),
		OOMKills:     oom["oom_kill"],
		Anon:         stat["total_rss"],
		File:         stat["total_cache"],
		ActiveFile:   stat["total_active_file"],
		InactiveFile: stat["total_inactive_file"],
		Shmem:        stat["total_shmem"],
		MappedFile:   stat["total_mapped_file"],
		Swap:         stat["total_swap"],
		PgFault:      stat["total_pgfault"],
		PgMajFault:   stat["total_pgmajfault"],
		Kernel:       num("memory.kmem.usage_in_bytes"),
	}
	for f, v := range want {
		got, ok := s.Get(f)
		assert.True(t, ok, "%s absent", f)
		assert.Equal(t, v, got, "%s", f)
	}
	// What the capture did: one OOM kill, 8 MiB on tmpfs, 24 MiB anon.
	assert.Equal(t, uint64(1), want[OOMKills])
	assert.NotZero(t, want[Failcnt])
	assert.Equal(t, uint64(8<<20), want[Shmem])
	assert.GreaterOrEqual(t, want[Anon], uint64(24<<20))
	// v1 has no PSI, sock or slab per cgroup.
	for _, f := range []Field{PressureSome, PressureFull, Sock, Slab} {
		_, ok := s.Get(f)
		assert.False(t, ok, "%s must be absent on v1", f)
	}
}

func TestReadDoesNotAllocate(t *testing.T) {
	root, err := filepath.Abs("../../testdata/v1/root")
	require.NoError(t, err)
	h, err := Detect(root)
	require.NoError(t, err)
	c, err := Open(h, "/kubepods", 0)
	require.NoError(t, err)
	defer c.Close()
	r := NewReader()
	var s Sample
	now := time.Now()
	allocs := testing.AllocsPerRun(100, func() {
		if err := r.Read(c, now, &s); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs)
}

// TestReadBadFiles: garbage in a file leaves that file's fields out and
// names the file; the rest of the sample stays valid.
func TestReadBadFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600))
	}
	write("memory.usage_in_bytes", "1000\n")
	write("memory.limit_in_bytes", "garbage\n")
	write("memory.stat", "total_rss 10\ntotal_inactive_file 300\ntotal_cache oops\n")
	h := Hierarchy{Version: V1, Dir: dir}
	c, err := Open(h, "/", 0)
	require.NoError(t, err)
	defer c.Close()

	var s Sample
	err = NewReader().Read(c, time.Now(), &s)
	var fe *FileError
	require.ErrorAs(t, err, &fe)
	assert.ErrorContains(t, err, "memory.limit_in_bytes")
	assert.ErrorContains(t, err, "memory.stat")
	usage, ok := s.Get(Usage)
	assert.True(t, ok)
	assert.Equal(t, uint64(1000), usage)
	_, ok = s.Get(Limit)
	assert.False(t, ok, "unparsable limit must be absent, not zero")
	ws, ok := s.Get(WorkingSet)
	assert.True(t, ok)
	assert.Equal(t, uint64(700), ws)
}

func TestWorkingSetFloor(t *testing.T) {
	var s Sample
	s.Set(Usage, 100)
	s.Set(InactiveFile, 250) // read a moment later, after usage fell
	s.deriveWorkingSet()
	ws, ok := s.Get(WorkingSet)
	assert.True(t, ok)
	assert.Zero(t, ws)

	var noInactive Sample
	noInactive.Set(Usage, 100)
	noInactive.deriveWorkingSet()
	_, ok = noInactive.Get(WorkingSet)
	assert.False(t, ok, "working set without inactive_file would be a guess")
}

func TestOpenNotAccountedAndVanished(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "child"), 0o755))
	h := Hierarchy{Version: V2, Dir: dir}
	_, err := Open(h, "/child", 0)
	assert.ErrorIs(t, err, ErrNotAccounted)
	_, err = Open(h, "/gone", 0)
	assert.ErrorIs(t, err, ErrVanished)
}

// TestOpenFailureClosesOnlyItsOwnFiles: a file that fails to open after
// others were opened (here memory.stat, a symlink loop) releases exactly
// those; it must not close descriptors it never opened, such as fd 0,
// which another cgroup's file or /dev/kmsg may be using.
func TestOpenFailureClosesOnlyItsOwnFiles(t *testing.T) {
	dir := t.TempDir()
	cg := filepath.Join(dir, "child")
	require.NoError(t, os.Mkdir(cg, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(cg, "memory.current"), []byte("4096\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(cg, "memory.max"), []byte("max\n"), 0o600))
	require.NoError(t, os.Symlink("memory.stat", filepath.Join(cg, "memory.stat")))

	// Whatever holds fd 0 here stands for a descriptor of someone else.
	_, err := unix.FcntlInt(0, unix.F_GETFD, 0)
	require.NoError(t, err, "fd 0 must be open for this test")
	_, err = Open(Hierarchy{Version: V2, Dir: dir}, "/child", 0)
	var fe *FileError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "memory.stat", fe.File)
	assert.ErrorIs(t, err, unix.ELOOP)
	_, err = unix.FcntlInt(0, unix.F_GETFD, 0)
	assert.NoError(t, err, "fd 0 was closed by a failed Open")
}

// TestReadAfterClose: a cgroup closed while the sampler still holds it
// reads as vanished, not as an empty sample.
func TestReadAfterClose(t *testing.T) {
	dir := t.TempDir()
	cg := filepath.Join(dir, "child")
	require.NoError(t, os.Mkdir(cg, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(cg, "memory.current"), []byte("4096\n"), 0o600))
	c, err := Open(Hierarchy{Version: V2, Dir: dir}, "/child", 0)
	require.NoError(t, err)
	var s Sample
	require.NoError(t, NewReader().Read(c, time.Now(), &s))
	c.Close()
	assert.ErrorIs(t, NewReader().Read(c, time.Now(), &s), ErrVanished)
}

// TestPeakResetOnlyOnCgroupfs: fixture trees are regular files; Open may
// hold the peak file read-write but must never reset (write) it there.
func TestPeakResetOnlyOnCgroupfs(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.CopyFS(root, os.DirFS("../../testdata/v2/cgroupfs")))
	h, err := Detect(root)
	require.NoError(t, err)
	path := "/kubepods"
	before, err := os.ReadFile(filepath.Join(h.Abs(path), "memory.peak"))
	require.NoError(t, err)
	c, err := Open(h, path, WithPeakReset|WithLifetimePeak)
	require.NoError(t, err)
	defer c.Close()
	assert.False(t, c.PeakResets())
	var s Sample
	require.NoError(t, NewReader().Read(c, time.Now(), &s))
	assert.False(t, s.PeakSinceRead)
	peak, ok := s.Get(Peak)
	require.True(t, ok)
	life, ok := s.Get(PeakLifetime)
	require.True(t, ok, "not reset: the peak is the lifetime peak")
	assert.Equal(t, peak, life)
	after, err := os.ReadFile(filepath.Join(h.Abs(path), "memory.peak"))
	require.NoError(t, err)
	assert.Equal(t, string(before), string(after), "fixture untouched")
}

// TestEventsLocalWithFallback: v2 failcnt and oom_kills come from
// memory.events.local (this cgroup's own), or from memory.events on
// kernels before 5.2 that have no .local file.
func TestEventsLocalWithFallback(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.CopyFS(root, os.DirFS("../../testdata/v2/cgroupfs")))
	h, err := Detect(root)
	require.NoError(t, err)
	path := "/kubepods"
	dir := h.Abs(path)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "memory.events.local"), []byte("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "memory.events"), []byte("low 0\nhigh 0\nmax 9\noom 4\noom_kill 4\n"), 0o600))
	read := func() (uint64, uint64) {
		c, err := Open(h, path, 0)
		require.NoError(t, err)
		defer c.Close()
		var s Sample
		require.NoError(t, NewReader().Read(c, time.Now(), &s))
		f, _ := s.Get(Failcnt)
		k, _ := s.Get(OOMKills)
		var cs Sample
		require.NoError(t, NewReader().Counters(c, &cs))
		cf, _ := cs.Get(Failcnt)
		ck, _ := cs.Get(OOMKills)
		assert.Equal(t, [2]uint64{f, k}, [2]uint64{cf, ck}, "Counters reads the same file")
		return f, k
	}
	f, k := read()
	assert.Equal(t, [2]uint64{3, 1}, [2]uint64{f, k}, "memory.events.local")
	require.NoError(t, os.Remove(filepath.Join(dir, "memory.events.local")))
	f, k = read()
	assert.Equal(t, [2]uint64{9, 4}, [2]uint64{f, k}, "memory.events before 5.2")
}

// TestMalformedStatLineSkipped: one bad line in memory.stat is skipped and
// reported; the fields on the other lines are still in the sample (not half
// a sample that silently stops at the bad line).
func TestMalformedStatLineSkipped(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.CopyFS(root, os.DirFS("../../testdata/v1/root")))
	h, err := Detect(root)
	require.NoError(t, err)
	stat := filepath.Join(h.Abs("/kubepods"), "memory.stat")
	b, err := os.ReadFile(stat)
	require.NoError(t, err)
	want, err := ParseKeyValues(b)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(stat, append([]byte("cache 1\ngarbage line here\n"), b...), 0o600)) //nolint:gosec // a file of the test's own copy of a fixture tree

	c, err := Open(h, "/kubepods", 0)
	require.NoError(t, err)
	defer c.Close()
	var s Sample
	err = NewReader().Read(c, time.Now(), &s)
	var fe *FileError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "memory.stat", fe.File)
	assert.ErrorContains(t, err, "line 2")
	anon, ok := s.Get(Anon)
	require.True(t, ok, "the lines after the bad one are read")
	assert.Equal(t, want["total_rss"], anon)
	ws, ok := s.Get(WorkingSet)
	require.True(t, ok)
	assert.NotZero(t, ws)
}

// TestReadFiles: the files a Read reads, as benchmarks take them for their
// floor, on the fixture trees of both versions: the optional files only
// when asked for, memory.events where the kernel has no .local file, the
// limit files only withLimits.
func TestReadFiles(t *testing.T) {
	for _, tc := range []struct {
		name, fixture, path string
		opt                 Optional
		dropFile            string
		withLimits          bool
		want                []string
	}{
		{
			name: "v1 defaults", fixture: "../../testdata/v1/root", path: "/kubepods",
			want: []string{"memory.usage_in_bytes", "memory.max_usage_in_bytes", "memory.failcnt", "memory.stat", "memory.oom_control"},
		},
		{
			name: "v1 with limits and kmem", fixture: "../../testdata/v1/root", path: "/kubepods",
			opt: WithKernel, withLimits: true,
			want: []string{"memory.usage_in_bytes", "memory.limit_in_bytes", "memory.max_usage_in_bytes", "memory.failcnt", "memory.stat", "memory.oom_control", "memory.kmem.usage_in_bytes"},
		},
		{
			name: "v2 with pressure", fixture: "../../testdata/v2/cgroupfs", path: "/kubepods",
			opt:  WithPressure,
			want: []string{"memory.current", "memory.peak", "memory.stat", "memory.events.local", "memory.pressure"},
		},
		{
			name: "v2 before 5.2", fixture: "../../testdata/v2/cgroupfs", path: "/kubepods",
			dropFile: "memory.events.local", withLimits: true,
			want: []string{"memory.current", "memory.max", "memory.peak", "memory.stat", "memory.events"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			require.NoError(t, os.CopyFS(root, os.DirFS(tc.fixture)))
			h, err := Detect(root)
			require.NoError(t, err)
			if tc.dropFile != "" {
				require.NoError(t, os.Remove(filepath.Join(h.Abs(tc.path), tc.dropFile)))
			}
			c, err := Open(h, tc.path, tc.opt)
			require.NoError(t, err)
			defer c.Close()
			assert.Equal(t, tc.want, c.ReadFiles(tc.withLimits))
		})
	}
}
