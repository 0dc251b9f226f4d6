// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package registry

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/oomsight/oomsight/internal/cgroupfs"
	"github.com/oomsight/oomsight/internal/identity"
)

// copyTree copies the captured v1 fixture so the test can add and remove
// cgroups in it.
func copyTree(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	require.NoError(t, os.CopyFS(dst, os.DirFS("../../testdata/v1/root")))
	return dst
}

func paths(es []*Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Path)
	}
	return out
}

func TestRefreshTracksChurn(t *testing.T) {
	root := copyTree(t)
	h, err := cgroupfs.Detect(root)
	require.NoError(t, err)
	r := New(h, nil, 0, 0, nil)
	defer r.Close()

	ch, err := r.Refresh()
	require.NoError(t, err)
	assert.Equal(t, 9, ch.Added)
	assert.Equal(t, 9, r.Len())

	pod := "/kubepods/burstable/pod0f5eb28f-6722-4cf5-ab0f-b62748c018d4"
	ctr := pod + "/0dc1822caf9e150de25daa1cf572418426ce6b72757b5efdff52acef348368a3"
	e := r.Get(ctr)
	require.NotNil(t, e)
	assert.Equal(t, identity.FromPath(ctr), e.Identity)
	assert.Equal(t, "0dc1822caf9e150de25daa1cf572418426ce6b72757b5efdff52acef348368a3", e.Identity.ContainerID)

	// A new cgroup appears (a copy of the container's files); a directory
	// without memory accounting is ignored and not retried.
	newCtr := pod + "/1111111111111111111111111111111111111111111111111111111111111111"
	require.NoError(t, os.CopyFS(h.Abs(newCtr), os.DirFS(h.Abs(ctr))))
	require.NoError(t, os.Mkdir(h.Abs("/empty"), 0o755))
	ch, err = r.Refresh()
	require.NoError(t, err)
	assert.Equal(t, Changes{Added: 1}, ch)
	ch, err = r.Refresh()
	require.NoError(t, err)
	assert.Equal(t, Changes{}, ch)

	// The container goes away.
	require.NoError(t, os.RemoveAll(h.Abs(ctr)))
	ch, err = r.Refresh()
	require.NoError(t, err)
	assert.Equal(t, Changes{Removed: 1}, ch)
	assert.Nil(t, r.Get(ctr))
	assert.NotContains(t, paths(r.Entries(nil)), ctr)
	assert.Contains(t, paths(r.Entries(nil)), newCtr)

	// Entries are in path order.
	es := paths(r.Entries(nil))
	assert.IsNonDecreasing(t, es)

	r.Drop(newCtr)
	assert.Nil(t, r.Get(newCtr))
	assert.Equal(t, 8, r.Len())
}

func TestRefreshRootGone(t *testing.T) {
	root := copyTree(t)
	h, err := cgroupfs.Detect(root)
	require.NoError(t, err)
	r := New(h, nil, 0, 0, nil)
	require.NoError(t, os.RemoveAll(filepath.Join(root, "memory")))
	_, err = r.Refresh()
	assert.ErrorContains(t, err, "listing cgroups below")
}

func TestFailureReportedOnce(t *testing.T) {
	e := &Entry{}
	assert.True(t, e.FirstFailure("memory.stat"))
	assert.False(t, e.FirstFailure("memory.stat"))
	assert.True(t, e.FirstFailure("memory.max"))
	e.Recovered()
	assert.True(t, e.FirstFailure("memory.stat"))
}

// TestOutOfDescriptorsIsRetried: cgroups that could not be opened because
// the process ran out of file descriptors are tried again on the next
// refresh, not skipped for good.
func TestOutOfDescriptorsIsRetried(t *testing.T) {
	root := copyTree(t)
	h, err := cgroupfs.Detect(root)
	require.NoError(t, err)
	r := New(h, nil, 0, 0, nil)
	defer r.Close()

	var saved unix.Rlimit
	require.NoError(t, unix.Getrlimit(unix.RLIMIT_NOFILE, &saved))
	// Room for a few cgroups (6 files each) above what is open now.
	entries, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	low := saved
	low.Cur = uint64(len(entries)) + 20
	require.NoError(t, unix.Setrlimit(unix.RLIMIT_NOFILE, &low))
	ch, refreshErr := r.Refresh()
	require.NoError(t, unix.Setrlimit(unix.RLIMIT_NOFILE, &saved))
	_ = refreshErr // the walk itself may fail for want of descriptors too
	require.NotEmpty(t, ch.Skipped, "the low limit must make some opens fail")
	assert.ErrorIs(t, ch.Skipped[0], unix.EMFILE)
	assert.Less(t, r.Len(), 9)

	_, err = r.Refresh()
	require.NoError(t, err)
	assert.Equal(t, 9, r.Len(), "every cgroup is open once descriptors are back")
}

// TestRemovedCgroupKeepsItsHistory: a cgroup that leaves keeps its flight
// recorder readable for Keep (the runtime removes a container's cgroup right
// after the OOM kill), and the watcher is told it left.
func TestRemovedCgroupKeepsItsHistory(t *testing.T) {
	root := copyTree(t)
	h, err := cgroupfs.Detect(root)
	require.NoError(t, err)
	var left []string
	r := New(h, nil, 0, 100*time.Millisecond, func(p string) { left = append(left, p) })
	defer r.Close()
	now := time.Unix(1700000000, 0)
	r.now = func() time.Time { return now }
	_, err = r.Refresh()
	require.NoError(t, err)

	ctr := "/kubepods/burstable/pod0f5eb28f-6722-4cf5-ab0f-b62748c018d4/0dc1822caf9e150de25daa1cf572418426ce6b72757b5efdff52acef348368a3"
	e := r.Get(ctr)
	require.NotNil(t, e)
	for i := range 5 {
		e.Fast(now.Add(time.Duration(i)*100*time.Millisecond), uint64(i+1)<<20)
	}
	require.NoError(t, os.RemoveAll(h.Abs(ctr)))
	ch, err := r.Refresh()
	require.NoError(t, err)
	assert.Equal(t, 1, ch.Removed)
	assert.Equal(t, []string{ctr}, left)
	assert.Nil(t, r.Get(ctr))

	hist, ok := r.History(ctr, now.Add(time.Second))
	require.True(t, ok, "history of a cgroup removed just now")
	assert.Equal(t, []uint64{1 << 20, 2 << 20, 3 << 20, 4 << 20, 5 << 20}, hist.Usage)
	_, ok = r.History(ctr, now.Add(250*time.Millisecond))
	assert.True(t, ok)

	now = now.Add(Keep + time.Second)
	_, ok = r.History(ctr, now)
	assert.False(t, ok, "forgotten after Keep")

	// Dropped while sampling (found vanished) keeps it too.
	other := "/kubepods/burstable"
	o := r.Get(other)
	require.NotNil(t, o)
	o.Fast(now, 7)
	r.Drop(other)
	_, ok = r.History(other, now)
	assert.True(t, ok)
}

// TestRemovedCgroupLastInterval: a cgroup that leaves is handed out once by
// TakeGone with its last interval: the event samples not exported yet, at
// their own times, then a closing sample at the newest fast sample with
// the highest usage since the last data point as its peak.
func TestRemovedCgroupLastInterval(t *testing.T) {
	root := copyTree(t)
	h, err := cgroupfs.Detect(root)
	require.NoError(t, err)
	r := New(h, nil, 0, 100*time.Millisecond, nil)
	defer r.Close()
	_, err = r.Refresh()
	require.NoError(t, err)
	ctr := "/kubepods/burstable/pod0f5eb28f-6722-4cf5-ab0f-b62748c018d4/0dc1822caf9e150de25daa1cf572418426ce6b72757b5efdff52acef348368a3"
	other := "/kubepods/burstable"
	e, o := r.Get(ctr), r.Get(other)
	require.NotNil(t, e)
	require.NotNil(t, o)

	t0 := time.Unix(1700000000, 0)
	full := func(at time.Time, usage uint64) *cgroupfs.Sample {
		var s cgroupfs.Sample
		s.Time = at
		s.Set(cgroupfs.Usage, usage)
		return &s
	}
	_, ok := e.Full(full(t0, 10<<20)) // the last collection
	require.True(t, ok)
	e.Fast(t0.Add(100*time.Millisecond), 40<<20)
	e.Event(full(t0.Add(150*time.Millisecond), 60<<20)) // at the limit
	e.Fast(t0.Add(200*time.Millisecond), 63<<20)
	e.Fast(t0.Add(300*time.Millisecond), 5<<20)
	_, ok = o.Full(full(t0, 1<<20)) // exported by the last collection, nothing since
	require.True(t, ok)

	require.NoError(t, os.RemoveAll(h.Abs(ctr)))
	_, err = r.Refresh()
	require.NoError(t, err)
	r.Drop(other)

	gone := r.TakeGone(nil)
	require.Equal(t, []string{ctr, other}, paths(gone))
	assert.Empty(t, r.TakeGone(nil), "each removed cgroup is handed out once")

	evs, closing, ok := gone[0].Final(nil)
	require.Len(t, evs, 1)
	assert.Equal(t, t0.Add(150*time.Millisecond), evs[0].Sample.Time)
	assert.Equal(t, uint64(60<<20), evs[0].Peak)
	require.True(t, ok)
	assert.Equal(t, t0.Add(300*time.Millisecond), closing.Sample.Time)
	assert.Equal(t, uint64(63<<20), closing.Peak, "the fast samples after the event sample")
	u, _ := closing.Sample.Get(cgroupfs.Usage)
	assert.Equal(t, uint64(5<<20), u, "the newest fast sample's usage")
	_, has := closing.Sample.Get(cgroupfs.WorkingSet)
	assert.False(t, has, "no field that was not read")

	evs, _, ok = gone[0].Final(nil)
	assert.Empty(t, evs)
	assert.False(t, ok, "the last interval is handed out once")
	evs, _, ok = gone[1].Final(nil)
	assert.Empty(t, evs)
	assert.False(t, ok, "nothing since the last data point")
}

// TestLimitZoneState: the fast pass learns the limit of the latest full
// sample (0 when unlimited) without reading it, and HighHit tells v2
// memory.high events that rose from the baseline; a v1 reading without
// high events never is one.
func TestLimitZoneState(t *testing.T) {
	root := copyTree(t)
	h, err := cgroupfs.Detect(root)
	require.NoError(t, err)
	r := New(h, nil, 0, 100*time.Millisecond, nil)
	defer r.Close()
	_, err = r.Refresh()
	require.NoError(t, err)
	e := r.Get("/kubepods/burstable")
	require.NotNil(t, e)
	t0 := time.Unix(1700000000, 0)

	assert.Zero(t, e.Fast(t0, 1<<20), "no full sample yet")
	var s cgroupfs.Sample
	s.Time = t0
	s.Set(cgroupfs.Usage, 60<<20)
	s.Set(cgroupfs.Limit, 64<<20)
	_, ok := e.Full(&s)
	require.True(t, ok)
	assert.Equal(t, uint64(64<<20), e.Fast(t0.Add(100*time.Millisecond), 61<<20))
	assert.Equal(t, uint64(64<<20), e.Limit())
	s.Reset()
	s.Time = t0.Add(time.Second)
	s.Set(cgroupfs.Usage, 60<<20) // the limit was removed
	_, ok = e.Full(&s)
	require.True(t, ok)
	assert.Zero(t, e.Fast(t0.Add(1100*time.Millisecond), 61<<20))

	var ev cgroupfs.Sample
	assert.False(t, e.HighHit(&ev), "v1: no high events")
	ev.Set(cgroupfs.EventsHigh, 5)
	assert.False(t, e.HighHit(&ev), "the baseline")
	assert.False(t, e.HighHit(&ev), "unchanged")
	ev.Set(cgroupfs.EventsHigh, 7)
	assert.True(t, e.HighHit(&ev), "rose")
}

// TestETAFitOnlyWhenAsked: a full sample does not fit the trend of the
// unreclaimable memory (a least-squares pass over the flight recorder's
// last 30 s); the first ETA asked after it does, once, so that a receiver
// without cgroup.memory.oom.eta pays nothing for it, and the estimate is
// that of the newest full sample.
func TestETAFitOnlyWhenAsked(t *testing.T) {
	root := copyTree(t)
	h, err := cgroupfs.Detect(root)
	require.NoError(t, err)
	r := New(h, nil, 0, 100*time.Millisecond, nil)
	defer r.Close()
	_, err = r.Refresh()
	require.NoError(t, err)
	e := r.Get("/kubepods/burstable")
	require.NotNil(t, e)
	t0 := time.Unix(1700000000, 0)
	const mib = 1 << 20
	full := func(i int) time.Time {
		var s cgroupfs.Sample
		s.Time = t0.Add(time.Duration(i) * time.Second)
		s.Set(cgroupfs.Usage, uint64(i+1)*mib)
		s.Set(cgroupfs.Unreclaimable, uint64(i)*mib) // 1 MiB/s
		s.Set(cgroupfs.Limit, 64*mib)
		_, ok := e.Full(&s)
		require.True(t, ok)
		return s.Time
	}
	var now time.Time
	for i := range 35 {
		now = full(i)
	}
	e.mu.Lock()
	fitted, rising := e.fitted, e.rising
	e.mu.Unlock()
	assert.False(t, fitted, "no fit before an ETA is asked")
	assert.False(t, rising, "no fit before an ETA is asked")

	got, ok := r.ETA(e, now)
	require.True(t, ok)
	assert.InDelta(t, 64-34, got, 0.01)
	e.mu.Lock()
	assert.True(t, e.fitted)
	assert.True(t, e.rising)
	e.mu.Unlock()

	now = full(35)
	got, ok = r.ETA(e, now)
	require.True(t, ok)
	assert.InDelta(t, 64-35, got, 0.01, "the newest full sample's fit, not the one before")
}
