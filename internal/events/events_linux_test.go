// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package events_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oomsight/oomsight/internal/cgroupfs"
	"github.com/oomsight/oomsight/internal/events"
	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
)

type got struct {
	path string
	kind events.Kind
}

func start(t *testing.T, h cgroupfs.Hierarchy) (*events.Watcher, chan got) {
	t.Helper()
	ch := make(chan got, 64)
	w, err := events.New(h, func(p string, k events.Kind) {
		select {
		case ch <- got{p, k}:
		default:
		}
	})
	require.NoError(t, err)
	go w.Run()
	t.Cleanup(func() { w.Close(true) })
	return w, ch
}

// expect waits for an event of kind on path, ignoring others.
func expect(t *testing.T, ch chan got, path string, kind events.Kind) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case g := <-ch:
			if g.path == path && g.kind == kind {
				return
			}
		case <-deadline:
			t.Fatalf("no %s event for %s", kind, path)
		}
	}
}

// none checks that no event of kind arrives for path within d.
func none(t *testing.T, ch chan got, path string, kind events.Kind, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case g := <-ch:
			if g.path == path && g.kind == kind {
				t.Fatalf("unexpected %s event for %s", kind, path)
			}
		case <-deadline:
			return
		}
	}
}

func drain(ch chan got) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// TestV1ThresholdFollowsLimitAndOOM: on a real v1 cgroup, the threshold
// event fires when usage passes 90 % of the limit, moves with the limit,
// and the OOM notification fires when the kernel runs out of memory there.
func TestV1ThresholdFollowsLimitAndOOM(t *testing.T) {
	env := cgrouptest.Require(t)
	if env.Hierarchy.Version != cgroupfs.V1 {
		cgrouptest.Unavailable(t, "v1 eventfds need a v1 memory hierarchy (v2 runs in make e2e-v2)")
	}
	cg := env.NewCgroup(t, fmt.Sprintf("oomsight-events-%d", os.Getpid()))
	cg.SetLimit(t, 64<<20)
	p := cg.Start(t, cgrouptest.BuildMemhog(t))
	w, ch := start(t, env.Hierarchy)
	require.NoError(t, w.Watch(cg.Path, 64<<20, true))
	require.NoError(t, w.Watch(cg.Path, 64<<20, true), "same limit: nothing to do")
	assert.Equal(t, 1, w.Len())

	p.MustDo(t, "anon 30")
	none(t, ch, cg.Path, events.Threshold, 300*time.Millisecond)
	p.MustDo(t, "anon 30") // ~62 MiB: past 57.6 MiB
	expect(t, ch, cg.Path, events.Threshold)

	// The limit doubles: the old threshold is gone, the new one at 115 MiB.
	cg.SetLimit(t, 128<<20)
	require.NoError(t, w.Watch(cg.Path, 128<<20, true))
	drain(ch)
	p.MustDo(t, "free")
	p.MustDo(t, "anon 100")
	none(t, ch, cg.Path, events.Threshold, 300*time.Millisecond)
	p.MustDo(t, "anon 20")
	expect(t, ch, cg.Path, events.Threshold)

	cgrouptest.PaceOOM(t)
	_, err := p.Do("anon 100", 30*time.Second)
	require.Error(t, err, "memhog must be OOM-killed")
	expect(t, ch, cg.Path, events.OOM)

	// Unlimited: not watched any more.
	require.NoError(t, w.Watch(cg.Path, 0, false))
	assert.Equal(t, 0, w.Len())
}

// TestV1ReadOnlyMount: through a read-only mount of the hierarchy (what a
// DaemonSet mounts) registration fails with ErrReadOnly, once.
func TestV1ReadOnlyMount(t *testing.T) {
	env := cgrouptest.Require(t)
	if env.Hierarchy.Version != cgroupfs.V1 {
		cgrouptest.Unavailable(t, "needs a v1 memory hierarchy")
	}
	cg := env.NewCgroup(t, fmt.Sprintf("oomsight-events-ro-%d", os.Getpid()))
	cg.SetLimit(t, 64<<20)
	ro := cgrouptest.ReadOnlyMount(t, env.Hierarchy.Dir)
	w, _ := start(t, cgroupfs.Hierarchy{Version: cgroupfs.V1, Dir: ro})
	err := w.Watch(cg.Path, 64<<20, true)
	require.ErrorIs(t, err, events.ErrReadOnly)
	assert.NoError(t, w.Watch(cg.Path, 64<<20, true), "refused once, not again")
	assert.Equal(t, 0, w.Len())
}
