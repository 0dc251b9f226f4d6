package cgroupfs_test

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oomsight/oomsight/internal/cgroupfs"
	"github.com/oomsight/oomsight/internal/cgrouptest"
)

// TestReadLiveCgroup reads a real cgroup holding a real workload, then
// removes it under the open descriptors: the next read must say vanished.
func TestReadLiveCgroup(t *testing.T) {
	env := cgrouptest.Require(t)
	memhog := cgrouptest.BuildMemhog(t)
	cg := env.NewCgroup(t, "oomsight-cgroupfs-live")
	cg.SetLimit(t, 64<<20)
	p := cg.Start(t, memhog)
	p.MustDo(t, "anon 40")

	c, err := cgroupfs.Open(env.Hierarchy, cg.Path, 0)
	require.NoError(t, err)
	defer c.Close()
	r := cgroupfs.NewReader()
	var s cgroupfs.Sample
	require.NoError(t, r.Read(c, time.Now(), &s))

	get := func(f cgroupfs.Field) uint64 {
		v, ok := s.Get(f)
		require.True(t, ok, "%s absent", f)
		return v
	}
	assert.Equal(t, uint64(64<<20), get(cgroupfs.Limit))
	assert.GreaterOrEqual(t, get(cgroupfs.Anon), uint64(40<<20))
	assert.Less(t, get(cgroupfs.Anon), uint64(56<<20), "40 MiB plus the Go runtime")
	assert.GreaterOrEqual(t, get(cgroupfs.Usage), get(cgroupfs.Anon))
	assert.LessOrEqual(t, get(cgroupfs.WorkingSet), get(cgroupfs.Usage))
	assert.GreaterOrEqual(t, get(cgroupfs.Peak), get(cgroupfs.Usage)-1<<20)

	p.Kill()
	require.Eventually(t, func() bool { return os.Remove(cg.Dir) == nil }, 10*time.Second, 20*time.Millisecond)
	err = r.Read(c, time.Now(), &s)
	assert.ErrorIs(t, err, cgroupfs.ErrVanished)
}
