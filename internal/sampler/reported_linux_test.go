// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package sampler

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/oomsight/oomsight/internal/cgroupfs"
	"github.com/oomsight/oomsight/internal/discovery"
	"github.com/oomsight/oomsight/internal/oomreport"
)

// captured reads the reports of a captured kernel log.
func captured(t *testing.T, file string) []*oomreport.Report {
	t.Helper()
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	reps, err := oomreport.ReadAll(f)
	require.NoError(t, err)
	require.NotEmpty(t, reps)
	return reps
}

// closings collects once and returns the closing points of reported kills.
func closings(t *testing.T, s *Sampler) map[string]Collected {
	t.Helper()
	out := map[string]Collected{}
	_, err := s.Collect(t.Context(), func(c *Collected) {
		if c.Reported {
			cp := *c
			smp := *c.Sample
			cp.Sample = &smp
			out[c.Path] = cp
		}
	})
	require.NoError(t, err)
	return out
}

// TestReportedNeverDiscovered: the report of a kill in a cgroup the
// sampler never discovered gives one closing set of points with the next
// collection, with the kernel's numbers and the path's identity; the same
// OOM reported again (the other members of a memory.oom.group kill) gives
// nothing more.
func TestReportedNeverDiscovered(t *testing.T) {
	s, _ := fixture(t)
	reps := captured(t, "../../testdata/v2/oom/oom-group.kmsg")
	require.Greater(t, len(reps), 1)
	for _, r := range reps {
		s.Reported(r)
	}
	got := closings(t, s)
	require.Len(t, got, 1, "one closing set for the group's one OOM")
	c, ok := got[reps[0].Memcg]
	require.True(t, ok, "the limiting cgroup's: %v", reps[0].Memcg)
	assert.Equal(t, uint64(65536*1024), c.Peak)
	usage, _ := c.Sample.Get(cgroupfs.Usage)
	limit, _ := c.Sample.Get(cgroupfs.Limit)
	assert.Equal(t, c.Peak, usage)
	assert.Equal(t, uint64(65536*1024), limit)
	assert.Equal(t, "41372d87-a", c.Identity.PodUID[:10])
	assert.Equal(t, c.Sample.Time, c.Start)
	assert.Empty(t, closings(t, s), "handed on once")
	for _, r := range reps {
		s.Reported(r) // a late member's report
	}
	assert.Empty(t, closings(t, s), "the same OOM is not handed on twice")
}

// TestReportedFiltered: a cgroup that include/exclude leaves out gets no
// point from a report either.
func TestReportedFiltered(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.CopyFS(root, os.DirFS("../../testdata/v2/cgroupfs")))
	h, err := cgroupfs.Detect(root)
	require.NoError(t, err)
	f, err := discovery.NewFilter(nil, []string{"/kubepods/**"})
	require.NoError(t, err)
	s := New(Options{Hierarchy: h, Logger: zap.NewNop(), Filter: f})
	_, err = s.Start()
	require.NoError(t, err)
	t.Cleanup(s.Close)
	s.Reported(captured(t, "../../testdata/v2/oom/container-limit.kmsg")[0])
	assert.Empty(t, closings(t, s))
}

// TestReportedLiveCgroup: a discovered cgroup whose series does not carry
// the kill yet gets the report as an event sample of its own series (no
// separate closing set), once.
func TestReportedLiveCgroup(t *testing.T) {
	s, _ := fixture(t)
	collect(t, s)
	r := captured(t, "../../testdata/v2/oom/pod-limit.kmsg")[0]
	r.Time = time.Now() // after the collection's point (raw kmsg has no wall clock)
	s.Reported(r)
	s.Reported(r)
	var events []uint64
	reported := 0
	_, err := s.Collect(t.Context(), func(c *Collected) {
		reported += map[bool]int{true: 1}[c.Reported]
		if c.Path == r.Memcg {
			for _, e := range c.Events {
				events = append(events, e.Peak)
			}
			assert.GreaterOrEqual(t, c.Peak, uint64(49152*1024), "the collection's peak folds the kill in")
		}
	})
	require.NoError(t, err)
	assert.Zero(t, reported)
	assert.Equal(t, []uint64{49152 * 1024}, events)
}

// TestCreatedCgroupRegisteredAtOnce: a cgroup created between two
// collections is registered and sampled at its creation event, not at the
// next collection (before, a cgroup created and gone between two
// collections was never seen).
func TestCreatedCgroupRegisteredAtOnce(t *testing.T) {
	s, root := fixture(t)
	// Built aside and moved in, as the kernel creates a cgroup with its
	// files at once.
	aside := filepath.Join(root, "..", "aside-"+filepath.Base(root))
	require.NoError(t, os.CopyFS(aside, os.DirFS(filepath.Join(root, filepath.FromSlash(ctr)))))
	t.Cleanup(func() { _ = os.RemoveAll(aside) })
	created := "/kubepods.slice/created"
	require.NoError(t, os.Rename(aside, filepath.Join(root, filepath.FromSlash(created))))
	require.Eventually(t, func() bool { return slices.Contains(s.Paths(nil), created) }, 2*time.Second, 5*time.Millisecond,
		"registered without a collection")
	h, ok := s.History(created, time.Now())
	require.True(t, ok, "sampled at registration")
	assert.NotEmpty(t, h.T)
}
